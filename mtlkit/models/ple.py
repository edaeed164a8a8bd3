"""Progressive Layered Extraction (PLE; Tang, Liu, Zhao & Gong, RecSys 2020, "Progressive
Layered Extraction (PLE): A Novel Multi-Task Learning (MTL) Model for Personalized
Recommendations").

PLE stacks Customized Gate Control (CGC) levels. Level ℓ has, for every task t, its own
experts E_t^ℓ and a set of shared experts E_s^ℓ. Task t's gate mixes only its own and the
shared experts; the shared branch's gate (every level but the last) mixes all experts:

    h_t^ℓ = Σ_k softmax(W_t^ℓ h_t^{ℓ-1})_k · [E_t^ℓ(h_t^{ℓ-1}) ; E_s^ℓ(h_s^{ℓ-1})]_k
    h_s^ℓ = Σ_k softmax(W_s^ℓ h_s^{ℓ-1})_k · [E_1^ℓ(h_1^{ℓ-1}) ; … ; E_T^ℓ(h_T^{ℓ-1}) ; E_s^ℓ(h_s^{ℓ-1})]_k

with h_t^0 = h_s^0 = encoder(x) and ŷ_t = tower_t(h_t^L). Task-specific experts are
reached by the other tasks only through the shared gates, which separates shared from
task-specific knowledge more explicitly than MMoE.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from mtlkit.checks import check_int, check_sizes
from mtlkit.models.base import ModelConfig, MultiTaskModel
from mtlkit.models.encoder import FeatureEncoder
from mtlkit.models.experts import ExpertGroup, Gate, mix_experts

if TYPE_CHECKING:
    from mtlkit.data.schema import FeatureSchema


@dataclass
class PLEConfig(ModelConfig):
    """``n_levels`` CGC levels, each with ``n_shared_experts`` shared experts and
    ``n_task_experts`` experts per task (``expert_hidden`` as in MMoE)."""

    n_levels: int = 2
    n_shared_experts: int = 2
    n_task_experts: int = 1
    expert_hidden: tuple[int, ...] = (64,)

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("n_levels", "n_shared_experts", "n_task_experts"):
            setattr(self, name, check_int(name, getattr(self, name), low=1))
        self.expert_hidden = check_sizes("expert_hidden", self.expert_hidden)


class CGCLevel(nn.Module):
    """One Customized Gate Control level: task and shared experts, task gates and (unless
    ``final``) the shared gate.

    Gate weights are over ``[own task experts ; shared experts]`` for a task, and over
    ``[task 1 experts ; … ; task T experts ; shared experts]`` for the shared branch.
    """

    def __init__(self, task_names: tuple[str, ...], in_dim: int, config: PLEConfig, *, final: bool) -> None:
        super().__init__()
        self.task_names = task_names

        def experts(n: int) -> ExpertGroup:
            return ExpertGroup(
                n, in_dim, config.expert_hidden, activation=config.activation, dropout=config.dropout
            )

        n_task, n_shared = config.n_task_experts, config.n_shared_experts
        self.task_experts = nn.ModuleDict({name: experts(n_task) for name in task_names})
        self.shared_experts = experts(n_shared)
        self.task_gates = nn.ModuleDict({name: Gate(in_dim, n_task + n_shared) for name in task_names})
        n_all = len(task_names) * n_task + n_shared
        self.shared_gate = None if final else Gate(in_dim, n_all)
        self.out_dim = self.shared_experts.out_dim

    def shared_parameters(self) -> list[nn.Parameter]:
        """The parameters every task's gradient reaches: the shared experts and the shared gate."""
        params = list(self.shared_experts.parameters())
        if self.shared_gate is not None:
            params += self.shared_gate.parameters()
        return params

    def forward(
        self, task_inputs: dict[str, Tensor], shared_input: Tensor
    ) -> tuple[dict[str, Tensor], Tensor | None, dict[str, Tensor], Tensor | None]:
        """Returns (task outputs, shared output or None, task gates, shared gate or None);
        outputs ``(B, d_expert)``, gates ``(B, n_gated_experts)``."""
        shared = self.shared_experts(shared_input)  # (B, n_shared, d)
        own = {name: self.task_experts[name](task_inputs[name]) for name in self.task_names}  # (B, n_task, d)
        task_outputs, task_gates = {}, {}
        for name in self.task_names:
            gate = self.task_gates[name](task_inputs[name])  # (B, n_task + n_shared)
            task_gates[name] = gate
            task_outputs[name] = mix_experts(gate, torch.cat([own[name], shared], dim=1))  # (B, d)
        if self.shared_gate is None:
            return task_outputs, None, task_gates, None
        gate = self.shared_gate(shared_input)  # (B, T * n_task + n_shared)
        every = torch.cat([*own.values(), shared], dim=1)  # (B, T * n_task + n_shared, d)
        return task_outputs, mix_experts(gate, every), task_gates, gate


class PLE(MultiTaskModel):
    """Encoder → ``n_levels`` CGC levels → one tower per task."""

    config_class = PLEConfig

    def __init__(self, schema: FeatureSchema, config: PLEConfig | None = None) -> None:
        super().__init__(schema, config)
        config = self.config
        self.encoder = FeatureEncoder(schema, config)
        levels, in_dim = [], self.encoder.out_dim
        for level in range(config.n_levels):
            levels.append(CGCLevel(self.task_names, in_dim, config, final=level == config.n_levels - 1))
            in_dim = levels[-1].out_dim
        self.levels = nn.ModuleList(levels)
        self.towers = self.make_towers(in_dim)
        self._task_gates: list[dict[str, Tensor]] = []
        self._shared_gates: list[Tensor] = []

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        x = self.encoder(batch)  # (B, d_in)
        task_h, shared_h = {name: x for name in self.task_names}, x
        task_gates, shared_gates = [], []
        for level in self.levels:
            task_h, shared_h, gates, shared_gate = level(task_h, shared_h)
            task_gates.append({name: gate.detach() for name, gate in gates.items()})
            if shared_gate is not None:
                shared_gates.append(shared_gate.detach())
        self._task_gates, self._shared_gates = task_gates, shared_gates
        return {name: self.towers[name](task_h[name]).squeeze(-1) for name in self.task_names}

    def gate_weights(self, level: int = -1) -> dict[str, Tensor]:
        """Task → gate weights ``(B, n_task_experts + n_shared_experts)`` of ``level`` (default
        the last) from the last forward; columns are the task's own experts, then the shared
        ones; each row sums to 1."""
        if not self._task_gates:
            return {}
        return dict(self._task_gates[level])

    def shared_gate_weights(self) -> list[Tensor]:
        """The shared gates ``(B, n_tasks · n_task_experts + n_shared_experts)`` of every level
        but the last, from the last forward; columns are task 1's experts, …, task T's, then
        the shared ones."""
        return list(self._shared_gates)

    def shared_parameters(self) -> list[nn.Parameter]:
        params = list(self.encoder.parameters())
        for level in self.levels:
            params += level.shared_parameters()
        return params

    def last_shared_parameters(self) -> list[nn.Parameter]:
        return self.levels[-1].shared_experts.last_layer_parameters()
