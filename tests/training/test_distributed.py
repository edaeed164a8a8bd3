"""Distributed data parallelism on the CPU: 2 gloo processes equal one process on the same global batch."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from mtlkit.data import load_dataset
from mtlkit.models import build_model
from mtlkit.training import TrainConfig, Trainer, shutdown_distributed

SMALL = dict(embedding_dim=4, d_model=8, n_heads=1, d_ff=8, tower_hidden=(8,), n_experts=2, expert_hidden=(8,), dropout=0.0)
DATA = dict(n_users=50, n_items=30, n_impressions=500, seq_len=4)
WEIGHTINGS = ("equal", "uncertainty")
WORLD_SIZE = 2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def batch_size_for(n_train: int) -> int:
    """A global batch size whose last batch has at least WORLD_SIZE samples (none is dropped)."""
    for size in range(64, 128):
        if n_train % size == 0 or n_train % size >= WORLD_SIZE:
            return size
    raise AssertionError("no suitable batch size")


def train(data, weighting: str, batch_size: int) -> Trainer:
    torch.manual_seed(0)
    model = build_model("mmoe", data.schema, **SMALL)
    cfg = TrainConfig(epochs=2, batch_size=batch_size, lr=1e-2, device="cpu", quiet=True, weighting=weighting)
    trainer = Trainer(model, data, cfg)
    trainer.fit()
    return trainer


def _worker(rank: int, port: int, out_dir: str, batch_size: int) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(WORLD_SIZE)
    )
    torch.set_num_threads(1)
    data = load_dataset("synthetic-funnel", **DATA)
    results = {}
    for weighting in WEIGHTINGS:
        trainer = train(data, weighting, batch_size)
        assert trainer.dist.world_size == WORLD_SIZE
        results[weighting] = {
            "model": {k: v.clone() for k, v in trainer.model.state_dict().items()},
            "epochs": trainer.history.epoch_records,
            "test": trainer.evaluate("test"),
        }
    try:
        Trainer(build_model("mmoe", data.schema, **SMALL), data, TrainConfig(weighting="pcgrad", device="cpu"))
        results["pcgrad_error"] = None
    except ValueError as error:
        results["pcgrad_error"] = str(error)
    torch.save(results, Path(out_dir) / f"rank{rank}.pt")
    shutdown_distributed()


def test_two_gloo_processes_match_one_process(tmp_path):
    torch.set_num_threads(1)
    data = load_dataset("synthetic-funnel", **DATA)
    batch_size = batch_size_for(len(data.train))
    # fork is much faster than spawn (no re-import of torch); spawn where fork is unavailable
    start_method = "fork" if sys.platform.startswith("linux") else "spawn"
    mp.start_processes(_worker, args=(free_port(), str(tmp_path), batch_size), nprocs=WORLD_SIZE, start_method=start_method)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(WORLD_SIZE)]

    for weighting in WEIGHTINGS:
        single = train(data, weighting, batch_size)
        for result in ranks:
            for name, value in single.model.state_dict().items():
                if name.endswith("k_proj.bias"):
                    # Softmax ignores a constant added to every score, so the key bias has a
                    # zero gradient in exact arithmetic; Adam's g/√v turns the rounding noise
                    # left in it into ±lr steps, which differ between the two runs.
                    continue
                torch.testing.assert_close(result[weighting]["model"][name], value, atol=1e-6, rtol=1e-5, msg=name)
            # the loss each rank records is the global masked mean, as in one process
            for ours, theirs in zip(single.history.epoch_records, result[weighting]["epochs"]):
                for task in data.schema.task_names:
                    assert theirs[f"loss/{task}"] == pytest.approx(ours[f"loss/{task}"], rel=1e-5)
                    assert theirs[f"weight/{task}"] == pytest.approx(ours[f"weight/{task}"], rel=1e-5)
                assert theirs["valid/click/auc"] == pytest.approx(ours["valid/click/auc"], abs=1e-6)
            # metrics on all-gathered predictions equal the single-process metrics
            for task, values in single.evaluate("test").items():
                for metric, value in values.items():
                    assert result[weighting]["test"][task][metric] == pytest.approx(value, abs=1e-5, nan_ok=True)
    # both ranks hold the same weights
    for name, value in ranks[0]["equal"]["model"].items():
        assert torch.equal(value, ranks[1]["equal"]["model"][name])
    assert "pcgrad" in ranks[0]["pcgrad_error"] and "distributed" in ranks[0]["pcgrad_error"]


@pytest.mark.slow
def test_cli_train_runs_under_torchrun(tmp_path):
    out = tmp_path / "run"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(free_port()),
        "-m", "mtlkit", "train", "--data", "synthetic-funnel", "--data-kwargs", json.dumps(DATA),
        "--model", "mmoe", "--model-kwargs", json.dumps(SMALL), "--epochs", "1", "--batch-size", "64",
        "--device", "cpu", "--quiet", "--out", str(out),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert {"config.json", "checkpoint.pt", "metrics.json", "history.csv", "history_epochs.csv"} <= set(os.listdir(out))
    assert json.loads((out / "config.json").read_text())["distributed"]["world_size"] == 2
    assert result.stdout.count("click") >= 1
