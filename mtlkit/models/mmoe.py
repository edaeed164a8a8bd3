"""Multi-gate Mixture-of-Experts (MMoE; Ma, Zhao, Yi, Chen, Hong & Chi, KDD 2018,
"Modeling Task Relationships in Multi-task Learning with Multi-gate Mixture-of-Experts").

All tasks share the encoder and a set of expert networks f_1 … f_n; each task t mixes the
experts with its own softmax gate over the input and feeds the mixture to its tower:

    x = encoder(batch),   g_t(x) = softmax(W_t x),   ŷ_t = tower_t( Σ_k g_t(x)_k f_k(x) ).

Tasks that are little related can learn to use different experts, which softens the
negative transfer of a shared bottom.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from torch import Tensor, nn

from mtlkit.checks import check_int, check_sizes
from mtlkit.models.base import ModelConfig, MultiTaskModel
from mtlkit.models.encoder import FeatureEncoder
from mtlkit.models.experts import ExpertGroup, Gate, mix_experts

if TYPE_CHECKING:
    from mtlkit.data.schema import FeatureSchema


@dataclass
class MMoEConfig(ModelConfig):
    """``n_experts`` expert MLPs (``expert_hidden``; output width = its last size), mixed by
    one softmax gate per task."""

    n_experts: int = 4
    expert_hidden: tuple[int, ...] = (64,)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.n_experts = check_int("n_experts", self.n_experts, low=1)
        self.expert_hidden = check_sizes("expert_hidden", self.expert_hidden)


class MMoE(MultiTaskModel):
    """Encoder → ``n_experts`` shared experts → one softmax gate and tower per task."""

    config_class = MMoEConfig

    def __init__(self, schema: FeatureSchema, config: MMoEConfig | None = None) -> None:
        super().__init__(schema, config)
        config = self.config
        self.encoder = FeatureEncoder(schema, config)
        d_in = self.encoder.out_dim
        self.experts = ExpertGroup(
            config.n_experts,
            d_in,
            config.expert_hidden,
            activation=config.activation,
            dropout=config.dropout,
        )
        self.gates = nn.ModuleDict({name: Gate(d_in, config.n_experts) for name in self.task_names})
        self.towers = self.make_towers(self.experts.out_dim)
        self._gate_weights: dict[str, Tensor] = {}

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        x = self.encoder(batch)  # (B, d_in)
        experts = self.experts(x)  # (B, n_experts, d_expert)
        outputs, gates = {}, {}
        for name in self.task_names:
            gate = self.gates[name](x)  # (B, n_experts), rows sum to 1
            gates[name] = gate.detach()
            outputs[name] = self.towers[name](mix_experts(gate, experts)).squeeze(-1)  # (B,)
        self._gate_weights = gates
        return outputs

    def gate_weights(self) -> dict[str, Tensor]:
        """Task → gate weights ``(B, n_experts)`` of the last forward (each row sums to 1)."""
        return dict(self._gate_weights)

    def shared_parameters(self) -> list[nn.Parameter]:
        return [*self.encoder.parameters(), *self.experts.parameters()]

    def last_shared_parameters(self) -> list[nn.Parameter]:
        return self.experts.last_layer_parameters()
