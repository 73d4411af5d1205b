"""Where the comparison with lerobot 0.4.4's GR00T head is collected.

``test_gr00t_action_head_vs_lerobot.py`` compares the toolkit's head with lerobot 0.4.4's
``FlowmatchingActionHead`` (lerobot 0.5 removed it). It is collected

- on Python < 3.12, the environment whose requirements install lerobot 0.4.4: there it must run, and it
  fails with a clear message if lerobot 0.4.4 is missing instead of passing without comparing anything;
- wherever a lerobot older than 0.5 is installed, whatever the Python.

It is left out only where the installed lerobot is 0.5 or newer on Python 3.12+ (the lerobot 0.6
environment), where the reference head does not exist.
"""

import sys
from importlib.metadata import PackageNotFoundError, version

from packaging.version import Version


def _lerobot_version() -> Version | None:
    try:
        return Version(version("lerobot"))
    except PackageNotFoundError:
        return None


def lerobot_head_expected() -> bool:
    """True where the comparison with lerobot 0.4.4's head must run (see the module docstring)."""
    installed = _lerobot_version()
    return sys.version_info < (3, 12) or (installed is not None and installed < Version("0.5"))


collect_ignore = [] if lerobot_head_expected() else ["test_gr00t_action_head_vs_lerobot.py"]
