"""Checkpoints: what makes a resume exact, how one is read safely, and how a foreign one is refused.

A checkpoint (format :data:`CHECKPOINT_FORMAT`) is a dict of tensors and plain containers only,
so it loads with ``torch.load(weights_only=True)`` — the safe loader that never runs pickled
code. It holds the model, optimiser, scheduler, weighting strategy and auxiliary objectives,
the counters, the history, the early-stopping state and every random-number generator
(:func:`capture_rng`): torch CPU and CUDA, NumPy, Python and the shuffle generator, so
"2 epochs" and "1 epoch, save, resume, 1 more" end with identical weights.
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["CHECKPOINT_FORMAT", "capture_rng", "check_compatible", "read_checkpoint", "restore_rng"]

CHECKPOINT_FORMAT = 1


def capture_rng(shuffle: torch.Generator) -> dict[str, Any]:
    """The state of every random-number generator a training step draws from, as tensors and ints."""
    np_state = np.random.get_state()
    python_state = random.getstate()
    rng: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "kind": str(np_state[0]),
            "keys": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "python": [int(python_state[0]), list(python_state[1]), python_state[2]],
        "shuffle": shuffle.get_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    return rng


def restore_rng(rng: Mapping[str, Any], shuffle: torch.Generator) -> None:
    """Put back what :func:`capture_rng` recorded."""
    torch.set_rng_state(rng["torch"])
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    np_rng = rng["numpy"]
    np.random.set_state((np_rng["kind"], np_rng["keys"].numpy().astype(np.uint32), np_rng["pos"],
                         np_rng["has_gauss"], np_rng["cached_gaussian"]))
    version, internal, gauss = rng["python"]
    random.setstate((version, tuple(internal), gauss))
    shuffle.set_state(rng["shuffle"])


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a checkpoint with ``torch.load(weights_only=True)`` and check its format."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"checkpoint {str(path)!r} is not an mtlkit checkpoint of format {CHECKPOINT_FORMAT}")
    return state


def check_compatible(saved: Mapping[str, Any], here: Mapping[str, Any], theirs: Mapping[str, torch.Tensor],
                     ours: Mapping[str, torch.Tensor], path: str | os.PathLike) -> None:
    """Refuse a checkpoint written by a different run, naming the first thing that differs.

    Args:
        saved: the run config stored in the checkpoint (``Trainer.run_config()`` then).
        here: this trainer's run config.
        theirs: the checkpoint's model state dict. ours: this model's.
        path: the checkpoint, for the message.
    """
    where = f"checkpoint {str(path)!r} was written by a different run"

    def differ(what: str, old: Any, new: Any) -> ValueError:
        return ValueError(f"{where}: {what} is {old!r} in the checkpoint but {new!r} here")

    for key in ("class", "name", "config"):
        old, new = saved["model"].get(key), here["model"].get(key)
        if old is not None and new is not None and old != new:
            if key == "config" and isinstance(old, dict) and isinstance(new, dict):
                for field_name in sorted(set(old) | set(new)):
                    if old.get(field_name) != new.get(field_name):
                        raise differ(f"model config field {field_name!r}", old.get(field_name), new.get(field_name))
            raise differ(f"model {key}", old, new)
    old_schema, new_schema = saved["schema"], here["schema"]
    for key in sorted(set(old_schema) | set(new_schema)):
        if old_schema.get(key) != new_schema.get(key):
            raise differ(f"schema field {key!r}", old_schema.get(key), new_schema.get(key))
    for key in ("weighting", "weighting_kwargs", "optimizer", "scheduler", "adversary"):
        old, new = saved["train"].get(key), here["train"].get(key)
        if old != new:
            raise differ(f"train config {key!r}", old, new)
    for name in sorted(set(ours) | set(theirs)):
        if name not in ours or name not in theirs:
            side = "only in the checkpoint" if name in theirs else "only in this model"
            raise ValueError(f"{where}: model parameter {name!r} is {side}")
        if ours[name].shape != theirs[name].shape:
            raise differ(f"the shape of model parameter {name!r}", tuple(theirs[name].shape), tuple(ours[name].shape))
