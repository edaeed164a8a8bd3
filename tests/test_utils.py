"""The small helpers in mtlkit.utils: devices, seeding, atomic writes and JSON."""

from __future__ import annotations

import os
import random

import numpy as np
import pytest
import torch

from mtlkit.utils import (
    atomic_torch_save,
    atomic_write_text,
    atomic_write_with,
    read_json,
    resolve_device,
    seed_everything,
    write_json,
)


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else ("mps" if torch.backends.mps.is_available() else "cpu")
    assert resolve_device("auto").type == expected
    with pytest.raises(ValueError, match="device"):
        resolve_device("tpu")
    with pytest.raises(TypeError, match="device"):
        resolve_device(0)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")


def test_seed_everything_makes_every_generator_repeat():
    seed_everything(7)
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    seed_everything(7)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == first
    with pytest.raises(ValueError, match="seed"):
        seed_everything(-1)


def test_atomic_writes_replace_whole_files_and_clean_up(tmp_path):
    target = tmp_path / "out.txt"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError):
        atomic_write_with(target, lambda f: (f.write("half"), (_ for _ in ()).throw(RuntimeError("crash"))))
    assert target.read_text() == "old"  # a failed write leaves the previous file intact
    atomic_torch_save(tmp_path / "t.pt", {"x": torch.arange(3)})
    write_json(tmp_path / "m.json", {"a": float("nan"), "b": (1, 2), "c": np.float32(0.5)})
    assert read_json(tmp_path / "m.json") == {"a": None, "b": [1, 2], "c": 0.5}
    assert torch.equal(torch.load(tmp_path / "t.pt", weights_only=True)["x"], torch.arange(3))
    assert sorted(os.listdir(tmp_path)) == ["m.json", "out.txt", "t.pt"]  # no temporary files left
