"""The ``egghand`` command: one sub-command per stage of the pipeline.

Each sub-command is a module ``egghand_lib.commands.<name>`` defining ``configure_parser(parser)`` and
``run(args) -> int``; it parses the flags and calls the library. A command's module is imported only
when that command runs, so ``egghand --help`` stays fast.

An expected error (bad input, a bad or missing file, a refused output folder, a permission) is printed as
one line ``egghand COMMAND: error: FILE: PROBLEM`` and exits with status 2; ``--debug`` (before or after the
command) adds its traceback. Ctrl-C exits with 130. Any other exception is a bug: its traceback is kept.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback

# name -> one-line help; the code of `egghand NAME` is egghand_lib.commands.NAME.
COMMANDS: dict[str, str] = {
    "synth": "generate an EgoSynth dataset in the EgoExo4D layout",
    "prepare": "EgoExo4D-layout files -> validated canonical windows / LeRobot dataset",
    "cache": "precompute a frozen encoder's features for prepared windows",
    "train": "train an EggHand model from a named config",
    "evaluate": "evaluate Static, CVM and a trained model on a split",
    "forecast": "stream a take through a model and write a video with the forecasts drawn",
    "ablate": "run the paper's ablations (Tables 2-5)",
    "pretrain": "pretrain the offline encoder (EgoVideo-mini) and GR00T-architecture head, or the whole recipe",
    "demo": "end to end on the built-in defaults: synth, prepare, train, evaluate, ablate",
}


# Errors of the input or the environment (bad or missing files, bad values, permissions): one line, exit 2.
# The library raises ValueError (and its subclasses ValidationError, OutputFolderError, StaleCacheError) or
# OSError naming the file and the problem; anything else is a bug and keeps its traceback.
EXPECTED_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError)
EXIT_ERROR, EXIT_INTERRUPTED = 2, 130


def error_line(exc: BaseException) -> str:
    """The one line an expected error is shown as: its message's first line (the rest is in --debug)."""
    text = str(exc).strip() or type(exc).__name__
    if isinstance(exc, OSError) and exc.filename is not None and str(exc.filename) not in text:
        text = f"{exc.filename}: {text}"
    first, *rest = text.splitlines()
    return first + (f" [{len(rest)} more lines: --debug]" if rest else "")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    debug = bool(argv) and argv[0] == "--debug"
    argv = argv[1:] if debug else argv
    parser = argparse.ArgumentParser(prog="egghand", description="EggHand toolkit: egocentric 3D hand forecasting",
                                     epilog="egghand [--debug] COMMAND ...: --debug shows the traceback of an error")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_ in COMMANDS.items():
        sub.add_parser(name, help=help_, add_help=False)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        parser.print_help() if not argv or argv[0] in ("-h", "--help") else parser.parse_args(argv[:1])
        return 0 if not argv or argv[0] in ("-h", "--help") else 2
    name = argv[0]
    module = importlib.import_module(f"egghand_lib.commands.{name}")
    cmd_parser = argparse.ArgumentParser(prog=f"egghand {name}", description=COMMANDS[name])
    module.configure_parser(cmd_parser)
    cmd_parser.add_argument("--debug", action="store_true", help="on an error, show its traceback")
    args = cmd_parser.parse_args(argv[1:])
    debug = debug or args.debug
    try:
        return int(module.run(args) or 0)
    except KeyboardInterrupt:
        if debug:
            traceback.print_exc()
        print(f"egghand {name}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except EXPECTED_ERRORS as e:
        if debug:
            traceback.print_exc()
        print(f"egghand {name}: error: {error_line(e)}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    raise SystemExit(main())
