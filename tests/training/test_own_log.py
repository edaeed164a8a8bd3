"""Every architecture and every balancing strategy trains on one's own log, with five declared
tasks (binary, conditional, entire-space, rare, a log1p regression) under the log's names."""

from __future__ import annotations

import math

import pytest
from own_log import OWN_TASKS, make_own_log

from mtlkit.data import load_interactions
from mtlkit.models import build_model
from mtlkit.training import TrainConfig, Trainer
from mtlkit.weighting import WEIGHTINGS

SMALL = dict(embedding_dim=4, d_model=8, n_heads=1, d_ff=8, tower_hidden=(8,))
ARCHITECTURES = {
    "single": {},
    "shared-bottom": {},
    "mmoe": dict(n_experts=2, expert_hidden=(8,)),
    "ple": dict(expert_hidden=(8,), n_levels=1),
    "esmm": dict(ctr_task="is_click", ctcvr_task="click_like"),  # the declared entire-space pair
}

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def own_data():
    log, users, videos = make_own_log(n_rows=400)
    return load_interactions(log, user="uid", item="video_id", time="ts", tasks=OWN_TASKS, user_features=users,
                             item_features=videos, context_sparse=("page",), seq_len=3)  # fmt: skip


def _fit(data, model_name, weighting):
    model = build_model(model_name, data.schema, **SMALL, **ARCHITECTURES[model_name])
    config = TrainConfig(epochs=1, batch_size=128, lr=1e-2, device="cpu", quiet=True, log_every=1, weighting=weighting,
                         seed=0)  # fmt: skip
    trainer = Trainer(model, data, config)
    return trainer, trainer.fit()


@pytest.mark.parametrize("model_name", list(ARCHITECTURES))
def test_every_architecture_trains_on_an_own_log(own_data, model_name):
    trainer, history = _fit(own_data, model_name, "equal")
    assert math.isfinite(history.epochs["loss"].iloc[-1])
    metrics = trainer.evaluate("test")
    assert set(metrics) == set(own_data.schema.task_names)
    assert set(metrics["play_time_ms"]) == {"rmse", "mae"} and "auc" in metrics["click_like"]


@pytest.mark.parametrize("weighting", sorted(WEIGHTINGS))
def test_every_weighting_trains_a_step_on_an_own_log(own_data, weighting):
    _, history = _fit(own_data, "mmoe", weighting)
    steps = history.steps
    assert len(steps) >= 1 and steps["loss"].map(math.isfinite).all()
    assert {f"weight/{task}" for task in own_data.schema.task_names} <= set(history.epochs.columns)
