"""The `egghand` entry point and egghand_lib.commands: every command has its help, dispatch is lazy, bad input
exits 2, the library holds no argparse, and `egghand train` flags become the TrainConfig they name."""

from __future__ import annotations

import argparse
import ast
import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import egghand_lib
import egghand_lib.commands
from egghand_lib.cli import COMMANDS, main
from egghand_lib.commands import train as train_command
from egghand_lib.training import TrainConfig

LIBRARY = Path(egghand_lib.__file__).parent


def test_one_module_per_command_each_with_configure_parser_and_run():
    modules = {m.name for m in pkgutil.iter_modules(egghand_lib.commands.__path__)}
    assert modules == set(COMMANDS) == {"synth", "prepare", "cache", "train", "evaluate", "forecast", "ablate",
                                        "demo", "pretrain"}
    for name in COMMANDS:
        module = importlib.import_module(f"egghand_lib.commands.{name}")
        assert callable(module.configure_parser) and callable(module.run), name


@pytest.mark.parametrize("name", list(COMMANDS))
def test_command_help_lists_every_flag(name, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # no wrapping: the description is on one line
    with pytest.raises(SystemExit) as exit_:
        main([name, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: egghand {name} ") and COMMANDS[name] in out
    parser = argparse.ArgumentParser()
    importlib.import_module(f"egghand_lib.commands.{name}").configure_parser(parser)
    subcommands = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subcommands:
        flags = [s for a in parser._actions for s in a.option_strings]
        assert len(flags) > 2 and all(f in out for f in flags)
    for action in subcommands:  # e.g. `egghand pretrain encoder --help`: each one's own flags
        assert all(what in out for what in action.choices)
        for what, sub in action.choices.items():
            with pytest.raises(SystemExit):
                main([name, what, "--help"])
            sub_out = capsys.readouterr().out
            flags = [s for a in sub._actions for s in a.option_strings]
            assert sub_out.startswith(f"usage: egghand {name} {what} ") and len(flags) > 2
            assert all(f in sub_out for f in flags), (what, flags)


def test_top_level_help_lists_commands(capsys):
    assert main([]) == 0
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: egghand ") and all(f"    {name}" in out for name in COMMANDS)


def test_top_level_help_imports_no_command():
    """`egghand --help` loads neither a command module nor torch (dispatch is lazy)."""
    code = ("import sys; from egghand_lib.cli import main; main(['--help']); "
            "print(sorted(m for m in sys.modules if m.startswith('egghand_lib') or m == 'torch'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[-1] == "['egghand_lib', 'egghand_lib.cli']"


def test_unknown_command_and_unknown_flag_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["nope"])
    assert exit_.value.code == 2 and "invalid choice: 'nope'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["demo", "--bogus"])
    assert exit_.value.code == 2 and "unrecognized arguments: --bogus" in capsys.readouterr().err
    proc = subprocess.run([sys.executable, "-m", "egghand_lib.cli", "nope"], capture_output=True, text=True)
    assert proc.returncode == 2 and "invalid choice: 'nope'" in proc.stderr


def test_library_modules_hold_no_argparse():
    offenders = []
    for path in sorted(LIBRARY.rglob("*.py")):
        rel = path.relative_to(LIBRARY)
        if rel.parts[0] == "commands" or rel == Path("cli.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(n == "argparse" or n.startswith("argparse.") for n in names):
                offenders.append(str(rel))
    assert offenders == []


def _train_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    train_command.configure_parser(parser)
    return parser.parse_args(["--prep", "p", "--out", "o", *argv])


def test_train_flags_become_the_named_config_with_overrides():
    tiny = TrainConfig.named("tiny")
    cfg = train_command.config_from_args(_train_args(
        "--config", "tiny", "--steps", "7", "--lr", "0.5", "--batch-size", "3", "--set", "eval_every=4",
        "--set", "eval_split=null", "--model-set", "layers=[1, 2]", "--model-set", "label=plain text",
        "--feature-cache", "cache_dir", "--gr00t", "g"))
    assert (cfg.max_steps, cfg.lr, cfg.batch_size, cfg.eval_every, cfg.eval_split) == (7, 0.5, 3, 4, None)
    assert cfg.feature_cache == "cache_dir" and cfg.model_preset == "tiny"
    # Model overrides are JSON values (else plain strings), added to the named config's own (the tiny encoder).
    assert cfg.model_overrides == {**tiny.model_overrides, "layers": [1, 2], "label": "plain text",
                                   "decoder_init": "gr00t", "gr00t_path": "g"}
    # --epochs without --steps trains for epochs: the named config's step count is dropped.
    cfg = train_command.config_from_args(_train_args("--config", "tiny", "--epochs", "2"))
    assert cfg.epochs == 2.0 and cfg.max_steps is None
    assert train_command.config_from_args(_train_args("--config", "tiny")) == tiny
    with pytest.raises(ValueError, match="--set: expected FIELD=VALUE"):
        train_command.config_from_args(_train_args("--set", "eval_every"))
    with pytest.raises(ValueError, match="--model-set: expected FIELD=VALUE"):
        train_command.config_from_args(_train_args("--model-set", "decoder_init"))
