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
import pickle
import random
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["CHECKPOINT_FORMAT", "RESUME_MAY_CHANGE", "capture_rng", "check_compatible", "read_checkpoint", "restore_rng"]

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


#: What every checkpoint of format 1 holds.
REQUIRED_KEYS = ("config", "model", "optimizer", "scheduler", "weighting", "rng", "epoch", "global_step",
                 "history", "early_stopping")


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a checkpoint with ``torch.load(weights_only=True)`` and check what it holds.

    A damaged file (truncated, empty, random bytes) or one that names Python objects instead
    of tensors and plain containers (a pickle that would run code if loaded unsafely) raises a
    one-line ``ValueError`` naming the file; it never suggests the unsafe loader.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    try:
        with warnings.catch_warnings():  # e.g. "Detected pickle protocol 4": the error below says it all
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if "GLOBAL" in str(error) or "Unsupported global" in str(error):
            raise ValueError(
                f"checkpoint {str(path)!r} names Python objects that an mtlkit checkpoint never holds; it was "
                "not loaded (loading it could run code). Use a checkpoint written by mtlkit"
            ) from None
        raise ValueError(f"checkpoint {str(path)!r} is damaged (truncated or corrupt); it was not loaded") from None
    except (RuntimeError, EOFError, OSError, KeyError, ValueError, IndexError, AttributeError) as error:
        reason = "empty" if path.stat().st_size == 0 else "truncated or corrupt"
        raise ValueError(
            f"checkpoint {str(path)!r} is damaged ({reason}: {type(error).__name__}); it was not loaded"
        ) from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"checkpoint {str(path)!r} is not an mtlkit checkpoint of format {CHECKPOINT_FORMAT}")
    missing = [key for key in REQUIRED_KEYS if key not in state]
    if missing:
        raise ValueError(f"checkpoint {str(path)!r} is incomplete: it lacks {missing}")
    return state


#: Train-config fields a resume may change: they decide where and how verbosely the run goes on,
#: not what it computes. ``epochs`` may change too unless the schedule spans them (cosine).
RESUME_MAY_CHANGE = ("device", "quiet", "eval_batch_size")


def check_compatible(saved: Mapping[str, Any], here: Mapping[str, Any], theirs: Mapping[str, torch.Tensor],
                     ours: Mapping[str, torch.Tensor], path: str | os.PathLike) -> None:
    """Refuse a checkpoint written by a different run, naming *every* difference in one message.

    Differences in the model (class, name, config, parameter shapes), the schema, and any
    training setting that decides what is computed (learning rate, batch size, seed, weighting,
    ...) are refused: continuing with another value would mix two runs in one set of weights,
    and the run's ``config.json`` would describe neither. Only :data:`RESUME_MAY_CHANGE` may
    differ, and ``epochs`` where the learning-rate schedule does not span them.

    Args:
        saved: the run config stored in the checkpoint (``Trainer.run_config()`` then).
        here: this trainer's run config.
        theirs: the checkpoint's model state dict. ours: this model's.
        path: the checkpoint, for the message.
    """
    differences: list[str] = []

    def compare(what: str, old: Any, new: Any) -> None:
        if old != new:
            differences.append(f"{what} is {old!r} in the checkpoint but {new!r} here")

    for key in ("class", "name"):
        old, new = saved["model"].get(key), here["model"].get(key)
        if old is not None and new is not None:
            compare(f"model {key}", old, new)
    old_config, new_config = saved["model"].get("config"), here["model"].get("config")
    if isinstance(old_config, dict) and isinstance(new_config, dict):
        for name in sorted(set(old_config) | set(new_config)):
            compare(f"model config field {name!r}", old_config.get(name), new_config.get(name))
    old_schema, new_schema = saved["schema"], here["schema"]
    for key in sorted(set(old_schema) | set(new_schema)):
        compare(f"schema field {key!r}", old_schema.get(key), new_schema.get(key))
    old_train, new_train = saved["train"], here["train"]
    may_change = set(RESUME_MAY_CHANGE)
    if new_train.get("scheduler") != "cosine":
        may_change.add("epochs")
    for key in sorted(set(old_train) | set(new_train)):
        if key not in may_change:
            compare(f"train config {key!r}", old_train.get(key), new_train.get(key))
    for name in sorted(set(ours) | set(theirs)):
        if name not in ours or name not in theirs:
            side = "only in the checkpoint" if name in theirs else "only in this model"
            differences.append(f"model parameter {name!r} is {side}")
        elif ours[name].shape != theirs[name].shape:
            compare(f"the shape of model parameter {name!r}", tuple(theirs[name].shape), tuple(ours[name].shape))
    if differences:
        raise ValueError(f"checkpoint {str(path)!r} was written by a different run: " + "; ".join(differences))
