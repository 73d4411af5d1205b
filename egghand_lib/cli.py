"""The ``egghand`` command: one sub-command per stage of the pipeline.

Each sub-command lives in the module that does the work; that module defines
``configure_parser(parser)`` and ``run(args) -> int``. Modules are imported only when their
sub-command runs, so ``egghand --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS: dict[str, tuple[str, str]] = {
    "synth": ("egghand_lib.commands.synth", "generate an EgoSynth dataset in the EgoExo4D layout"),
    "prepare": ("egghand_lib.data.prepare", "EgoExo4D-layout files -> validated canonical windows / LeRobot dataset"),
    "cache": ("egghand_lib.data.feature_cache", "precompute a frozen encoder's features for prepared windows"),
    "train": ("egghand_lib.training", "train an EggHand model from a named config"),
    "evaluate": ("egghand_lib.evaluation", "evaluate Static, CVM and a trained model on a split"),
    "ablate": ("egghand_lib.ablations", "run the paper's ablations (Tables 2-5)"),
    "demo": ("egghand_lib.demo", "end to end on the built-in defaults: synth, prepare, train, evaluate, ablate"),
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="egghand", description="EggHand toolkit: egocentric 3D hand forecasting")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_) in COMMANDS.items():
        sub.add_parser(name, help=help_, add_help=False)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        parser.print_help() if not argv or argv[0] in ("-h", "--help") else parser.parse_args(argv[:1])
        return 0 if not argv or argv[0] in ("-h", "--help") else 2
    name = argv[0]
    module = importlib.import_module(COMMANDS[name][0])
    cmd_parser = argparse.ArgumentParser(prog=f"egghand {name}", description=COMMANDS[name][1])
    module.configure_parser(cmd_parser)
    args = cmd_parser.parse_args(argv[1:])
    return int(module.run(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
