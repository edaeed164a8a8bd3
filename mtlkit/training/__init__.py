"""Training: the loop and the rooms around it.

=====================  ==============================================================
module                 what it holds
=====================  ==============================================================
``trainer``            :class:`Trainer` — the training loop, prediction and evaluation
``config``             :class:`TrainConfig` — everything that decides how a model is trained
``history``            :class:`History` (step and epoch rows), :class:`Callback` hooks,
                       :class:`RunningMeans` (the rows' running averages)
``evaluation``         one forward pass over a split feeding metrics and summaries
``early_stopping``     :class:`EarlyStopping` on one history column, with the best weights
``checkpoint``         the checkpoint format, exact resume (every RNG), compatibility checks
``distributed``        ``torchrun`` / DDP set-up, sharding and the globally exact masked loss
``auxiliary``          the hook for a second objective beside the tasks (the adversary)
=====================  ==============================================================

The run folder (``config.json``, ``metrics.json``, histories and checkpoint) is written and
read by :mod:`mtlkit.runs`; :func:`load_run` is re-exported here for convenience.
"""

from __future__ import annotations

from typing import Any

from mtlkit.metrics import TASK_METRICS as METRICS
from mtlkit.training.checkpoint import CHECKPOINT_FORMAT
from mtlkit.training.config import TrainConfig
from mtlkit.training.distributed import shutdown_distributed
from mtlkit.training.history import Callback, History
from mtlkit.training.trainer import Trainer

__all__ = [
    "CHECKPOINT_FORMAT",
    "Callback",
    "History",
    "METRICS",
    "TrainConfig",
    "Trainer",
    "load_run",
    "shutdown_distributed",
]


def __getattr__(name: str) -> Any:
    # load_run lives with the run-folder writer in mtlkit.runs (a layer above training);
    # importing it lazily keeps `import mtlkit.training` free of that upward import.
    if name == "load_run":
        from mtlkit.runs import load_run

        return load_run
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
