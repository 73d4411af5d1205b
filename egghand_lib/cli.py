"""The ``egghand`` command: one sub-command per stage of the pipeline.

Each sub-command is a module ``egghand_lib.commands.<name>`` defining ``configure_parser(parser)`` and
``run(args) -> int``; it parses the flags and calls the library. A command's module is imported only
when that command runs, so ``egghand --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> one-line help; the code of `egghand NAME` is egghand_lib.commands.NAME.
COMMANDS: dict[str, str] = {
    "synth": "generate an EgoSynth dataset in the EgoExo4D layout",
    "prepare": "EgoExo4D-layout files -> validated canonical windows / LeRobot dataset",
    "cache": "precompute a frozen encoder's features for prepared windows",
    "train": "train an EggHand model from a named config",
    "evaluate": "evaluate Static, CVM and a trained model on a split",
    "forecast": "stream a take through a model and write a video with the forecasts drawn",
    "ablate": "run the paper's ablations (Tables 2-5)",
    "demo": "end to end on the built-in defaults: synth, prepare, train, evaluate, ablate",
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="egghand", description="EggHand toolkit: egocentric 3D hand forecasting")
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
    args = cmd_parser.parse_args(argv[1:])
    return int(module.run(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
