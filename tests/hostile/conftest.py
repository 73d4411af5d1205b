"""The clean raw folder every hostile case copies and damages (written once per session)."""

import pytest

from tests.fixtures.hostile import Sandbox, write_clean_raw


@pytest.fixture(scope="session")
def clean_raw(tmp_path_factory):
    return write_clean_raw(tmp_path_factory.mktemp("hostile_clean") / "raw")


@pytest.fixture
def sb(tmp_path, clean_raw) -> Sandbox:
    return Sandbox.make(tmp_path / "box", clean_raw)
