"""The run's record: :class:`History` (step and epoch rows), :class:`Callback` hooks, and the
:class:`RunningMeans` that turn per-step values into those rows."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from mtlkit.utils import atomic_write_with

if TYPE_CHECKING:
    import pandas as pd

    from mtlkit.training.trainer import Trainer

__all__ = ["Callback", "History", "RunningMeans"]


class Callback:
    """Hooks into :meth:`Trainer.fit`; override any of them (all are no-ops here).

    ``on_step_end`` runs whenever a step row is added to the history (every
    ``log_every`` steps and at the end of each epoch) with that row; ``on_epoch_end``
    with the epoch row (training losses and validation metrics). Set
    ``trainer.stop_training = True`` to stop after the current epoch.

    Any object with some of these methods works too (duck typing).
    """

    def on_train_begin(self, trainer: Trainer) -> None: ...

    def on_step_end(self, trainer: Trainer, record: dict[str, float]) -> None: ...

    def on_epoch_end(self, trainer: Trainer, record: dict[str, float]) -> None: ...

    def on_train_end(self, trainer: Trainer) -> None: ...


class History:
    """The run's history: one row per logged step and one per epoch.

    Step rows: ``epoch``, ``step`` (optimiser steps so far), ``loss`` (Σ_t w_t L_t),
    ``loss/<task>``, ``weight/<task>`` (means over the steps since the previous row), ``lr``,
    ``samples_per_s``, and the strategy's diagnostics (``grad_norm/<task>``,
    ``grad_cos/<a>/<b>``) when ``record_gradients`` is on. Epoch rows: the same means over
    the epoch, ``epoch_time_s``, and ``valid/<task>/<metric>``.
    """

    def __init__(self, steps: Sequence[dict] = (), epochs: Sequence[dict] = ()) -> None:
        self.step_records: list[dict[str, float]] = [dict(r) for r in steps]
        self.epoch_records: list[dict[str, float]] = [dict(r) for r in epochs]

    @property
    def steps(self) -> pd.DataFrame:
        """Step rows as a DataFrame."""
        import pandas as pd

        return pd.DataFrame(self.step_records)

    @property
    def epochs(self) -> pd.DataFrame:
        """Epoch rows as a DataFrame."""
        import pandas as pd

        return pd.DataFrame(self.epoch_records)

    def to_csv(self, steps_path: str | os.PathLike, epochs_path: str | os.PathLike | None = None) -> None:
        """Write the step rows (and the epoch rows) as CSV, atomically."""
        atomic_write_with(steps_path, lambda f: self.steps.to_csv(f, index=False))
        if epochs_path is not None:
            atomic_write_with(epochs_path, lambda f: self.epochs.to_csv(f, index=False))

    def state(self) -> dict[str, list]:
        return {"steps": [dict(r) for r in self.step_records], "epochs": [dict(r) for r in self.epoch_records]}


class RunningMeans:
    """Means of per-step values over a window of steps (the rows of :class:`History`).

    The loss values of a step are a tensor on the training device and are summed there, so
    reading the means (:meth:`means`, one ``.tolist()``) is the only host sync; the task
    weights and strategy diagnostics are host floats already. One instance keeps the window
    since the last step row, another the whole epoch.

    Args:
        n_values: length of the per-step value vector.
        device: where the sums live.
    """

    def __init__(self, n_values: int, device: torch.device) -> None:
        self._sum = torch.zeros(n_values, device=device)
        self.reset()

    def reset(self) -> None:
        """Start a new window (the clock too)."""
        self._sum.zero_()
        self._weights: dict[str, float] = {}
        self._diagnostics: dict[str, float] = {}
        self.steps = 0
        self.samples = 0
        self.started = time.perf_counter()

    def add(self, values: Tensor, weights: Mapping[str, float], diagnostics: Mapping[str, float],
            n_samples: int) -> None:
        """One step: its values ``(n_values,)`` (on the device), task weights and diagnostics."""
        self._sum += values
        for source, target in ((weights, self._weights), (diagnostics, self._diagnostics)):
            for key, value in source.items():
                target[key] = target.get(key, 0.0) + float(value)
        self.steps += 1
        self.samples += n_samples

    def means(self) -> tuple[list[float], dict[str, float], dict[str, float]]:
        """(values, weights, diagnostics), each averaged over the steps of the window."""
        n = max(self.steps, 1)
        return (
            (self._sum / n).tolist(),  # the host sync
            {key: value / n for key, value in self._weights.items()},
            {key: value / n for key, value in self._diagnostics.items()},
        )

    def elapsed(self) -> float:
        """Seconds since the window started."""
        return time.perf_counter() - self.started

    def samples_per_second(self) -> float:
        return self.samples / max(self.elapsed(), 1e-9)
