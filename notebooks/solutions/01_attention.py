"""Reference solutions to the checkable exercises of notebook 01. Try the exercises first!

Each answer is what the notebook's stub asks for; ``SOLUTIONS`` maps the exercise id to it,
and ``python -m mtlkit exercises --solutions`` runs every one through its check.
"""

import math

import torch


def unit_variance_scale(d, sigma):
    """Var(q·k) = d σ⁴ (each q_i k_i has variance σ² · σ²), so scale by 1 / √(d σ⁴)."""
    return 1.0 / (sigma**2 * math.sqrt(d))


def causal_attention(query, key, value):
    """Causal scaled dot-product attention: (output, weights)."""
    length = query.size(-2)
    scores = torch.matmul(query, key.transpose(-1, -2)) / math.sqrt(query.size(-1))  # (..., L, L)
    future = torch.triu(torch.ones(length, length, dtype=torch.bool), diagonal=1)  # True above the diagonal
    weights = torch.softmax(scores.masked_fill(future, float("-inf")), dim=-1)
    return torch.matmul(weights, value), weights


def attention_mask(lengths, seq_len):
    """(B, L, L) bool, True = may attend: causal, and the key is a real (not left-padded) item."""
    first_real = seq_len - lengths  # (B,) index of each history's first real item
    key_is_real = torch.arange(seq_len)[None, :] >= first_real[:, None]  # (B, L)
    causal = torch.arange(seq_len)[:, None] >= torch.arange(seq_len)[None, :]  # (L, L), key index <= query index
    return causal[None, :, :] & key_is_real[:, None, :]


# batch x heads x L x L weights of 4 bytes each (float32)
attention_weights_bytes = 256 * 8 * 2048 * 2048 * 4


SOLUTIONS = {
    "01.1": unit_variance_scale,
    "01.2": causal_attention,
    "01.3": attention_mask,
    "01.4": attention_weights_bytes,
}
