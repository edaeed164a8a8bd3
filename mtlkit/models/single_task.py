"""The single-task baseline: one independent network per task.

Every multi-task claim is a comparison against this model: each task t gets its own
encoder, bottom and tower, trained on its own loss only,

    ŷ_t = tower_t(bottom_t(encoder_t(x))),

so nothing is shared and no task can help or hurt another.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from torch import Tensor, nn

from mtlkit.models.base import MultiTaskModel
from mtlkit.models.experts import MLP
from mtlkit.models.shared_bottom import SharedBottom, SharedBottomConfig

if TYPE_CHECKING:
    from mtlkit.data.schema import FeatureSchema


@dataclasses.dataclass
class SingleTaskConfig(SharedBottomConfig):
    """One independent network per task: encoder → bottom MLP (``bottom_hidden``) → tower.

    The same layers as :class:`SharedBottomConfig`, only nothing is shared, so the two
    compare like for like.
    """


class SingleTask(MultiTaskModel):
    """One one-task :class:`SharedBottom` network per task (the same layers, none shared).

    ``networks[task]`` is the task's own encoder → bottom → tower.
    """

    config_class = SingleTaskConfig

    def __init__(self, schema: FeatureSchema, config: SingleTaskConfig | None = None) -> None:
        super().__init__(schema, config)
        self.networks = nn.ModuleDict(
            {
                task.name: SharedBottom(dataclasses.replace(schema, tasks=(task,)), self.config)
                for task in schema.tasks
            }
        )

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        return {name: self.networks[name](batch)[name] for name in self.task_names}

    def tower(self, name: str) -> MLP:
        return self.networks[name].towers[name]

    def shared_parameters(self) -> list[nn.Parameter]:
        return []  # nothing is shared: that is the point of the baseline

    def last_shared_parameters(self) -> list[nn.Parameter]:
        return []

    def attention_weights(self, task: str | None = None) -> list[Tensor]:
        """The attention weights of ``task``'s own encoder (default: the first task's)."""
        name = self.task_names[0] if task is None else task
        if name not in self.networks:
            raise ValueError(f"task must be one of {list(self.task_names)}, got {task!r}")
        return self.networks[name].attention_weights()
