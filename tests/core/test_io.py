"""Atomic writes: readers never see partial output, and failures leave the old content."""

import json
import os
import stat

import pytest

from egghand_lib.io import atomic_dir, atomic_write_json, atomic_write_text, clean_partials


def test_atomic_write_replaces_and_keeps_plain_permissions(tmp_path):
    p = tmp_path / "a.json"
    atomic_write_json(p, {"x": 1})
    atomic_write_json(p, {"x": 2})
    assert json.loads(p.read_text()) == {"x": 2}
    mode = stat.S_IMODE(os.stat(p).st_mode)
    assert mode & stat.S_IRGRP, oct(mode)  # not mkstemp's 0600
    assert [q.name for q in tmp_path.iterdir()] == ["a.json"]


def test_failed_write_leaves_old_content(tmp_path):
    p = tmp_path / "a.txt"
    atomic_write_text(p, "old")

    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        from egghand_lib.io import atomic_path

        with atomic_path(p) as tmp:
            tmp.write_text("half")
            raise Boom
    assert p.read_text() == "old"
    assert [q.name for q in tmp_path.iterdir()] == ["a.txt"]


def test_atomic_dir_all_or_nothing(tmp_path):
    out = tmp_path / "data"
    with pytest.raises(RuntimeError):
        with atomic_dir(out) as tmp:
            (tmp / "part").write_text("1")
            raise RuntimeError("interrupted")
    assert not out.exists()
    with atomic_dir(out) as tmp:
        (tmp / "part").write_text("2")
    assert (out / "part").read_text() == "2"
    with pytest.raises(FileExistsError):
        with atomic_dir(out):
            pass
    with atomic_dir(out, overwrite=True) as tmp:
        (tmp / "new").write_text("3")
    assert sorted(q.name for q in out.iterdir()) == ["new"]
    assert clean_partials(tmp_path) == 0
    (tmp_path / ".data.x.partial").mkdir()
    assert clean_partials(tmp_path) == 1
