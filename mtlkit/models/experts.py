"""Building blocks of the multi-task architectures: MLPs, groups of experts, softmax gates.

A mixture-of-experts layer (Jacobs et al., 1991; Shazeer et al., ICLR 2017) computes, for a
task t with gate g_t,

    y_t(x) = Σ_k g_t(x)_k · f_k(x),     g_t(x) = softmax(W_t x + b_t),

so every task sees the same experts f_k but mixes them its own way (MMoE, Ma et al., KDD 2018).
The experts of one group share a shape, so :class:`ExpertGroup` stores them as stacked weight
tensors and evaluates all of them with one ``einsum`` per layer instead of a Python loop.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn


#: The nonlinearities of bottoms, experts and towers, by config name (``ModelConfig.activation``).
ACTIVATIONS = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
    "leaky_relu": nn.LeakyReLU,
}


def make_activation(name: str) -> nn.Module:
    """The activation module for a name of :data:`ACTIVATIONS` (validated by the config)."""
    return ACTIVATIONS[name]()


def init_linear(layer: nn.Linear) -> None:
    """Xavier/Glorot uniform weights (Glorot & Bengio, AISTATS 2010) and zero bias."""
    nn.init.xavier_uniform_(layer.weight)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)


class MLP(nn.Module):
    """A stack of ``Linear → activation → dropout`` blocks, one per size in ``hidden``,
    optionally followed by a plain output ``Linear`` to ``out_dim`` (no activation).

    Used as the shared bottom (no ``out_dim``) and as task towers (``out_dim=1``: the logit or
    the regression value).

    Args:
        in_dim: input width.
        hidden: hidden layer sizes (may be empty when ``out_dim`` is given).
        out_dim: width of the final linear layer, or None to end after the last hidden block.
        activation: activation name (see :func:`make_activation`).
        dropout: dropout probability after every hidden block.
    """

    def __init__(
        self,
        in_dim: int,
        hidden: Sequence[int],
        *,
        out_dim: int | None = None,
        activation: str = "relu",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = in_dim
        for size in hidden:
            layers += [nn.Linear(width, size), make_activation(activation), nn.Dropout(dropout)]
            width = size
        if out_dim is not None:
            layers.append(nn.Linear(width, out_dim))
            width = out_dim
        if not any(isinstance(layer, nn.Linear) for layer in layers):
            raise ValueError(f"hidden must be non-empty when out_dim is None, got {hidden!r}")
        self.layers = nn.Sequential(*layers)
        self.out_dim = width
        for layer in self.layers:
            if isinstance(layer, nn.Linear):
                init_linear(layer)

    def forward(self, x: Tensor) -> Tensor:  # (B, in_dim) -> (B, out_dim)
        return self.layers(x)

    def last_linear(self) -> nn.Linear:
        """The last ``Linear`` layer (GradNorm's "last shared layer" when this MLP is shared)."""
        return [layer for layer in self.layers if isinstance(layer, nn.Linear)][-1]


class ExpertGroup(nn.Module):
    """``n_experts`` MLP experts of the same shape, evaluated together.

    Layer ℓ of expert k computes h_k ← act(h_k W_k^ℓ + b_k^ℓ); the weights of all experts are
    stacked into one tensor ``(n_experts, d_in, d_out)`` so a single ``einsum`` runs every
    expert at once (the same arithmetic as a loop over ``n_experts`` ``nn.Linear`` layers).

    Args:
        n_experts: number of experts.
        in_dim: input width (every expert sees the same input).
        hidden: layer sizes of each expert; the output width is ``hidden[-1]``.
        activation: activation name, applied after every layer (experts end in a feature).
        dropout: dropout probability after every layer.
    """

    def __init__(
        self,
        n_experts: int,
        in_dim: int,
        hidden: Sequence[int],
        *,
        activation: str = "relu",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if not hidden:
            raise ValueError(f"hidden must have at least one layer size, got {hidden!r}")
        sizes = [in_dim, *hidden]
        self.weights = nn.ParameterList(
            nn.Parameter(torch.empty(n_experts, d_in, d_out))
            for d_in, d_out in zip(sizes[:-1], sizes[1:])
        )
        self.biases = nn.ParameterList(
            nn.Parameter(torch.zeros(n_experts, d_out)) for d_out in sizes[1:]
        )
        self.activation = make_activation(activation)
        self.dropout = nn.Dropout(dropout)
        self.n_experts = n_experts
        self.out_dim = sizes[-1]
        for weight in self.weights:
            for expert_weight in weight:  # Xavier per expert, as nn.Linear layers would get
                nn.init.xavier_uniform_(expert_weight)

    def forward(self, x: Tensor) -> Tensor:
        """Run every expert on ``x`` of shape ``(B, in_dim)``; returns ``(B, n_experts, out_dim)``."""
        h = x.unsqueeze(1).expand(-1, self.n_experts, -1)  # (B, n, d_in)
        for weight, bias in zip(self.weights, self.biases):
            h = torch.einsum("bni,nio->bno", h, weight) + bias  # (B, n, d_out)
            h = self.dropout(self.activation(h))
        return h

    def last_layer_parameters(self) -> list[nn.Parameter]:
        """Weight and bias of the experts' last layer."""
        return [self.weights[-1], self.biases[-1]]


class Gate(nn.Module):
    """A softmax gate g(x) = softmax(W x + b) over ``n_experts`` (Ma et al., KDD 2018).

    W and b start at zero so every gate starts as the uniform mixture 1/n_experts and learns
    from there which experts its task prefers.
    """

    def __init__(self, in_dim: int, n_experts: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_dim, n_experts)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, x: Tensor) -> Tensor:  # (B, in_dim) -> (B, n_experts), rows sum to 1
        return torch.softmax(self.linear(x), dim=-1)


def mix_experts(gate: Tensor, experts: Tensor) -> Tensor:
    """Σ_k gate_k · expert_k: ``(B, n)`` weights and ``(B, n, d)`` outputs → ``(B, d)``.

    Written as a broadcast product and a sum over the experts rather than
    ``einsum("bn,bnd->bd")``: the einsum becomes a batched matrix product of B tiny
    (1 × n)·(n × d) matrices, which cost about 3× more forward and backward on a CPU
    (measured for B = 256–2048, n = 4–8, d = 64–128; ``benchmarks/results/train_throughput``).
    """
    return (gate.unsqueeze(-1) * experts).sum(dim=1)  # (B, n, 1) * (B, n, d) -> (B, d)
