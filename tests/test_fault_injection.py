"""Faults injected into real `mtlkit train` processes: kills at every moment of a save, Ctrl-C,
a full disk, overwrite attempts, resumes with changed settings, damaged run files.

Each case asserts that nothing was lost (the last checkpoint loads, the folder is one
consistent run), that the message is one line without a traceback, and that resuming gives
exactly the run an uninterrupted process gives.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mtlkit import cli
from mtlkit.runs import CHECKPOINT_FILE, CONFIG_FILE, METRICS_FILE, run_status
from mtlkit.training.checkpoint import read_checkpoint

pytestmark = pytest.mark.slow

DRIVER = Path(__file__).with_name("fault_injection.py")
ROOT = Path(__file__).resolve().parents[1]
DATA = json.dumps({"n_users": 40, "n_items": 20, "n_impressions": 400, "seq_len": 3})
MODEL = json.dumps({"embedding_dim": 4, "d_model": 8, "n_heads": 1, "d_ff": 8, "tower_hidden": [8]})
TRAIN = ["train", "--data", "synthetic-funnel", "--data-kwargs", DATA, "--model", "shared-bottom",
         "--model-kwargs", MODEL, "--batch-size", "64", "--lr", "0.01", "--device", "cpu", "--quiet", "--threads", "1"]
EPOCHS = ["--epochs", "3"]
# Early stopping that stops at epoch 2 of 8 on this world: a large learning rate, patience 1.
STOPPING = ["--epochs", "8", "--lr", "0.3", "--early-stopping", "valid/click/auc", "--patience", "1"]


def mtlkit(fault: str, *argv: str, timeout: int = 240) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, str(DRIVER), fault, "--", *argv], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=ROOT)


def one_line(result: subprocess.CompletedProcess) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    return lines[0]


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return read_checkpoint(folder / CHECKPOINT_FILE)["model"]


def assert_same_run(a: Path, b: Path) -> None:
    """Identical final weights, history and metrics (all but the wall-clock times)."""
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    ma, mb = (json.loads((f / METRICS_FILE).read_text()) for f in (a, b))
    for m in (ma, mb):
        m["run"].pop("train_seconds")
    assert ma == mb


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The runs every interrupted one must reproduce: plain 3 epochs, and early stopping."""
    root = tmp_path_factory.mktemp("uninterrupted")
    assert mtlkit("none", *TRAIN, *EPOCHS, "--out", str(root / "plain")).returncode == 0
    result = mtlkit("none", *TRAIN, *STOPPING, "--out", str(root / "stopping"))
    assert result.returncode == 0, result.stderr
    status = run_status(root / "stopping")
    assert status["stopped"] and status["epoch"] < 8  # the setting really stops early
    return {"plain": root / "plain", "stopping": root / "stopping"}


@pytest.mark.parametrize(
    "fault, epochs, kind",
    [
        ("kill-before-first-checkpoint", EPOCHS, "plain"),
        ("kill-mid-save:1", EPOCHS, "plain"),
        ("kill-mid-save:2", EPOCHS, "plain"),
        ("kill-after-save:2", EPOCHS, "plain"),
        ("kill-before-restore-best", STOPPING, "stopping"),
        ("kill-mid-save:3", STOPPING, "stopping"),  # the restore-best save itself
    ],
)
def test_a_killed_run_loses_nothing_and_resumes_exactly(fault, epochs, kind, uninterrupted, tmp_path):
    out = tmp_path / "run"
    killed = mtlkit(fault, *TRAIN, *epochs, "--out", str(out))
    assert killed.returncode == -9
    assert (out / CONFIG_FILE).is_file() and not (out / METRICS_FILE).exists()  # one partial run
    if (out / CHECKPOINT_FILE).exists():
        read_checkpoint(out / CHECKPOINT_FILE)  # the last checkpoint is whole
    if fault.startswith("kill-mid-save"):
        assert [p.name for p in out.iterdir() if p.name.endswith(".tmp")]  # the orphan the kill left
    resumed = mtlkit("none", *TRAIN, *epochs, "--out", str(out), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # orphans cleaned
    assert_same_run(out, uninterrupted[kind])


def test_evaluating_a_partial_run_says_it_is_partial(tmp_path):
    out = tmp_path / "run"
    assert mtlkit("kill-after-save:1", *TRAIN, *EPOCHS, "--out", str(out)).returncode == -9
    result = mtlkit("none", "evaluate", "--run", str(out), "--device", "cpu")
    assert result.returncode == 0
    assert "partial run (epoch 1 of 3" in one_line(result)


def test_ctrl_c_prints_one_line_exits_130_and_resumes_exactly(uninterrupted, tmp_path):
    out = tmp_path / "run"
    result = mtlkit("sigint-after-save:1", *TRAIN, *EPOCHS, "--out", str(out))
    assert result.returncode == 130
    assert "interrupted at epoch 2 step" in one_line(result) and "--resume" in result.stderr
    assert read_checkpoint(out / CHECKPOINT_FILE)["epoch"] == 1  # the last checkpoint is intact
    assert mtlkit("none", *TRAIN, *EPOCHS, "--out", str(out), "--resume").returncode == 0
    assert_same_run(out, uninterrupted["plain"])


def test_a_full_disk_keeps_the_previous_checkpoint(uninterrupted, tmp_path):
    out = tmp_path / "run"
    result = mtlkit("file-size-limit-after-save:1", *TRAIN, *EPOCHS, "--out", str(out))
    assert result.returncode == 2
    line = one_line(result)
    assert "could not write" in line and "checkpoint.pt" in line and "previous file is unchanged" in line
    assert read_checkpoint(out / CHECKPOINT_FILE)["epoch"] == 1
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    assert mtlkit("none", *TRAIN, *EPOCHS, "--out", str(out), "--resume").returncode == 0
    assert_same_run(out, uninterrupted["plain"])


# --------------------------------------------------------------------------- overwriting
def test_a_folder_with_a_run_is_refused_and_left_unchanged(uninterrupted, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(uninterrupted["plain"], out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    result = mtlkit("none", *TRAIN, "--epochs", "1", "--out", str(out))
    assert result.returncode == 2
    line = one_line(result)
    assert "already holds a finished run (3 epochs)" in line and "--overwrite" in line and "--resume" in line
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_overwrite_replaces_the_whole_run_even_when_killed(uninterrupted, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(uninterrupted["plain"], out)
    killed = mtlkit("kill-before-first-checkpoint", *TRAIN, "--epochs", "1", "--seed", "5", "--out", str(out),
                    "--overwrite")
    assert killed.returncode == -9
    # never the new config.json beside the old checkpoint and metrics
    assert sorted(p.name for p in out.iterdir()) == [CONFIG_FILE]
    assert json.loads((out / CONFIG_FILE).read_text())["train"]["seed"] == 5
    assert mtlkit("none", *TRAIN, "--epochs", "1", "--seed", "5", "--out", str(out), "--overwrite").returncode == 0
    assert run_status(out)["finished"]


def test_resume_with_changed_settings_lists_every_difference(uninterrupted, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(uninterrupted["plain"], out)
    config_before = (out / CONFIG_FILE).read_bytes()
    result = mtlkit("none", *TRAIN, *EPOCHS, "--lr", "0.02", "--batch-size", "32", "--seed", "3", "--out", str(out),
                    "--resume")
    assert result.returncode == 2
    line = one_line(result)
    for difference in ("'lr' is 0.01 in the checkpoint but 0.02 here", "'batch_size' is 64", "'seed' is 0"):
        assert difference in line
    assert (out / CONFIG_FILE).read_bytes() == config_before  # config.json still describes what was trained


def test_resume_with_more_epochs_is_recorded(uninterrupted, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(uninterrupted["plain"], out)
    assert mtlkit("none", *TRAIN, "--epochs", "4", "--out", str(out), "--resume").returncode == 0
    config = json.loads((out / CONFIG_FILE).read_text())
    assert config["train"]["epochs"] == 4 and config["resumes"] == [{"at_epoch": 3, "epochs": [3, 4]}]
    assert run_status(out)["epoch"] == 4


# --------------------------------------------------------------------------- damaged run files
def _evil_pickle(path: Path) -> None:
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    torch.save({"format": 1, "payload": Evil()}, path)


DAMAGE = {
    "truncated checkpoint": (CHECKPOINT_FILE, lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]),
                             "is damaged (truncated or corrupt"),
    "empty checkpoint": (CHECKPOINT_FILE, lambda p: p.write_bytes(b""), "is damaged (empty"),
    "random bytes": (CHECKPOINT_FILE, lambda p: p.write_bytes(os.urandom(4096)), "is damaged"),
    "malicious pickle": (CHECKPOINT_FILE, _evil_pickle, "names Python objects that an mtlkit checkpoint never holds"),
    "plain pickle": (CHECKPOINT_FILE, lambda p: p.write_bytes(pickle.dumps([1, 2])), "is damaged"),
    "a list saved by torch": (CHECKPOINT_FILE, lambda p: torch.save([1, 2], p), "is not an mtlkit checkpoint"),
    "empty config": (CONFIG_FILE, lambda p: p.write_text(""), "config.json is empty"),
    "truncated config": (CONFIG_FILE, lambda p: p.write_text(p.read_text()[:40]), "config.json is not valid JSON"),
    "config is a list": (CONFIG_FILE, lambda p: p.write_text("[1, 2]"), "must hold a JSON object, got a list"),
    "config lacks data": (CONFIG_FILE, lambda p: _drop(p, "data"), "lacks 'data'"),
    "config lacks train": (CONFIG_FILE, lambda p: _drop(p, "train"), "lacks 'train'"),
    "config lacks model": (CONFIG_FILE, lambda p: _drop(p, "model"), "lacks 'model'"),
    "config lacks data.name": (CONFIG_FILE, lambda p: _drop(p, "data", "name"), "lacks 'data.name'"),
    "no checkpoint": (CHECKPOINT_FILE, lambda p: p.unlink(), "has no checkpoint.pt"),
}


def _drop(path: Path, *keys: str) -> None:
    config = json.loads(path.read_text())
    holder = config
    for key in keys[:-1]:
        holder = holder[key]
    del holder[keys[-1]]
    path.write_text(json.dumps(config))


@pytest.mark.parametrize("case", sorted(DAMAGE))
def test_a_damaged_run_file_is_one_clear_line(case, uninterrupted, tmp_path, capfd):
    out = tmp_path / "run"
    shutil.copytree(uninterrupted["plain"], out)
    name, damage, fragment = DAMAGE[case]
    damage(out / name)
    command = ["evaluate", "--run", str(out)] if case < "n" else ["recommend", "--run", str(out), "--user", "1"]
    status = cli.main([*command, "--device", "cpu"])
    captured = capfd.readouterr()
    assert status == 2
    line = one_line(subprocess.CompletedProcess(command, status, captured.out, captured.err))
    assert fragment in line, line
    assert "weights_only" not in line and "pwned" not in captured.out
