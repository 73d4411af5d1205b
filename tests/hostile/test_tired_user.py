"""A tired user's command lines: unknown config fields, impossible values, a split that was not prepared, a
batch bigger than the data, a missing file. One line each, naming what is wrong, exit status 2, no output."""

from __future__ import annotations

import pytest

from tests.fixtures.hostile import cli, error_line


@pytest.mark.parametrize("extra, why", [
    (["--set", "learning_rate=0.1"], r"config: unknown field\(s\) \['learning_rate'\]"),
    (["--set", "eval_every"], r"--set: expected FIELD=VALUE, got 'eval_every'"),
    (["--steps", "0"], r"config\.max_steps: must be >= 1, got 0"),
    (["--lr", "-1"], r"config\.lr: must be > 0, got -1"),
    (["--batch-size", "1000"], r"dataset: \d+ windows is fewer than one batch of 1000"),
    (["--model-set", "state_clip=0.5"], r"EggHandConfig\.state_clip: must be >= 1"),
    (["--model-set", "layers=3"], r"unknown EggHandConfig field\(s\) \['layers'\]"),
])
def test_train_command_line_mistakes(tiny_egosynth, tmp_path, capsys, extra, why):
    code, _, err = cli(capsys, "train", "--prep", str(tiny_egosynth.prep), "--out", str(tmp_path / "run"),
                       "--config", "tiny", "--no-progress", *extra)
    assert code == 2
    error_line(err, "train", why)
    assert not (tmp_path / "run" / "model").exists()


def test_evaluating_a_split_that_was_not_prepared(tiny_egosynth, tmp_path, capsys):
    code, _, err = cli(capsys, "evaluate", "--prep", str(tiny_egosynth.prep), "--split", "tset",
                       "--out", str(tmp_path / "r"), "--no-progress")
    assert code == 2
    error_line(err, "evaluate", r"split: 'tset' was not prepared", r"\['test', 'train', 'val'\]")
    assert not (tmp_path / "r" / "evaluation.json").exists()


def test_a_missing_encoder_config_file(tiny_egosynth, tmp_path, capsys):
    code, _, err = cli(capsys, "cache", "--prep", str(tiny_egosynth.prep), "--out", str(tmp_path / "c"),
                       "--encoder-config", str(tmp_path / "nope.json"), "--no-progress")
    assert code == 2
    error_line(err, "cache", r"--encoder-config: no file .*nope\.json")


def test_prepare_folder_given_as_raw(tiny_egosynth, tmp_path, capsys):
    """--raw and --prep mixed up: the prepared folder has no takes.json."""
    code, _, err = cli(capsys, "prepare", "--raw", str(tiny_egosynth.prep), "--out", str(tmp_path / "p"),
                       "--no-progress")
    assert code == 2
    error_line(err, "prepare", r"prep/takes\.json: file not found")
    assert not (tmp_path / "p").exists()


def test_raw_folder_given_as_prep(tiny_egosynth, tmp_path, capsys):
    code, _, err = cli(capsys, "train", "--prep", str(tiny_egosynth.raw), "--out", str(tmp_path / "run"),
                       "--config", "tiny", "--no-progress")
    assert code == 2
    error_line(err, "train", r"raw/manifest\.json: not a prepared-folder manifest \(no .splits. object\)")
    assert not (tmp_path / "run").exists()
