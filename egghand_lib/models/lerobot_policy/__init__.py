"""EggHand as the lerobot policy type "egghand" (lerobot's folder layout; importing it registers the type).

- ``configuration_egghand``: ``EggHandLeRobotConfig`` (lerobot's PreTrainedConfig, registered as "egghand");
- ``modeling_egghand``: ``EggHandLeRobotPolicy`` (select_action / predict_action_chunk / forward around
  ``EggHandPolicy``);
- ``processor_egghand``: ``make_egghand_pre_post_processors``.

    lerobot-train --policy.type=egghand --policy.preset=cpu-small --dataset.repo_id=local/egosynth \
        --dataset.root=PREP/lerobot/train --output_dir=runs/lerobot-egghand --steps=600 --batch_size=64

lerobot finds the type through the ``lerobot_policy_egghand`` distribution (``plugins/lerobot_policy_egghand``,
installed by requirements.txt), or with ``--policy.discover_packages_path=egghand_lib.models.lerobot_policy``.
Importing this package imports lerobot's configs and policies; ``egghand_lib.models`` does not import it.
"""

from egghand_lib.models.lerobot_policy.configuration_egghand import EggHandLeRobotConfig
from egghand_lib.models.lerobot_policy.modeling_egghand import EggHandLeRobotPolicy
from egghand_lib.models.lerobot_policy.processor_egghand import make_egghand_pre_post_processors

__all__ = ["EggHandLeRobotConfig", "EggHandLeRobotPolicy", "make_egghand_pre_post_processors"]
