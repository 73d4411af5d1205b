"""The ``egghand`` sub-commands, one module each: ``synth``, ``prepare``, ``cache``, ``train``, ``evaluate``,
``ablate``, ``demo``.

Each module defines ``configure_parser(parser)`` (its flags) and ``run(args) -> int`` (parse nothing more, call
the library, print a short summary). ``egghand_lib.cli`` imports a command's module only when that command
runs, so this package imports none of them.
"""
