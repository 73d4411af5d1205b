"""Damaged or forged files the toolkit loads: saved models, training checkpoints, prepared episodes and
manifests, statistics, GR00T and EgoVideo checkpoints, feature caches. Each is refused with one line naming
the file and the problem (exit status 2, no traceback); the unexpected keeps its traceback."""

from __future__ import annotations

import json
import shutil
import struct

import pytest
import torch
from safetensors.torch import load_file, save_file

from egghand_lib.cli import main as cli_main
from egghand_lib.commands import evaluate as evaluate_command
from egghand_lib.data.feature_cache import CachedFeatures, build_feature_cache
from egghand_lib.data.prepared import load_episode, read_manifest, stored_digest
from egghand_lib.data.windows import WindowDataset
from egghand_lib.models.encoders.egovideo import EgoVideoConfig, load_egovideo_checkpoint, random_egovideo_state_dict
from tests.fixtures.hostile import cli, error_line
from tests.fixtures.tiny_models import TinyEncoder

SMALL_EGOVIDEO = EgoVideoConfig(image_size=28, width=32, depth=1, heads=4, mlp_dim=64, pool_heads=4, pool_dim=24,
                                embed_dim=16, text_width=32, text_layers=1, text_heads=4, text_mlp_dim=64,
                                max_positions=64)


@pytest.fixture
def run(tiny_egosynth, tmp_path):
    """A copy of the finished tiny run, to damage."""
    return shutil.copytree(tiny_egosynth.run, tmp_path / "run")


@pytest.fixture
def prep(tiny_egosynth, tmp_path):
    """A copy of the tiny prepared folder, to damage."""
    return shutil.copytree(tiny_egosynth.prep, tmp_path / "prep")


def evaluate_argv(prep, tmp_path, *extra):
    return ["evaluate", "--prep", str(prep), "--split", "test", "--out", str(tmp_path / "results"), "--no-progress",
            *extra]


# ----------------------------------------------------------------------------------------------- saved models


def _rewrite_weights(model_dir, fn):
    path = model_dir / "model.safetensors"
    state = load_file(str(path))
    fn(state)
    save_file(state, str(path))


@pytest.mark.parametrize("damage, why", [
    ("truncated", r"model/model\.safetensors: not a valid safetensors file"),
    ("nan_weight", r"model/model\.safetensors: NaN or inf in 1 weight tensor\(s\), e\.g\. action_out_proj\.weight"),
    ("nan_stats", r"model/model\.safetensors: holds no valid normalisation statistics \(NaN or inf in normalizer"),
    ("config_garbage", r"model/config\.json: not valid JSON"),
    ("config_wrong_type", r"model/config\.json: EggHandConfig\.motion_mlp: expected int, got 'wide'"),
    ("no_config", r"no config\.json; expected a saved model folder"),
])
def test_damaged_saved_model(run, prep, tmp_path, capsys, damage, why):
    model = run / "model"
    if damage == "truncated":
        data = (model / "model.safetensors").read_bytes()
        (model / "model.safetensors").write_bytes(data[: len(data) // 2])
    elif damage == "nan_weight":
        _rewrite_weights(model, lambda s: s["action_out_proj.weight"].view(-1).__setitem__(0, float("nan")))
    elif damage == "nan_stats":
        _rewrite_weights(model, lambda s: s["normalizer.state_min"].fill_(float("nan")))
    elif damage == "config_garbage":
        (model / "config.json").write_bytes(b"\x00\x01{{{")
    elif damage == "config_wrong_type":
        cfg = json.loads((model / "config.json").read_text())
        cfg["motion_mlp"] = "wide"
        (model / "config.json").write_text(json.dumps(cfg))
    elif damage == "no_config":
        (model / "config.json").unlink()
    code, _, err = cli(capsys, *evaluate_argv(prep, tmp_path, "--model", str(run)))
    assert code == 2
    error_line(err, "evaluate", why)
    assert not (tmp_path / "results" / "evaluation.json").exists()


def test_model_folder_that_does_not_exist(prep, tmp_path, capsys):
    code, _, err = cli(capsys, *evaluate_argv(prep, tmp_path, "--model", str(tmp_path / "no_run")))
    assert code == 2
    error_line(err, "evaluate", r"no_run: not a directory")


# --------------------------------------------------------------------------------------- the prepared folder


def _episode_file(prep, split="test"):
    return next((prep / "episodes" / split).glob("*.safetensors"))


@pytest.mark.parametrize("damage, why", [
    ("garbage_header", r"corrupt safetensors header \(declares \d+ header bytes, the file has \d+\)"),
    ("truncated", r"tensor '\w+' lies outside the file .*truncated"),
    ("forged_dtype", r"tensor 'joints' has \d+ bytes for shape \(\d+, 42, 3\) \(float64\)"),
    ("not_json_header", r"corrupt safetensors header"),
])
def test_damaged_episode_file(prep, tmp_path, capsys, damage, why):
    path = _episode_file(prep)
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    if damage == "garbage_header":  # the issue: this gave a MemoryError on a re-run
        path.write_bytes(b"\xff" * 8 + data[8:])
    elif damage == "truncated":
        path.write_bytes(data[: len(data) - 1000])
    elif damage == "forged_dtype":  # same header length, twice the bytes the data holds
        path.write_bytes(data[:8] + data[8:8 + n].replace(b'"joints":{"dtype":"F32"', b'"joints":{"dtype":"F64"')
                         + data[8 + n:])
        assert path.read_bytes() != data
    elif damage == "not_json_header":
        path.write_bytes(data[:8] + b"\x00" * n + data[8 + n:])
    code, _, err = cli(capsys, *evaluate_argv(prep, tmp_path))
    assert code == 2
    error_line(err, "evaluate", str(path), why)


@pytest.mark.parametrize("damage, why", [
    ("key_climbing_out", r"manifest\.json: episode key: '\.\./\.\./\.\./outside/x' cannot be a file or folder name"),
    ("missing", r"manifest\.json: (no manifest|not found); "),
    ("not_json", r"manifest\.json: not valid JSON"),
    ("episodes_not_a_list", r"manifest\.json: splits\.test\.episodes is not a list"),
    ("episode_file_gone", r"episode file not found"),
])
def test_damaged_manifest(prep, tmp_path, capsys, damage, why):
    path = prep / "manifest.json"
    m = json.loads(path.read_text())
    if damage == "key_climbing_out":
        m["splits"]["test"]["episodes"] = ["../../../outside/x"]
    elif damage == "episodes_not_a_list":
        m["splits"]["test"]["episodes"] = {"a": 1}
    elif damage == "episode_file_gone":
        _episode_file(prep).unlink()
    path.write_text(json.dumps(m))
    if damage == "missing":
        path.unlink()
    elif damage == "not_json":
        path.write_text('{"splits": ')
    code, _, err = cli(capsys, *evaluate_argv(prep, tmp_path))
    assert code == 2
    error_line(err, "evaluate", why)


@pytest.mark.parametrize("value", ["NaN", "Infinity", '"0.5"'])
def test_statistics_with_nan_name_the_file(prep, tmp_path, capsys, value):
    path = prep / "stats.json"
    path.write_text(path.read_text().replace("[", f"[{value}, ", 1))
    code, _, err = cli(capsys, "train", "--prep", str(prep), "--out", str(tmp_path / "run2"), "--config", "tiny",
                       "--steps", "1", "--no-progress")
    assert code == 2
    error_line(err, "train", r"prep/stats\.json: ")
    assert not (tmp_path / "run2" / "model").exists()


# ------------------------------------------------------------------------------------- training checkpoints


@pytest.mark.parametrize("damage, why", [
    ("weights_truncated", r"step_000004/model\.safetensors: not a readable safetensors file"),
    ("weights_nan", r"step_000004/model\.safetensors: NaN or inf in 1 tensor"),
    ("optimizer_truncated", r"step_000004/optimizer\.pt: not a readable torch file"),
    ("state_garbage", r"step_000004/state\.json: not valid JSON"),
    ("state_no_step", r"step_000004/state\.json: no valid 'step'"),
    ("metrics_garbage", r"metrics\.csv: not a metrics log of this toolkit"),
])
def test_resuming_from_a_damaged_checkpoint(run, tiny_egosynth, capsys, damage, why):
    shutil.rmtree(run / "model")
    (run / "summary.json").unlink()  # unfinished: the next run resumes from the checkpoint
    ckpt = run / "checkpoints" / "step_000004"
    if damage == "weights_truncated":
        data = (ckpt / "model.safetensors").read_bytes()
        (ckpt / "model.safetensors").write_bytes(data[:100])
    elif damage == "weights_nan":
        _rewrite_weights(ckpt, lambda s: s["action_out_proj.bias"].fill_(float("inf")))
    elif damage == "optimizer_truncated":
        data = (ckpt / "optimizer.pt").read_bytes()
        (ckpt / "optimizer.pt").write_bytes(data[: len(data) // 3])
    elif damage == "state_garbage":
        (ckpt / "state.json").write_text("step: 4")
    elif damage == "state_no_step":
        (ckpt / "state.json").write_text('{"step": "four"}')
    elif damage == "metrics_garbage":
        (run / "metrics.csv").write_bytes(b"step,loss\nfour,1\n")
    code, _, err = cli(capsys, "train", "--prep", str(tiny_egosynth.prep), "--out", str(run), "--config", "tiny",
                       "--steps", "4", "--set", "eval_split=null", "--no-progress")
    assert code == 2
    error_line(err, "train", why)
    assert not (run / "model").exists()


# ---------------------------------------------------------------------------------------- encoder / GR00T files


@pytest.mark.parametrize("damage, why", [
    ("absent_shard", r"model-00002\.safetensors: shard listed in the index is missing"),
    ("no_index", r"model\.safetensors\.index\.json: index file not found"),
    ("index_garbage", r"model\.safetensors\.index\.json: not a safetensors index"),
    ("shard_garbage", r"model-00002\.safetensors: not a valid safetensors file"),
])
def test_damaged_gr00t_folder(tiny_egosynth, tmp_path, capsys, damage, why):
    folder = tmp_path / "gr00t"
    folder.mkdir()
    if damage != "no_index":
        index = {"weight_map": {"backbone.x": "model-00001.safetensors",
                                "action_head.action_decoder.layer1.W": "model-00002.safetensors"}}
        (folder / "model.safetensors.index.json").write_text("{" if damage == "index_garbage" else json.dumps(index))
    if damage == "shard_garbage":
        (folder / "model-00002.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")
    code, _, err = cli(capsys, "train", "--prep", str(tiny_egosynth.prep), "--out", str(tmp_path / "run"),
                       "--config", "tiny", "--steps", "1", "--gr00t", str(folder), "--no-progress")
    assert code == 2
    error_line(err, "train", why)


@pytest.fixture(scope="module")
def small_egovideo(tmp_path_factory):
    path = tmp_path_factory.mktemp("egovideo") / "ckpt_small.pth"
    torch.save(random_egovideo_state_dict(SMALL_EGOVIDEO), path)
    return path


def test_egovideo_checkpoint_of_the_wrong_size_is_one_line(tiny_egosynth, small_egovideo, tmp_path, capsys):
    """The issue: 849 lines. The CLI prints one; the library's message lists at most 10 + 10 tensors."""
    code, _, err = cli(capsys, "cache", "--prep", str(tiny_egosynth.prep), "--out", str(tmp_path / "cache"),
                       "--encoder", "egovideo", "--checkpoint", str(small_egovideo), "--device", "cpu",
                       "--no-progress")
    assert code == 2
    error_line(err, "cache", r"ckpt_small\.pth: not an EgoVideo checkpoint matching the config",
               r"\[\d+ more lines: --debug\]")
    with pytest.raises(ValueError) as e:
        load_egovideo_checkpoint(small_egovideo)
    assert len(str(e.value).splitlines()) <= 22


@pytest.mark.parametrize("damage, why", [
    ("truncated", r"ckpt\.pth: not a readable torch checkpoint"),
    ("pickled_code", r"ckpt\.pth: refused by torch\.load\(weights_only=True\)"),
    ("absent", r"EgoVideo checkpoint not found: .*ckpt\.pth"),
])
def test_damaged_egovideo_checkpoint(tiny_egosynth, small_egovideo, tmp_path, capsys, damage, why):
    path = tmp_path / "ckpt.pth"
    sentinel = tmp_path / "code_ran"
    if damage == "truncated":
        data = small_egovideo.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif damage == "pickled_code":
        class Payload:
            def __reduce__(self):
                return (open, (str(sentinel), "w"))
        torch.save({"w": torch.zeros(1), "evil": Payload()}, path)
    code, _, err = cli(capsys, "cache", "--prep", str(tiny_egosynth.prep), "--out", str(tmp_path / "cache"),
                       "--encoder", "egovideo", "--checkpoint", str(path), "--device", "cpu", "--no-progress")
    assert code == 2
    error_line(err, "cache", why)
    assert not sentinel.exists()  # the pickled code never ran


class CacheableTinyEncoder(TinyEncoder):
    def cache_key(self) -> dict:
        return {"tiny": 0}


def test_truncated_feature_cache_shard_names_the_shard(tiny_egosynth, tmp_path):
    ds = WindowDataset(tiny_egosynth.prep, "val")
    build_feature_cache(CacheableTinyEncoder(), ds, tmp_path / "cache", shard_size=32, progress=False)
    shard = tmp_path / "cache" / "shard_00001.safetensors"
    assert shard.is_file()
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) - 64])
    cache = CachedFeatures(tmp_path / "cache")
    assert cache[0]["video_tokens"].shape[0] > 0  # the intact shard still reads
    with pytest.raises(ValueError, match=r"shard_00001\.safetensors: unreadable feature-cache shard"):
        cache[40]


# ------------------------------------------------------------------------------------------ the CLI contract


def test_debug_shows_the_traceback_before_or_after_the_command(tmp_path, capsys):
    for argv in (["--debug", "evaluate", "--prep", str(tmp_path / "p"), "--out", str(tmp_path / "o")],
                 ["evaluate", "--prep", str(tmp_path / "p"), "--out", str(tmp_path / "o"), "--debug"]):
        code, _, err = cli(capsys, *argv)
        assert code == 2 and "Traceback (most recent call last)" in err and "FileNotFoundError" in err
        assert err.rstrip().splitlines()[-1].startswith("egghand evaluate: error: ")


def test_an_unexpected_error_keeps_its_traceback(monkeypatch, tmp_path):
    def bug(args):
        raise TypeError("unsupported operand type(s) for +: 'int' and 'str'")

    monkeypatch.setattr(evaluate_command, "run", bug)
    with pytest.raises(TypeError, match="unsupported operand"):
        cli_main(["evaluate", "--prep", str(tmp_path), "--out", str(tmp_path / "o")])


def test_prepare_rerun_over_an_episode_with_a_garbage_header(sb, capsys):
    """The issue: a garbage episode header on a re-run gave a MemoryError. The episode is simply rewritten."""
    assert cli(capsys, *sb.prepare_argv())[0] == 0
    path = next((sb.out / "episodes" / "train").glob("*.safetensors"))
    good = load_episode(path, mmap=False)
    digest = stored_digest(path)
    path.write_bytes(b"\xff" * 8 + path.read_bytes()[8:])
    assert stored_digest(path) is None  # unreadable: to be rewritten
    code, _, err = cli(capsys, *sb.prepare_argv())
    assert code == 0, err
    again = load_episode(path, mmap=False)
    assert stored_digest(path) == digest and (again.frames == good.frames).all()
    assert read_manifest(sb.out)["splits"]["train"]["num_episodes"] == 2
