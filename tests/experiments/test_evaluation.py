"""Evaluation: every number equals egghand_lib.metrics on the same arrays; files are written and agree."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from egghand_lib.baselines import ConstantVelocity, LastPose, StaticPose
from egghand_lib.batch import collate_windows
from egghand_lib.egomotion import top_fraction_mask
from egghand_lib.evaluation import baseline_forecasts, compute_results, evaluate, subset_indices, write_results
from egghand_lib.metrics import best_of_k, forecast_metrics, per_horizon_errors
from tests.fixtures.learnable_episodes import fake_datasets, input_dependent, single_thread, tiny_model

KEYS = ("ade", "fde", "mpjpe", "mpjpe_f")


@pytest.fixture(autouse=True)
def _one_thread():
    with single_thread():
        yield


@pytest.fixture(scope="module")
def data():
    return fake_datasets()


def _approx(d: dict, ref: dict):
    for k in KEYS:
        assert d[k] == pytest.approx(ref[k], rel=1e-9, abs=1e-12), k


def test_evaluate_equals_forecast_metrics(tmp_path, data):
    train, test = data
    model = input_dependent(tiny_model(train))
    res = evaluate(None, "test", model, tmp_path, dataset=test, train_dataset=train, batch_size=40, num_samples=2,
                   progress=False)
    a = test.arrays()
    gt, valid = a["future_joints"], a["future_valid"]
    # Baselines computed directly from the foundation classes.
    static = StaticPose().fit(train.arrays()["past_joints"], train.arrays()["past_valid"])
    direct = {"Static": static.predict(a["past_joints"], a["past_valid"]),
              "CVM": ConstantVelocity(static).predict(a["past_joints"], a["past_valid"])}
    batch = collate_windows([test[i] for i in range(len(test))])
    direct["EggHand"] = model.forecast(batch).numpy()
    top = top_fraction_mask(a["egomotion"], 0.1)
    for name, pred in direct.items():
        for conv in ("egghand", "egoh4"):
            _approx(res["metrics"][name][conv]["all"], forecast_metrics(pred, gt, valid, convention=conv))
            _approx(res["metrics"][name][conv]["top"],
                    forecast_metrics(pred[top], gt[top], valid[top], convention=conv))
            curves = per_horizon_errors(pred, gt, valid, convention=conv)
            assert np.allclose(res["per_horizon"][name][conv]["ade"], curves["ade"])
    samples = model.sample(batch, 2, seed=0).numpy()
    _approx(res["sampled"]["EggHand"]["egghand"], best_of_k(samples, gt, valid))
    assert res["sampled"]["EggHand"]["spread"] > 0
    ratio = res["ratios"]["EggHand/CVM"]["mpjpe"]
    assert ratio == pytest.approx(res["metrics"]["EggHand"]["egghand"]["all"]["mpjpe"]
                                  / res["metrics"]["CVM"]["egghand"]["all"]["mpjpe"])
    # Per-group rows combine into "all".
    groups = res["per_group"]["CVM"]
    assert set(groups) == {"scenario0", "scenario1", "scenario2", "all"}
    assert sum(g["num_samples"] for k, g in groups.items() if k != "all") == len(test)
    # Files: JSON is the returned dict, the long CSV holds the same numbers.
    on_disk = json.loads((tmp_path / "evaluation.json").read_text())
    assert on_disk["metrics"] == json.loads(json.dumps(res["metrics"]))
    with open(tmp_path / "evaluation.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["method"] == "EggHand" and r["convention"] == "egoh4"
                and r["subset"] == "all" and r["metric"] == "mpjpe"]
    assert float(rows[0]["value"]) == pytest.approx(res["metrics"]["EggHand"]["egoh4"]["all"]["mpjpe"], rel=1e-5)
    md = (tmp_path / "evaluation.md").read_text()
    assert "EggHand/CVM" in md and "Top 10% egomotion" in md and "best-of-K" in md
    assert (tmp_path / "evaluation_per_horizon.csv").read_text().count("\n") == 1 + 3 * 2 * 10
    assert not list(tmp_path.glob(".*.tmp"))


def test_compute_results_on_random_arrays_and_subsets():
    rng = np.random.default_rng(0)
    n = 50
    gt = rng.normal(size=(n, 10, 42, 3))
    valid = rng.random((n, 10, 42)) > 0.3
    pred = gt + rng.normal(scale=0.1, size=gt.shape)
    arrays = {"future_joints": gt, "future_valid": valid, "egomotion": rng.random(n),
              "scenario": np.array(["a", "b"] * 25, dtype=object)}
    res = compute_results({"X": pred}, arrays, conventions=("egoh4",))
    _approx(res["metrics"]["X"]["egoh4"]["all"], forecast_metrics(pred, gt, valid, convention="egoh4"))
    assert res["num_top"] == 5 and "egghand" not in res["metrics"]["X"] and res["ratios"] == {}
    with pytest.raises(ValueError, match="shape"):
        compute_results({"X": pred[:, :5]}, arrays)
    assert subset_indices(10, None).tolist() == list(range(10))
    assert subset_indices(100, 5).tolist() == [0, 25, 50, 74, 99]


def test_write_results_handles_nan(tmp_path):
    rng = np.random.default_rng(1)
    gt = rng.normal(size=(4, 10, 42, 3))
    valid = np.zeros((4, 10, 42), bool)
    valid[:, :, 1:21] = True  # no wrist ever valid: ADE/FDE and wrist-relative MPJPE are NaN
    res = compute_results({"X": gt}, {"future_joints": gt, "future_valid": valid})
    assert res["metrics"]["X"]["egghand"]["all"]["ade"] is None  # NaN -> null in JSON
    paths = write_results(res, tmp_path, name="r")
    assert json.loads(paths["json"].read_text())["metrics"]["X"]["egoh4"]["all"]["mpjpe"] == 0.0
    assert "| X | - | - |" in paths["md"].read_text()


def test_baseline_forecasts_on_request(data):
    train, test = data
    a, t = test.arrays(), train.arrays()
    static = StaticPose().fit(t["past_joints"], t["past_valid"])
    got = baseline_forecasts(a, t, "egghand-code", methods=("LastPose", "CVM"))
    assert list(got) == ["LastPose", "CVM"]
    kw = dict(horizon=10, first_offset=0)
    assert np.allclose(got["LastPose"], LastPose(static).predict(a["past_joints"], a["past_valid"], **kw))
    assert np.allclose(got["CVM"], ConstantVelocity(static).predict(a["past_joints"], a["past_valid"], **kw))
    assert not np.allclose(got["LastPose"], got["CVM"])
    with pytest.raises(ValueError, match="unknown baseline.*'USST'"):
        baseline_forecasts(a, t, methods=("Static", "USST"))


def test_evaluate_with_lastpose_beside_the_model(data):
    train, test = data
    model = tiny_model(train)
    res = evaluate(None, "test", model, dataset=test, train_dataset=train, baselines=("Static", "CVM", "LastPose"),
                   progress=False)
    assert res["methods"] == ["Static", "CVM", "LastPose", "EggHand"]
    a = test.arrays()
    static = StaticPose().fit(train.arrays()["past_joints"], train.arrays()["past_valid"])
    held = LastPose(static).predict(a["past_joints"], a["past_valid"])
    _approx(res["metrics"]["LastPose"]["egghand"]["all"], forecast_metrics(held, a["future_joints"], a["future_valid"]))
    assert set(res["ratios"]) == {"EggHand/Static", "EggHand/CVM", "EggHand/LastPose"}
    with pytest.raises(ValueError, match="unknown baseline"):
        evaluate(None, "test", None, dataset=test, train_dataset=train, baselines=("Oracle",), progress=False)
