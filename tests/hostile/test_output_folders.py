"""Output folders a careless user (or an attacker) points commands at: full of other files, made with other
settings, a file instead of a folder, symbolic links planted inside; interrupted runs; file modes. Nothing of
the user's is deleted or overwritten without --overwrite, nothing is written outside --out, and an unfinished
folder never looks finished."""

from __future__ import annotations

import json
import os
import shutil
import stat

import pytest

from egghand_lib.data import prepare as prepare_module
from egghand_lib.data.egosynth import generate_egosynth
from egghand_lib.data.prepared import is_prepared, read_manifest
from tests.fixtures.hostile import cli, error_line, tree_state


def user_folder(path, files=("notes.txt", "report.md", "thesis/chapter1.tex")):
    for name in files:
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(f"the user's {name}\n")
    return tree_state(path)


@pytest.mark.parametrize("command", ["prepare", "evaluate", "ablate", "cache", "train", "synth", "demo"])
def test_every_command_refuses_a_folder_of_other_files(sb, capsys, tiny_egosynth, command):
    sb.out.mkdir()
    mine = user_folder(sb.out)
    prep = str(tiny_egosynth.prep)
    argv = {
        "prepare": sb.prepare_argv(),
        "evaluate": ["evaluate", "--prep", prep, "--split", "test", "--out", str(sb.out), "--no-progress"],
        "ablate": ["ablate", "--prep", prep, "--model", str(tiny_egosynth.run), "--out", str(sb.out), "--no-progress"],
        "cache": ["cache", "--prep", prep, "--out", str(sb.out), "--encoder", "egovideo", "--checkpoint",
                  str(sb.box / "absent.pth"), "--no-progress"],
        "train": ["train", "--prep", prep, "--out", str(sb.out), "--config", "tiny", "--no-progress"],
        "synth": ["synth", "--out", str(sb.out), "--no-progress"],
        "demo": ["demo", "--quick", "--out", str(sb.out), "--no-progress"],
    }[command]
    code, _, err = cli(capsys, *argv)
    assert code == 2
    error_line(err, command, str(sb.out), "not empty|already exists|not a|other")
    assert tree_state(sb.out) == mine  # nothing deleted, nothing added


def test_prepare_overwrite_replaces_the_folder_but_not_what_its_links_point_to(sb, capsys):
    sb.out.mkdir()
    user_folder(sb.out)
    (sb.out / "link_to_outside").symlink_to(sb.outside, target_is_directory=True)
    code, _, err = cli(capsys, *sb.prepare_argv("--overwrite"))
    assert code == 0, err
    assert not (sb.out / "notes.txt").exists() and not (sb.out / "link_to_outside").exists()
    assert (sb.outside / "victim.txt").read_text() == "must survive\n" and is_prepared(sb.out)


def test_symlink_planted_in_a_prepared_folder_is_not_written_through(sb, capsys):
    assert cli(capsys, *sb.prepare_argv())[0] == 0
    (sb.out / "episodes" / "train").rename(sb.box / "old_train")
    (sb.out / "episodes" / "train").symlink_to(sb.outside, target_is_directory=True)
    before = tree_state(sb.box, exclude=sb.out)
    code, _, err = cli(capsys, *sb.prepare_argv())
    assert code == 2
    error_line(err, "prepare", "would be written outside", str(sb.out))
    assert tree_state(sb.box, exclude=sb.out) == before


def test_prepare_rerun_with_other_settings_is_refused(sb, capsys):
    assert cli(capsys, *sb.prepare_argv())[0] == 0
    manifest = (sb.out / "manifest.json").read_bytes()
    argv = sb.prepare_argv()
    argv[argv.index("--size") + 1] = "24"
    code, _, err = cli(capsys, *argv)
    assert code == 2
    error_line(err, "prepare", "made with other settings", r"size: 16 -> 24")
    assert (sb.out / "manifest.json").read_bytes() == manifest


def test_out_is_a_file(sb, capsys):
    sb.out.write_text("a file\n")
    code, _, err = cli(capsys, *sb.prepare_argv())
    assert code == 2
    error_line(err, "prepare", "exists and is not a folder")
    assert sb.out.read_text() == "a file\n"


def test_finished_training_rerun_on_other_data_is_refused(tiny_egosynth, sb, capsys, tmp_path):
    """The issue: a finished `egghand train` re-run with another --prep exited 0 and kept the old model."""
    run = tmp_path / "run"
    shutil.copytree(tiny_egosynth.run, run)
    weights = (run / "model" / "model.safetensors").read_bytes()
    summary = (run / "summary.json").read_text()
    assert cli(capsys, *sb.prepare_argv("--splits", "train"))[0] == 0  # other data: the hand-made takes
    code, _, err = cli(capsys, "train", "--prep", str(sb.out), "--out", str(run), "--config", "tiny",
                       "--steps", "4", "--set", "eval_split=null", "--no-progress")
    assert code == 2
    error_line(err, "train", "different config or other data", "prep_manifest_sha256")
    assert (run / "model" / "model.safetensors").read_bytes() == weights
    assert (run / "summary.json").read_text() == summary  # not the new data's counts


def test_evaluate_again_with_other_inputs_is_refused(tiny_egosynth, tmp_path, capsys):
    out = tmp_path / "results"
    base = ["evaluate", "--prep", str(tiny_egosynth.prep), "--out", str(out), "--no-progress"]
    assert cli(capsys, *base, "--split", "val")[0] == 0
    first = (out / "evaluation.json").read_bytes()
    assert cli(capsys, *base, "--split", "val")[0] == 0  # the same evaluation again: fine
    code, _, err = cli(capsys, *base, "--split", "test")
    assert code == 2
    error_line(err, "evaluate", "of other inputs", r"split: 'val' -> 'test'")
    assert (out / "evaluation.json").read_bytes() == first
    assert cli(capsys, *base, "--split", "test", "--overwrite")[0] == 0
    assert json.loads((out / "evaluation.json").read_text())["split"] == "test"


def test_synth_into_an_empty_folder_the_user_made(tmp_path):
    out = tmp_path / "made_by_user"
    out.mkdir()
    generate_egosynth(out, preset="tiny", seed=1, progress=False, num_takes={"train": 1, "val": 0, "test": 0},
                      duration_sec=(3.0, 3.2), workers=1)
    assert (out / "manifest.json").is_file()


def test_interrupted_prepare_leaves_no_folder_that_looks_complete(sb, capsys, monkeypatch):
    real = prepare_module.load_episode_frames
    calls = []

    def interrupted(ep, size):
        calls.append(ep.key)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(ep, size)

    monkeypatch.setattr(prepare_module, "load_episode_frames", interrupted)
    code, _, err = cli(capsys, *sb.prepare_argv())
    assert code == 130 and err.strip() == "egghand prepare: interrupted"
    assert not (sb.out / "manifest.json").exists() and not is_prepared(sb.out)
    monkeypatch.setattr(prepare_module, "load_episode_frames", real)
    assert cli(capsys, *sb.prepare_argv())[0] == 0  # resumes
    m = read_manifest(sb.out)
    assert m["splits"]["train"]["num_episodes"] == 2 and m["splits"]["val"]["num_episodes"] == 1


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_output_files_respect_the_umask(sb, capsys, umask):
    old = os.umask(umask)
    try:
        assert cli(capsys, *sb.prepare_argv())[0] == 0
    finally:
        os.umask(old)
    modes = {p.relative_to(sb.out): stat.S_IMODE(p.stat().st_mode) for p in [sb.out, *sb.out.rglob("*")]}
    want_file, want_dir = 0o666 & ~umask, 0o777 & ~umask
    wrong = {str(p): oct(m) for p, m in modes.items() if m != (want_dir if (sb.out / p).is_dir() else want_file)}
    assert not wrong and len(modes) > 8


def test_training_run_files_respect_the_umask(tiny_egosynth, tmp_path, capsys):
    old = os.umask(0o027)
    try:
        code, _, err = cli(capsys, "train", "--prep", str(tiny_egosynth.prep), "--out", str(tmp_path / "run"),
                           "--config", "tiny", "--steps", "2", "--set", "eval_split=null", "--no-progress")
    finally:
        os.umask(old)
    assert code == 0, err
    entries = [tmp_path / "run", *(tmp_path / "run").rglob("*")]
    wrong = {str(p): oct(stat.S_IMODE(p.stat().st_mode)) for p in entries
             if stat.S_IMODE(p.stat().st_mode) != (0o750 if p.is_dir() else 0o640)}
    assert not wrong and any(p.name == "optimizer.pt" for p in entries)


def test_permission_error_is_one_line_naming_the_file(sb, capsys, monkeypatch):
    """(Tests run as root, where chmod does not stop writes: the refusal is simulated where files are placed.)"""
    real_replace = os.replace

    def denied(src, dst, *a, **kw):
        if str(dst).endswith("report.json"):
            raise PermissionError(13, "Permission denied", str(dst))
        return real_replace(src, dst, *a, **kw)

    monkeypatch.setattr(os, "replace", denied)
    code, _, err = cli(capsys, *sb.prepare_argv())
    assert code == 2
    error_line(err, "prepare", "Permission denied", r"out/report\.json")
    assert not (sb.out / "manifest.json").exists()
