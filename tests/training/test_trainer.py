"""The trainer on a tiny synthetic funnel: learning, history, metrics, early stopping,
callbacks, exact resume and checkpoints."""

from __future__ import annotations

import math
import os

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import log_loss as sk_log_loss
from sklearn.metrics import roc_auc_score

from mtlkit.data import load_dataset
from mtlkit.models import build_model
from mtlkit.training import Callback, TrainConfig, Trainer
from mtlkit.utils import (
    seed_everything,
)

# A model small enough that a few epochs take well under a second.
SMALL = dict(embedding_dim=4, d_model=8, n_heads=1, d_ff=8, tower_hidden=(8,))
TIMING_COLUMNS = {"samples_per_s", "epoch_time_s"}


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data():
    return load_dataset("synthetic-funnel", n_users=60, n_items=30, n_impressions=800, seq_len=4)


def make_model(data, name="mmoe", seed=0, **overrides):
    torch.manual_seed(seed)
    extra = {"mmoe": dict(n_experts=2, expert_hidden=(8,)), "ple": dict(expert_hidden=(8,), n_levels=1)}
    return build_model(name, data.schema, **{**SMALL, **extra.get(name, {}), **overrides})


def config(**overrides):
    values = dict(epochs=2, batch_size=64, lr=1e-2, device="cpu", quiet=True, log_every=2)
    values.update(overrides)
    return TrainConfig(**values)


# --------------------------------------------------------------------------- learning and history
def test_training_loss_decreases_and_history_has_every_column(data):
    trainer = Trainer(make_model(data), data, config(epochs=4))
    history = trainer.fit()
    epochs, steps = history.epochs, history.steps
    assert list(epochs["epoch"]) == [1, 2, 3, 4]
    assert epochs["loss"].iloc[-1] < epochs["loss"].iloc[0]
    tasks = data.schema.task_names
    expected = {"epoch", "step", "loss", "lr", "samples_per_s", "epoch_time_s"}
    expected |= {f"loss/{t}" for t in tasks} | {f"weight/{t}" for t in tasks}
    expected |= {"valid/click/auc", "valid/click/logloss", "valid/click/gauc", "valid/purchase/auc"}
    expected |= {"valid/rating/rmse", "valid/rating/mae"}
    assert expected <= set(epochs.columns)
    assert {"step", "loss", "lr", "samples_per_s", *(f"loss/{t}" for t in tasks)} <= set(steps.columns)
    steps_per_epoch = math.ceil(len(data.train) / 64)
    assert steps["step"].iloc[-1] == trainer.global_step == 4 * steps_per_epoch
    assert (steps[[f"weight/{t}" for t in tasks]] == 1.0).all().all()  # equal weighting
    # a step row every log_every steps, plus the last step of each epoch
    assert set(range(2, 4 * steps_per_epoch + 1, 2)) <= set(steps["step"])


@pytest.mark.parametrize("name", ["single", "shared-bottom", "mmoe", "ple", "esmm"])
def test_every_model_trains(data, name):
    trainer = Trainer(make_model(data, name), data, config(epochs=1))
    epochs = trainer.fit().epochs
    assert np.isfinite(epochs[[f"loss/{t}" for t in data.schema.task_names]]).all().all()
    assert set(trainer.evaluate("valid")) == set(data.schema.task_names)


@pytest.mark.gpu
def test_cuda_training_with_bf16_autocast(data):
    trainer = Trainer(make_model(data), data, config(epochs=1, device="cuda", amp="auto"))
    assert trainer.amp and trainer.device.type == "cuda"
    assert trainer.split("train")["labels"].device.type == "cuda"  # the data moved once
    epochs = trainer.fit().epochs
    assert np.isfinite(epochs["loss/click"]).all()
    assert next(trainer.model.parameters()).dtype == torch.float32  # autocast, not a bf16 model
    assert trainer.predict("test")["click"].device.type == "cpu"


def test_history_csv_round_trip(data, tmp_path):
    trainer = Trainer(make_model(data), data, config(epochs=1))
    trainer.fit()
    trainer.history.to_csv(tmp_path / "history.csv", tmp_path / "history_epochs.csv")
    steps = pd.read_csv(tmp_path / "history.csv")
    epochs = pd.read_csv(tmp_path / "history_epochs.csv")
    pd.testing.assert_frame_equal(steps, trainer.history.steps, check_dtype=False)
    assert epochs["valid/click/auc"].iloc[0] == pytest.approx(trainer.history.epochs["valid/click/auc"].iloc[0])
    assert sorted(os.listdir(tmp_path)) == ["history.csv", "history_epochs.csv"]


def test_record_gradients_adds_diagnostics_to_history(data):
    trainer = Trainer(make_model(data), data, config(epochs=1, record_gradients=True))
    steps = trainer.fit().steps
    for column in ("grad_norm/click", "grad_norm/rating", "grad_cos/click/purchase", "grad_cos/purchase/rating"):
        assert column in steps.columns
        assert steps[column].notna().all()
    assert (steps["grad_norm/click"] > 0).all()
    assert steps["grad_cos/click/rating"].between(-1, 1).all()


@pytest.mark.parametrize("weighting", ["uncertainty", "dwa", "rlw", "pcgrad", "mgda", "cagrad", "gradnorm"])
def test_every_registered_weighting_trains(data, weighting):
    from mtlkit.weighting import WEIGHTINGS

    if weighting not in WEIGHTINGS:
        pytest.skip(f"{weighting} is not registered")
    trainer = Trainer(make_model(data), data, config(epochs=2, weighting=weighting))
    epochs = trainer.fit().epochs
    assert np.isfinite(epochs["loss/click"]).all()
    assert np.isfinite(epochs[[f"weight/{t}" for t in data.schema.task_names]]).all().all()


def test_uncertainty_parameters_are_trained(data):
    trainer = Trainer(make_model(data), data, config(epochs=1, weighting="uncertainty"))
    strategy_params = list(trainer.strategy.parameters())
    assert strategy_params, "uncertainty weighting should have learnable log-variances"
    before = [p.detach().clone() for p in strategy_params]
    optimised = {id(p) for group in trainer.optimizer.param_groups for p in group["params"]}
    assert all(id(p) in optimised for p in strategy_params)
    trainer.fit()
    assert any(not torch.equal(b, p) for b, p in zip(before, strategy_params))


def test_grad_clip_norm_bounds_the_gradient(data, monkeypatch):
    norms = []
    original = torch.nn.utils.clip_grad_norm_

    def recording(parameters, max_norm, *args, **kwargs):
        parameters = list(parameters)
        total = original(parameters, max_norm, *args, **kwargs)
        norms.append(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in parameters if p.grad is not None])))
        return total

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", recording)
    Trainer(make_model(data), data, config(epochs=1, grad_clip_norm=0.01)).fit()
    assert norms and max(float(n) for n in norms) <= 0.01 * (1 + 1e-4)


@pytest.mark.parametrize("scheduler", ["cosine", "step"])
def test_schedulers_follow_their_formula(data, scheduler):
    trainer = Trainer(make_model(data), data, config(epochs=2, scheduler=scheduler, step_size=1, gamma=0.1, log_every=1))
    steps = trainer.fit().steps
    per_epoch = math.ceil(len(data.train) / 64)
    total = 2 * per_epoch
    for step, lr in zip(steps["step"], steps["lr"]):
        if scheduler == "cosine":
            expected = 1e-2 * 0.5 * (1 + math.cos(math.pi * step / total))
        else:
            expected = 1e-2 * 0.1 ** (step // per_epoch)
        assert lr == pytest.approx(expected, rel=1e-6, abs=1e-12)


# --------------------------------------------------------------------------- metrics
def test_evaluate_matches_sklearn_on_observed_labels(data):
    trainer = Trainer(make_model(data), data, config(epochs=1))
    trainer.fit()
    metrics = trainer.evaluate("test")
    probs = trainer.predict("test")
    labels, mask, users = data.test["labels"], data.test["label_mask"], data.test["user"]
    for i, task in enumerate(data.schema.task_names):
        observed = mask[:, i]
        y, p = labels[observed, i].numpy(), probs[task][observed].numpy()
        if data.schema.task_kinds[task] == "binary":
            if len(np.unique(y)) == 2:
                assert metrics[task]["auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-6)
            else:
                assert math.isnan(metrics[task]["auc"])
            assert metrics[task]["logloss"] == pytest.approx(sk_log_loss(y, p, labels=[0, 1]), abs=1e-5)
            # gAUC by an explicit loop over users (groups with one class are skipped)
            g = users[observed].numpy()
            num = den = 0.0
            for user in np.unique(g):
                sel = g == user
                if len(np.unique(y[sel])) == 2:
                    num += sel.sum() * roc_auc_score(y[sel], p[sel])
                    den += sel.sum()
            if den:
                assert metrics[task]["gauc"] == pytest.approx(num / den, abs=1e-6)
        else:
            assert metrics[task]["rmse"] == pytest.approx(np.sqrt(np.mean((p - y) ** 2)), rel=1e-5)
            assert metrics[task]["mae"] == pytest.approx(np.mean(np.abs(p - y)), rel=1e-5)


def test_metrics_ignore_unobserved_labels(data):
    from mtlkit.data.samples import TensorSamples

    trainer = Trainer(make_model(data), data, config(epochs=1))
    test = data.test.to_dict()
    reference = trainer.evaluate(TensorSamples(test))
    # Scramble every unobserved label: the metrics must not move.
    labels = test["labels"].clone()
    unobserved = ~test["label_mask"]
    labels[unobserved] = torch.randint(0, 2, (int(unobserved.sum()),)).float() * 7
    scrambled = trainer.evaluate(TensorSamples({**test, "labels": labels}))
    for task in data.schema.task_names:
        for name, value in reference[task].items():
            assert scrambled[task][name] == pytest.approx(value, nan_ok=True)


# --------------------------------------------------------------------------- early stopping, callbacks
class Recorder(Callback):
    def __init__(self):
        self.calls, self.states = [], {}

    def on_train_begin(self, trainer):
        self.calls.append("begin")

    def on_step_end(self, trainer, record):
        self.calls.append("step")
        assert "loss/click" in record

    def on_epoch_end(self, trainer, record):
        self.calls.append("epoch")
        self.states[trainer.epoch] = {k: v.clone() for k, v in trainer.model.state_dict().items()}

    def on_train_end(self, trainer):
        self.calls.append("end")


def test_callbacks_are_called_in_order(data):
    recorder = Recorder()
    trainer = Trainer(make_model(data), data, config(epochs=2), callbacks=[recorder])
    trainer.fit()
    assert recorder.calls[0] == "begin" and recorder.calls[-1] == "end"
    assert recorder.calls.count("epoch") == 2
    assert recorder.calls.count("step") == len(trainer.history.step_records)
    first_epoch = recorder.calls.index("epoch")
    assert all(call == "step" for call in recorder.calls[1:first_epoch])


def test_a_callback_can_stop_training(data):
    class StopAfterFirst(Callback):
        def on_epoch_end(self, trainer, record):
            trainer.stop_training = True

    trainer = Trainer(make_model(data), data, config(epochs=5), callbacks=[StopAfterFirst()])
    trainer.fit()
    assert trainer.epoch == 1


def test_early_stopping_stops_and_restores_the_best_weights(data):
    # Training loss falls every epoch, so with mode "max" epoch 1 is the best and training
    # stops after `patience` epochs without improvement, then restores epoch 1's weights.
    recorder = Recorder()
    cfg = config(epochs=10, early_stopping="loss/click", early_stopping_mode="max", patience=2)
    trainer = Trainer(make_model(data), data, cfg, callbacks=[recorder])
    trainer.fit()
    assert trainer.epoch == 3 and trainer.best_epoch == 1
    for name, value in trainer.model.state_dict().items():
        assert torch.equal(value, recorder.states[1][name])
    assert not torch.equal(recorder.states[3]["encoder.user_embedding.weight"], recorder.states[1]["encoder.user_embedding.weight"])


def test_early_stopping_on_a_validation_metric(data):
    cfg = config(epochs=3, early_stopping="valid/click/auc", patience=5)
    trainer = Trainer(make_model(data), data, cfg)
    trainer.fit()
    aucs = trainer.history.epochs["valid/click/auc"]
    assert trainer.best_value == pytest.approx(aucs.max())
    assert trainer.best_epoch == int(aucs.idxmax()) + 1


def test_unknown_early_stopping_metric_is_rejected(data):
    with pytest.raises(ValueError, match="early_stopping"):
        Trainer(make_model(data), data, config(early_stopping="valid/click/rmse"))


# --------------------------------------------------------------------------- checkpoints
def assert_same_state(a: Trainer, b: Trainer) -> None:
    for (name, x), (_, y) in zip(a.model.state_dict().items(), b.model.state_dict().items()):
        assert torch.equal(x, y), name
    state_a, state_b = a.optimizer.state_dict(), b.optimizer.state_dict()
    assert state_a["param_groups"] == state_b["param_groups"]
    for key in state_a["state"]:
        for field, value in state_a["state"][key].items():
            assert torch.equal(torch.as_tensor(value), torch.as_tensor(state_b["state"][key][field])), (key, field)
    assert a.scheduler.state_dict() == b.scheduler.state_dict()
    assert a.global_step == b.global_step and a.epoch == b.epoch


@pytest.mark.parametrize("weighting", ["equal", "uncertainty", "rlw"])
def test_resume_is_exact(data, tmp_path, weighting):
    """2 epochs == 1 epoch, checkpoint, new trainer, resume, 1 more epoch (dropout on, cosine lr)."""
    from mtlkit.weighting import WEIGHTINGS

    if weighting not in WEIGHTINGS:
        pytest.skip(f"{weighting} is not registered")
    cfg = dict(epochs=2, scheduler="cosine", weighting=weighting)
    straight = Trainer(make_model(data, dropout=0.2), data, config(**cfg))
    straight.fit()

    first = Trainer(make_model(data, dropout=0.2), data, config(**cfg))
    first.fit(epochs=1)
    path = tmp_path / "checkpoint.pt"
    first.save_checkpoint(path)
    # Disturb every generator: the checkpoint must restore them all.
    seed_everything(123)
    torch.rand(5)
    resumed = Trainer(make_model(data, seed=99, dropout=0.2), data, config(**cfg))
    resumed.fit(resume_from=path)

    assert_same_state(straight, resumed)
    for name, value in straight.strategy.state_dict().items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(value, resumed.strategy.state_dict()[name]), name
    for a, b in ((straight.history.steps, resumed.history.steps), (straight.history.epochs, resumed.history.epochs)):
        columns = [c for c in a.columns if c not in TIMING_COLUMNS]
        pd.testing.assert_frame_equal(a[columns], b[columns], check_exact=True)


def test_resume_into_a_longer_run_with_a_constant_lr(data, tmp_path):
    """A 1-epoch run, resumed by a trainer configured for 2 epochs, equals a 2-epoch run."""
    straight = Trainer(make_model(data), data, config(epochs=2))
    straight.fit()
    first = Trainer(make_model(data), data, config(epochs=1))
    first.fit()
    first.save_checkpoint(tmp_path / "c.pt")
    resumed = Trainer(make_model(data), data, config(epochs=2))
    resumed.fit(resume_from=tmp_path / "c.pt")
    assert_same_state(straight, resumed)


def test_checkpoint_loads_with_weights_only_and_holds_the_run(data, tmp_path):
    trainer = Trainer(make_model(data), data, config(epochs=1), run_info={"data": {"name": "synthetic-funnel"}})
    trainer.fit()
    path = tmp_path / "checkpoint.pt"
    trainer.save_checkpoint(path)
    state = torch.load(path, weights_only=True)
    assert {"model", "optimizer", "scheduler", "weighting", "rng", "epoch", "global_step", "history", "config"} <= set(state)
    assert {"torch", "numpy", "python", "shuffle"} <= set(state["rng"])
    assert state["config"]["model"]["class"] == "MMoE"
    assert state["config"]["model"]["config"]["n_experts"] == 2
    assert state["config"]["data"] == {"name": "synthetic-funnel"}
    assert state["config"]["train"]["epochs"] == 1
    assert state["config"]["schema"]["tasks"][0] == {"name": "click", "kind": "binary"}
    assert state["epoch"] == 1 and len(state["history"]["epochs"]) == 1


def test_checkpoint_of_a_different_run_is_rejected_naming_the_difference(data, tmp_path):
    path = tmp_path / "checkpoint.pt"
    Trainer(make_model(data), data, config(epochs=1)).save_checkpoint(path)

    with pytest.raises(ValueError, match="n_experts"):
        Trainer(make_model(data, n_experts=3), data, config()).resume(path)
    with pytest.raises(ValueError, match="model class"):
        Trainer(make_model(data, "shared-bottom"), data, config()).resume(path)
    with pytest.raises(ValueError, match="weighting"):
        Trainer(make_model(data), data, config(weighting="static")).resume(path)
    other = load_dataset(
        "synthetic-funnel", n_users=60, n_items=30, n_impressions=800, seq_len=4, tasks=("click", "purchase")
    )
    with pytest.raises(ValueError, match="schema field 'tasks'"):
        Trainer(make_model(other), other, config()).resume(path)
    with pytest.raises(FileNotFoundError, match="checkpoint"):
        Trainer(make_model(data), data, config()).resume(tmp_path / "missing.pt")


def test_checkpoint_written_every_epoch_and_no_temporary_files(data, tmp_path):
    path = tmp_path / "run" / "checkpoint.pt"
    trainer = Trainer(make_model(data), data, config(epochs=2))
    trainer.fit(checkpoint_path=path)
    assert os.listdir(path.parent) == ["checkpoint.pt"]
    assert torch.load(path, weights_only=True)["epoch"] == 2


def test_unknown_weighting_and_amp_without_cuda_are_rejected(data):
    with pytest.raises(ValueError, match="weighting"):
        Trainer(make_model(data), data, config(weighting="nope"))
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="amp"):
            Trainer(make_model(data), data, config(amp=True))


def test_output_biases_start_at_the_training_base_rates(data):
    labels, mask = data.train["labels"], data.train["label_mask"]
    rating = data.schema.task_names.index("rating")
    mean_rating = float(labels[mask[:, rating], rating].mean())

    model = make_model(data, "shared-bottom")
    Trainer(model, data, config())
    assert model.tower("rating").last_linear().bias.item() == pytest.approx(mean_rating, rel=1e-5)

    untouched = make_model(data, "shared-bottom")
    before = untouched.tower("rating").last_linear().bias.item()
    Trainer(untouched, data, config(init_output_biases=False))
    assert untouched.tower("rating").last_linear().bias.item() == before


@pytest.mark.parametrize("weighting", ["rlw", "pcgrad"])
def test_random_strategies_follow_the_run_seed(data, weighting):
    """RLW's weights and PCGrad's orders are drawn from the trainer's seed unless one is given."""

    def draws(run_seed, **kwargs):
        trainer = Trainer(make_model(data), data, config(weighting=weighting, seed=run_seed, weighting_kwargs=kwargs))
        return trainer.strategy.generator.get_state()

    assert torch.equal(draws(3), torch.Generator().manual_seed(3).get_state())
    assert not torch.equal(draws(0), draws(1))
    assert torch.equal(draws(0, seed=7), draws(1, seed=7))  # an explicit seed wins


def test_uncertainty_weighting_gets_the_task_kinds_from_the_schema(data):
    trainer = Trainer(make_model(data), data, config(weighting="uncertainty"))
    # Kendall et al.: a classification task is weighted 1/σ², a regression task 1/(2σ²); at σ = 1
    # that is 1 for click/purchase and 1/2 for rating.
    expected = {t: "classification" if k == "binary" else "regression" for t, k in data.schema.task_kinds.items()}
    assert trainer.strategy.task_kinds == expected
    _, weights = trainer.strategy.combine({t: torch.tensor(1.0) for t in data.schema.task_names})
    assert weights == {"click": 1.0, "purchase": 1.0, "rating": 0.5}
    with pytest.raises(ValueError, match="weighting"):
        Trainer(make_model(data), data, config(weighting="no-such-strategy"))
