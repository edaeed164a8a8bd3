"""Run folders through the API: train_run writes what load_run reads back, for any caller."""

from __future__ import annotations

import pytest
import torch

from mtlkit.runs import CHECKPOINT_FILE, CONFIG_FILE, EPOCH_HISTORY_FILE, METRICS_FILE, STEP_HISTORY_FILE, load_run, train_run
from mtlkit.training import TrainConfig
from mtlkit.utils import read_json

pytestmark = pytest.mark.usefixtures("one_thread")

DATA = {"name": "synthetic-funnel", "n_users": 40, "n_items": 20, "n_impressions": 400, "seq_len": 3}
MODEL = {"embedding_dim": 4, "d_model": 8, "n_heads": 1, "d_ff": 8, "tower_hidden": [8]}


def test_train_run_writes_a_folder_that_load_run_rebuilds(tmp_path):
    config = TrainConfig(epochs=2, batch_size=64, device="cpu", quiet=True)
    trainer, metrics = train_run(DATA, "shared-bottom", MODEL, config, tmp_path / "run")
    files = {p.name for p in (tmp_path / "run").iterdir()}
    assert files == {CONFIG_FILE, CHECKPOINT_FILE, METRICS_FILE, STEP_HISTORY_FILE, EPOCH_HISTORY_FILE}
    assert read_json(tmp_path / "run" / METRICS_FILE)["run"]["epochs"] == 2 == metrics["run"]["epochs"]
    assert set(metrics["test"]) == {"tasks", "summary"}
    loaded = load_run(tmp_path / "run", device="cpu")
    for name, value in trainer.model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[name], value.cpu())
    assert loaded.epoch == 2 and loaded.finished
    for task, values in loaded.evaluate("test").items():
        assert values == pytest.approx(metrics["test"]["tasks"][task], nan_ok=True)
