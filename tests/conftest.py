"""Suite-wide settings: the tests run offline and never reach a model hub or dataset server."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny_egosynth(tmp_path_factory):
    """A tiny EgoSynth generation, its prepared folder and a short tiny run (tests.fixtures.tiny_egosynth):
    built once per session, never modified (copy what you damage)."""
    from tests.fixtures.tiny_egosynth import build_tiny_egosynth  # imported here: it loads torch and accelerate

    return build_tiny_egosynth(tmp_path_factory.mktemp("tiny_egosynth"))
