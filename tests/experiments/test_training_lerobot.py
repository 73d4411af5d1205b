"""Training and evaluation read a LeRobot export directly: the same windows give the same run."""

from __future__ import annotations

import json

import pytest
import torch

from egghand_lib.cli import main as cli_main
from egghand_lib.evaluation import evaluate
from egghand_lib.training import TrainConfig, build_model, set_seed, train
from tests.fixtures.egosynth_lerobot import egosynth_both_formats
from tests.fixtures.learnable_episodes import single_thread


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    return egosynth_both_formats(tmp_path_factory.mktemp("lerobot-train"))


@pytest.fixture(scope="module")
def runs(both, tmp_path_factory):
    """The same tiny config trained 3 steps on the prepared folder and on its LeRobot export."""
    _, prep, lerobot_dir = both
    out = tmp_path_factory.mktemp("runs")
    cfg = TrainConfig.named("tiny", max_steps=3, batch_size=8, log_every=1, eval_split="val", eval_max_windows=16)
    with single_thread():
        a = train(cfg, out / "prepared", prep_dir=prep, progress=False)
        b = train(cfg, out / "lerobot", lerobot_dir=lerobot_dir, progress=False)
    return cfg, a, b


def test_same_seed_same_weights(runs, both):
    cfg, a, b = runs
    assert a.finished and b.finished and a.step == b.step == 3
    set_seed(cfg.seed)
    init = build_model(cfg, stats=None).state_dict()
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert set(sa) == set(sb)
    trained = [k for k in sa if k in init and not k.startswith("normalizer.") and not torch.equal(sa[k], init[k])]
    assert len(trained) > 10  # the runs did change the weights
    for k in sa:
        torch.testing.assert_close(sb[k], sa[k], rtol=0, atol=1e-6, msg=k)
    losses = lambda r: [row["loss"] for row in r.history if "loss" in row]  # noqa: E731
    assert losses(a) == pytest.approx(losses(b), abs=1e-6) and len(losses(a)) == 3
    assert a.eval_metrics["val_ade"] == pytest.approx(b.eval_metrics["val_ade"], abs=1e-6)


def test_run_records_where_its_data_came_from(runs):
    _, a, b = runs
    data_a = json.loads((a.out_dir / "settings.json").read_text())["data"]
    data_b = json.loads((b.out_dir / "settings.json").read_text())["data"]
    assert data_a["source"] == "prepared" and data_b["source"] == "lerobot"
    assert data_a["num_windows"] == data_b["num_windows"]
    assert len(data_b["data_sha256"]) == 64


def test_evaluate_reads_lerobot(runs, both):
    _, prep, lerobot_dir = both
    _, a, _ = runs
    with single_thread():
        ref = evaluate(prep, "test", a.model, progress=False)
        got = evaluate(None, "test", a.model, lerobot_dir=lerobot_dir, progress=False)
    assert got["lerobot_dir"] == str(lerobot_dir) and got["num_windows"] == ref["num_windows"] > 0
    for method in ("Static", "CVM", "EggHand"):
        want = ref["metrics"][method]["egghand"]["all"]
        assert got["metrics"][method]["egghand"]["all"] == pytest.approx(want, abs=1e-6), method


def test_cli_trains_and_evaluates_from_lerobot(both, tmp_path):
    _, _, lerobot_dir = both
    run = tmp_path / "run"
    with single_thread():
        assert cli_main(["train", "--lerobot", str(lerobot_dir), "--out", str(run), "--config", "tiny", "--steps", "2",
                         "--set", "eval_split=null", "--no-progress"]) == 0
        assert (run / "model" / "config.json").is_file()
        assert cli_main(["evaluate", "--lerobot", str(lerobot_dir), "--split", "val", "--model", str(run),
                         "--out", str(tmp_path / "eval"), "--no-progress"]) == 0
    res = json.loads((tmp_path / "eval" / "evaluation.json").read_text())
    assert res["split"] == "val" and "EggHand" in res["methods"]
    with pytest.raises(SystemExit):  # one data source, not both
        cli_main(["train", "--lerobot", str(lerobot_dir), "--prep", "x", "--out", str(run)])
