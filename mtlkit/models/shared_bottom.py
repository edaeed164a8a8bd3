"""Shared-bottom multi-task learning (Caruana, 1997, "Multitask Learning", Machine Learning).

All tasks share the input encoder and a bottom MLP; each task has its own tower on top:

    h = bottom(encoder(x)),        ŷ_t = tower_t(h)   for every task t.

The hard sharing regularises every task with the others' signal, and hurts when the tasks
pull the shared layers in different directions ("negative transfer").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from torch import Tensor, nn

from mtlkit.checks import check_sizes
from mtlkit.models.base import ModelConfig, MultiTaskModel
from mtlkit.models.encoder import FeatureEncoder
from mtlkit.models.experts import MLP

if TYPE_CHECKING:
    from mtlkit.data.schema import FeatureSchema


@dataclass
class SharedBottomConfig(ModelConfig):
    """Shared encoder → shared bottom MLP (``bottom_hidden``) → one tower per task."""

    bottom_hidden: tuple[int, ...] = (64,)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.bottom_hidden = check_sizes("bottom_hidden", self.bottom_hidden)


class SharedBottom(MultiTaskModel):
    """Encoder → shared bottom MLP (``config.bottom_hidden``) → one tower per task."""

    config_class = SharedBottomConfig

    def __init__(self, schema: FeatureSchema, config: SharedBottomConfig | None = None) -> None:
        super().__init__(schema, config)
        config = self.config
        self.encoder = FeatureEncoder(schema, config)
        self.bottom = MLP(
            self.encoder.out_dim,
            config.bottom_hidden,
            activation=config.activation,
            dropout=config.dropout,
        )
        self.towers = self.make_towers(self.bottom.out_dim)

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        h = self.bottom(self.encoder(batch))  # (B, bottom_hidden[-1])
        return {name: self.towers[name](h).squeeze(-1) for name in self.task_names}  # (B,) each

    def shared_parameters(self) -> list[nn.Parameter]:
        return [*self.encoder.parameters(), *self.bottom.parameters()]

    def last_shared_parameters(self) -> list[nn.Parameter]:
        return list(self.bottom.last_linear().parameters())
