"""The auxiliary-objective hook: a second objective trained beside the tasks.

An auxiliary objective reads the model's last forward (e.g. its shared representation,
through a forward hook) and adds a loss of its own. The trainer treats every such objective
the same way, without knowing what it is:

* its ``loss(batch)`` is back-propagated first in each step (with the graph kept), so the
  weighting strategy's backward — which may free the graph — comes last and its gradients
  accumulate onto the objective's;
* its parameters join the optimiser;
* its mean loss is recorded as ``loss/<name>`` and ``evaluate(trainer, samples)`` as
  ``valid/<name>/<metric>`` in every epoch row;
* its ``state_dict`` is saved in the checkpoint under ``<name>`` (and its best-epoch copy
  under ``best_<name>_state``), so resume and ``restore_best`` cover it.

The gradient-reversal adversary (:class:`mtlkit.models.adversarial.Adversary`) is one.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from torch import Tensor, nn

if TYPE_CHECKING:
    from mtlkit.data.tensors import TensorSamples
    from mtlkit.training.trainer import Trainer

__all__ = ["AuxiliaryObjective"]


class AuxiliaryObjective(Protocol):
    """What the trainer needs from an auxiliary objective (structural: no base class needed)."""

    #: History and checkpoint prefix, e.g. "adversary".
    name: str

    def parameters(self) -> Iterator[nn.Parameter]: ...

    def loss(self, batch: Mapping[str, Tensor]) -> Tensor:
        """The objective's scalar loss on the model's last forward (over ``batch``)."""
        ...

    def evaluate(self, trainer: Trainer, samples: TensorSamples) -> dict[str, float]:
        """Metrics of the objective on a split (recorded as ``valid/<name>/<metric>``)."""
        ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: Mapping[str, Any]) -> Any: ...

    def remove(self) -> None:
        """Detach from the model (called when the trainer could not be built)."""
        ...
