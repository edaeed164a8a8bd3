"""Early stopping on one epoch-history column, keeping the best epoch's weights."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from mtlkit.metrics import higher_is_better

__all__ = ["EarlyStopping"]


class EarlyStopping:
    """Watch ``monitor`` after every epoch; stop after ``patience`` epochs without improvement.

    When a value improves on the best so far (a NaN never does, but any number beats a NaN
    best), a copy of the weights of every module in ``modules`` (the model, and any auxiliary
    objective such as the adversary head, which was trained against *this* encoder) is kept,
    so :meth:`restore` can put the best epoch back.

    Args:
        monitor: a history column, e.g. ``"valid/click/auc"`` or ``"loss/click"``.
        mode: ``"max"``, ``"min"``, or ``"auto"`` (from the metric's name:
            :func:`mtlkit.metrics.higher_is_better`).
        patience: epochs without improvement before stopping.
    """

    def __init__(self, monitor: str, mode: str, patience: int) -> None:
        self.monitor = monitor
        self.mode = ("max" if higher_is_better(monitor) else "min") if mode == "auto" else mode
        self.patience = patience
        self.best_value: float | None = None
        self.best_epoch: int | None = None
        self.bad_epochs = 0
        self.best_states: dict[str, dict[str, Tensor]] = {}

    def _improves(self, value: float) -> bool:
        if self.best_value is None or (not math.isnan(value) and math.isnan(self.best_value)):
            return True
        return value > self.best_value if self.mode == "max" else value < self.best_value

    def update(self, record: Mapping[str, float], epoch: int, modules: Mapping[str, nn.Module]) -> bool:
        """Read the epoch's ``record``; returns True when training should stop."""
        value = float(record[self.monitor])
        if self._improves(value):
            self.best_value, self.best_epoch, self.bad_epochs = value, epoch, 0
            self.best_states = {
                name: {k: v.detach().clone() for k, v in module.state_dict().items()} for name, module in modules.items()
            }
            return False
        self.bad_epochs += 1
        return self.bad_epochs >= self.patience

    def restore(self, modules: Mapping[str, nn.Module]) -> bool:
        """Load the best epoch's weights into ``modules``; False when no epoch was kept."""
        if not self.best_states:
            return False
        for name, module in modules.items():
            if name in self.best_states:
                module.load_state_dict(self.best_states[name])
        return True

    # Checkpoint layout (kept from format 1): the model's best weights under "best_state",
    # each other module's under "best_<name>_state".
    @staticmethod
    def _key(name: str) -> str:
        return "best_state" if name == "model" else f"best_{name}_state"

    def state_dict(self, names: tuple[str, ...]) -> dict[str, Any]:
        state: dict[str, Any] = {"best_value": self.best_value, "best_epoch": self.best_epoch,
                                 "bad_epochs": self.bad_epochs}
        for name in names:
            state[self._key(name)] = self.best_states.get(name)
        return state

    def load_state_dict(self, state: Mapping[str, Any], names: tuple[str, ...], device: torch.device) -> None:
        self.best_value, self.best_epoch = state["best_value"], state["best_epoch"]
        self.bad_epochs = int(state["bad_epochs"])
        self.best_states = {}
        for name in names:
            saved = state.get(self._key(name))  # absent in checkpoints older than the module
            if saved is not None:
                self.best_states[name] = {k: v.to(device) for k, v in saved.items()}
