"""The small rooms around the loop, each on its own: running means, early stopping,
checkpoint reading and compatibility, and one-forward-pass evaluation."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from mtlkit.data import load_dataset
from mtlkit.metrics import TASK_METRICS
from mtlkit.models import build_model
from mtlkit.training import TrainConfig, Trainer
from mtlkit.training.checkpoint import CHECKPOINT_FORMAT, check_compatible, read_checkpoint
from mtlkit.training.early_stopping import EarlyStopping
from mtlkit.training.history import RunningMeans

SMALL = dict(embedding_dim=4, d_model=8, n_heads=1, d_ff=8, tower_hidden=(8,), n_experts=2, expert_hidden=(8,))


@pytest.fixture(scope="module")
def data():
    return load_dataset("synthetic-funnel", n_users=40, n_items=20, n_impressions=400, seq_len=3)


# --------------------------------------------------------------------------- running means
def test_running_means_average_values_weights_and_diagnostics_over_the_window():
    running = RunningMeans(2, torch.device("cpu"))
    running.add(torch.tensor([1.0, 4.0]), {"a": 1.0}, {"grad_norm/a": 2.0}, n_samples=10)
    running.add(torch.tensor([3.0, 0.0]), {"a": 3.0}, {}, n_samples=6)
    values, weights, diagnostics = running.means()
    assert values == [2.0, 2.0] and weights == {"a": 2.0}
    assert diagnostics == {"grad_norm/a": 1.0}  # a diagnostic missing from a step counts as 0
    assert running.steps == 2 and running.samples == 16 and running.samples_per_second() > 0
    running.reset()
    assert running.means() == ([0.0, 0.0], {}, {}) and running.steps == running.samples == 0


# --------------------------------------------------------------------------- early stopping
def test_early_stopping_keeps_the_best_weights_and_stops_after_patience():
    module = nn.Linear(1, 1, bias=False)
    stopping = EarlyStopping("valid/click/auc", "auto", patience=2)
    assert stopping.mode == "max"  # AUC: higher is better
    module.weight.data.fill_(1.0)
    assert not stopping.update({"valid/click/auc": 0.6}, 1, {"model": module})
    module.weight.data.fill_(2.0)
    assert not stopping.update({"valid/click/auc": 0.5}, 2, {"model": module})
    assert stopping.update({"valid/click/auc": 0.55}, 3, {"model": module})  # second bad epoch: stop
    assert (stopping.best_value, stopping.best_epoch, stopping.bad_epochs) == (0.6, 1, 2)
    assert stopping.restore({"model": module}) and module.weight.item() == 1.0


def test_early_stopping_min_mode_and_nan():
    stopping = EarlyStopping("loss", "auto", patience=5)
    assert stopping.mode == "min"
    module = nn.Linear(1, 1)
    stopping.update({"loss": math.nan}, 1, {"model": module})
    stopping.update({"loss": 3.0}, 2, {"model": module})  # any number beats a NaN best
    stopping.update({"loss": math.nan}, 3, {"model": module})  # a NaN never improves
    assert (stopping.best_value, stopping.best_epoch, stopping.bad_epochs) == (3.0, 2, 1)
    assert EarlyStopping("valid/rating/rmse", "max", 1).mode == "max"  # an explicit mode wins


def test_early_stopping_state_round_trips_in_the_format_1_layout():
    stopping = EarlyStopping("loss", "min", 3)
    modules = {"model": nn.Linear(2, 1), "adversary": nn.Linear(2, 1)}
    stopping.update({"loss": 1.0}, 1, modules)
    state = stopping.state_dict(("model", "adversary"))
    assert set(state) == {"best_value", "best_epoch", "bad_epochs", "best_state", "best_adversary_state"}
    again = EarlyStopping("loss", "min", 3)
    again.load_state_dict(state, ("model", "adversary"), torch.device("cpu"))
    assert again.best_epoch == 1 and set(again.best_states) == {"model", "adversary"}
    older = {k: v for k, v in state.items() if k != "best_adversary_state"}  # before the adversary existed
    again.load_state_dict(older, ("model", "adversary"), torch.device("cpu"))
    assert set(again.best_states) == {"model"}


# --------------------------------------------------------------------------- checkpoints
def test_read_checkpoint_refuses_a_missing_file_and_a_foreign_format(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_checkpoint(tmp_path / "none.pt")
    torch.save({"format": CHECKPOINT_FORMAT + 1}, tmp_path / "future.pt")
    with pytest.raises(ValueError, match="format"):
        read_checkpoint(tmp_path / "future.pt")


def test_check_compatible_names_the_first_difference():
    run = {"model": {"class": "MMoE", "config": {"n_experts": 2}}, "schema": {"seq_len": 3},
           "train": {"weighting": "equal"}}
    weights = {"w": torch.zeros(2)}
    check_compatible(run, run, weights, weights, "c.pt")
    other = {**run, "model": {"class": "MMoE", "config": {"n_experts": 4}}}
    with pytest.raises(ValueError, match="model config field 'n_experts' is 2 in the checkpoint but 4 here"):
        check_compatible(run, other, weights, weights, "c.pt")
    with pytest.raises(ValueError, match="train config 'weighting'"):
        check_compatible(run, {**run, "train": {"weighting": "dwa"}}, weights, weights, "c.pt")
    with pytest.raises(ValueError, match="only in this model"):
        check_compatible(run, run, weights, {**weights, "v": torch.zeros(1)}, "c.pt")
    with pytest.raises(ValueError, match="shape of model parameter 'w'"):
        check_compatible(run, run, weights, {"w": torch.zeros(3)}, "c.pt")


# --------------------------------------------------------------------------- evaluation
def test_a_report_costs_one_forward_pass_and_agrees_with_evaluate(data):
    torch.manual_seed(0)
    model = build_model("mmoe", data.schema, **SMALL)
    trainer = Trainer(model, data, TrainConfig(epochs=1, device="cpu", quiet=True, eval_batch_size=10**6))
    calls = []
    handle = model.register_forward_hook(lambda *args: calls.append(1))
    report = trainer.report("valid")
    handle.remove()
    assert len(calls) == 1  # metrics and the micro averages read the same outputs
    evaluated = trainer.evaluate("valid")
    for task, values in report["tasks"].items():
        assert values == pytest.approx(evaluated[task], nan_ok=True)
    assert set(report["summary"]["macro"]) == set(TASK_METRICS["binary"])
    assert report["summary"]["micro"] == pytest.approx(trainer.summaries("valid")["micro"], nan_ok=True)


def test_warm_cold_metrics_are_evaluate_on_each_part_from_one_forward_pass():
    cold_data = load_dataset("synthetic-funnel", n_users=40, n_items=30, n_impressions=600, seq_len=3,
                             cold_item_fraction=0.3, cold_start=0.8)
    torch.manual_seed(0)
    model = build_model("mmoe", cold_data.schema, **SMALL)
    trainer = Trainer(model, cold_data, TrainConfig(epochs=1, device="cpu", quiet=True, eval_batch_size=10**6))
    test = cold_data.test
    cold = test["is_cold_item"]
    assert 0 < int(cold.sum()) < len(test)
    calls = []
    handle = model.register_forward_hook(lambda *args: calls.append(1))
    parts = trainer.evaluate_warm_cold("test")
    handle.remove()
    assert len(calls) == 1 and list(parts) == ["warm", "cold"]
    for part, rows in (("warm", ~cold), ("cold", cold)):
        assert parts[part].rows == int(rows.sum())
        expected = trainer.evaluate(test.subset(torch.nonzero(rows).reshape(-1)))
        for task, values in expected.items():
            assert parts[part].tasks[task] == pytest.approx(values, nan_ok=True)


def test_warm_cold_metrics_without_cold_rows_or_the_key():
    from mtlkit.data.tensors import TensorSamples
    from mtlkit.training.evaluation import warm_cold_metrics

    kinds = {"click": "binary", "rating": "regression"}
    samples = TensorSamples({
        "user": torch.arange(1, 5), "labels": torch.tensor([[0.0, 3.0], [1.0, 4.0], [0.0, 5.0], [1.0, 1.0]]),
        "label_mask": torch.ones(4, 2, dtype=torch.bool), "is_cold_item": torch.zeros(4, dtype=torch.bool),
    })  # fmt: skip
    outputs = {"click": torch.tensor([-1.0, 2.0, -0.5, 0.5]), "rating": torch.tensor([3.0, 4.0, 5.0, 2.0])}
    parts = warm_cold_metrics(outputs, samples, kinds)
    assert parts["warm"].rows == 4 and parts["warm"].tasks["click"]["auc"] == 1.0
    assert parts["warm"].tasks["rating"]["rmse"] == pytest.approx(0.5)
    assert parts["cold"].rows == 0 and all(math.isnan(v) for t in parts["cold"].tasks.values() for v in t.values())
    without = TensorSamples({key: value for key, value in samples.items() if key != "is_cold_item"})
    with pytest.raises(ValueError, match="samples must have the 'is_cold_item' key"):
        warm_cold_metrics(outputs, without, kinds)
