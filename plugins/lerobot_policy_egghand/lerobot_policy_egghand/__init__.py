"""lerobot plugin: importing it registers the policy type "egghand" (egghand_lib.models.lerobot_policy).

lerobot's scripts (lerobot-train, lerobot-eval, ...) import every installed distribution named
``lerobot_policy_*`` before parsing their arguments, so ``--policy.type=egghand`` works once this is installed.
"""

from egghand_lib.models.lerobot_policy import (
    EggHandLeRobotConfig,
    EggHandLeRobotPolicy,
    make_egghand_pre_post_processors,
)

__all__ = ["EggHandLeRobotConfig", "EggHandLeRobotPolicy", "make_egghand_pre_post_processors"]
