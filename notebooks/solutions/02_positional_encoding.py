"""Reference solutions to the checkable exercises of notebook 02. Try the exercises first!

Each answer is what the notebook's stub asks for; ``SOLUTIONS`` maps the exercise id to it,
and ``python -m mtlkit exercises --solutions`` runs every one through its check.
"""

import math

import torch

from mtlkit.attention import MultiHeadAttention


def frequencies(d_model):
    """ω_i = 10000^(−2i/d) for the pairs i = 0 .. d/2 − 1."""
    return torch.exp(-math.log(10000.0) * torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)


def sinusoidal_table(max_len, d_model):
    """(max_len, d_model): sines in the even columns, cosines in the odd ones, one frequency per pair."""
    angle = torch.arange(max_len, dtype=torch.float64).outer(frequencies(d_model))  # (max_len, ceil(d/2))
    table = torch.zeros(max_len, d_model, dtype=torch.float64)
    table[:, 0::2] = angle.sin()
    table[:, 1::2] = angle[:, : d_model // 2].cos()
    return table


def squared_distance(offset, d_model):
    """‖PE(p) − PE(p + k)‖² = d/2 + d/2 − 2 Σ_i cos(k ω_i)."""
    return d_model - 2 * torch.cos(offset * frequencies(d_model)).sum().item()


def rope_rotate(x, positions):
    """Turn each pair (x_2i, x_2i+1) at position p counter-clockwise by p ω_i."""
    angle = positions.to(torch.float64)[:, None] * frequencies(x.size(-1))  # (L, d/2)
    cos, sin = angle.cos().to(x.dtype), angle.sin().to(x.dtype)
    even, odd = x[..., 0::2], x[..., 1::2]
    out = torch.empty_like(x)
    out[..., 0::2] = even * cos - odd * sin
    out[..., 1::2] = even * sin + odd * cos
    return out


def causal_permutation_deviation(d_model=64, n_heads=4, seq_len=8, seed=0):
    """Section 1 with is_causal=True in both calls: max |Attn(P X) − P Attn(X)|."""
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):  # the layer's initialisation leaves the global generator alone
        torch.manual_seed(seed)
        mha = MultiHeadAttention(d_model, n_heads).eval()
    history = torch.randn(2, seq_len, d_model, generator=generator)
    perm = torch.randperm(seq_len, generator=generator)
    with torch.no_grad():
        out, _ = mha(history, is_causal=True)
        shuffled, _ = mha(history[:, perm], is_causal=True)
    return (out[:, perm] - shuffled).abs().max().item()


# The mask stays in place while the items move (P M Pᵀ is no longer lower-triangular): not equivariant.
causal_equivariance = {"prediction": "no", "max_deviation": causal_permutation_deviation()}


SOLUTIONS = {
    "02.1": sinusoidal_table,
    "02.2": squared_distance,
    "02.3": rope_rotate,
    "02.4": causal_equivariance,
}
