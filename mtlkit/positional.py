"""Positional encodings: sinusoidal, learned, and rotary (RoPE).

Attention is permutation-invariant: without position information a Transformer sees a
user's history as a bag of items. Three ways to tell it the order:

* **Sinusoidal** (Vaswani et al., 2017, "Attention Is All You Need", NeurIPS): add

      PE[p, 2i]   = sin(p · ω_i),   PE[p, 2i+1] = cos(p · ω_i),   ω_i = 1 / 10000^(2i/d)

  to the input. Each (sin, cos) pair turns at its own frequency ω_i, so shifting the
  position by k is the same fixed rotation for every p: PE(p + k) = PE(p) M_kᵀ with
  M_k block-diagonal, one 2x2 rotation by angle k·ω_i per pair (:func:`relative_rotation`).
* **Learned** (as in BERT, Devlin et al., 2019, NAACL; and SASRec, Kang & McAuley, 2018,
  ICDM): one trainable vector per position.
* **Rotary** (RoPE; Su et al., 2021, "RoFormer: Enhanced Transformer with Rotary Position
  Embedding", arXiv:2104.09864): instead of adding, *rotate* each pair of query and key
  coordinates by angle p · ω_i. Rotations compose, so ⟨R_p q, R_r k⟩ = ⟨q, R_(r-p) k⟩:
  the attention score depends only on the offset r - p.

A sequence longer than ``max_len`` raises a ValueError naming the length and ``max_len``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mtlkit.attention import _check_sequence
from mtlkit.checks import check_int, check_number, check_probability

__all__ = [
    "LearnedPositionalEmbedding",
    "RotaryPositionalEmbedding",
    "SinusoidalPositionalEncoding",
    "relative_rotation",
    "sinusoidal_positional_encoding",
]


def _inverse_frequencies(dim: int, base: float) -> Tensor:
    """ω_i = 1 / base^(2i/dim) for i = 0 .. ceil(dim/2) - 1, float64, shape (ceil(dim/2),)."""
    return base ** (-torch.arange(0, dim, 2, dtype=torch.float64) / dim)


def _position_index(x: Tensor, positions: Tensor | None, max_len: int) -> Tensor:
    """The positions to look up for x (..., L, d): 0..L-1 by default, checked against max_len."""
    L = x.size(-2)
    if positions is None:
        if L > max_len:
            raise ValueError(f"x has sequence length {L}, longer than max_len={max_len}")
        return torch.arange(L, device=x.device)  # (L,)
    if not isinstance(positions, Tensor) or positions.dtype not in (torch.int32, torch.int64):
        raise TypeError(f"positions must be an integer (int64) tensor, got {positions!r}")
    try:
        torch.broadcast_shapes(positions.shape, x.shape[:-1])
    except RuntimeError:
        raise ValueError(
            f"positions must be broadcastable to x.shape[:-1]={tuple(x.shape[:-1])}, "
            f"got shape {tuple(positions.shape)}"
        ) from None
    if positions.numel() and (positions.min() < 0 or positions.max() >= max_len):
        raise ValueError(
            f"positions must lie in [0, max_len={max_len}), got values in "
            f"[{int(positions.min())}, {int(positions.max())}]"
        )
    return positions


def sinusoidal_positional_encoding(
    max_len: int, d_model: int, *, base: float = 10000.0, dtype: torch.dtype = torch.float32
) -> Tensor:
    """The sinusoidal table of Vaswani et al. (2017, NeurIPS), shape (max_len, d_model).

        PE[p, 2i]   = sin(p / base^(2i/d_model))
        PE[p, 2i+1] = cos(p / base^(2i/d_model))

    Computed in float64, then cast to ``dtype``. For an odd ``d_model`` the last column
    is a sine whose cosine partner would be column d_model (dropped): it keeps the same
    formula, but has no pair to rotate with, so :func:`relative_rotation` needs an even
    ``d_model``.
    """
    max_len = check_int("max_len", max_len, low=1)
    d_model = check_int("d_model", d_model, low=1)
    base = check_number("base", base, low=1, low_open=True)
    inv_freq = _inverse_frequencies(d_model, base)  # (ceil(d/2),)
    angles = torch.arange(max_len, dtype=torch.float64)[:, None] * inv_freq  # (max_len, ceil(d/2))
    pe = torch.empty(max_len, d_model, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(angles)  # columns 0, 2, 4, ...
    pe[:, 1::2] = torch.cos(angles[:, : d_model // 2])  # columns 1, 3, 5, ...
    return pe.to(dtype)


def relative_rotation(
    k: float, d_model: int, *, base: float = 10000.0, dtype: torch.dtype = torch.float32
) -> Tensor:
    """The fixed linear map M_k with PE(p + k) = PE(p) M_kᵀ for every position p.

    By sin(a + b) = sin a cos b + cos a sin b and cos(a + b) = cos a cos b - sin a sin b,
    each (sin, cos) pair of frequency ω_i is rotated by angle k·ω_i:

        [PE[p+k, 2i]  ]   [ cos kω_i   sin kω_i] [PE[p, 2i]  ]
        [PE[p+k, 2i+1]] = [-sin kω_i   cos kω_i] [PE[p, 2i+1]]

    so M_k (d_model, d_model) is block-diagonal with these 2x2 rotations: orthogonal,
    M_0 = I, M_j M_k = M_(j+k). It is the linear map Vaswani et al. (2017) allude to
    ("PE_(pos+k) can be represented as a linear function of PE_pos"). Its transpose is
    RoPE's rotation for position k: ``RotaryPositionalEmbedding.rotate(x)`` at position k
    equals ``x @ relative_rotation(k, head_dim)``.

    Args:
        k: the shift (any real number, negative allowed).
        d_model: even width of the encoding.
    """
    k = check_number("k", k)
    d_model = check_int("d_model", d_model, low=1)
    if d_model % 2:
        raise ValueError(f"d_model must be even (the map rotates (sin, cos) pairs), got {d_model!r}")
    base = check_number("base", base, low=1, low_open=True)
    angle = k * _inverse_frequencies(d_model, base)  # (d/2,)
    cos, sin = torch.cos(angle), torch.sin(angle)
    i = torch.arange(0, d_model, 2)  # index of each pair's sine column
    m = torch.zeros(d_model, d_model, dtype=torch.float64)
    m[i, i], m[i, i + 1] = cos, sin
    m[i + 1, i], m[i + 1, i + 1] = -sin, cos
    return m.to(dtype)


class SinusoidalPositionalEncoding(nn.Module):
    """Adds the fixed sinusoidal encoding (Vaswani et al., 2017, NeurIPS) to x, then dropout.

        out = dropout(x + PE[positions])       PE from :func:`sinusoidal_positional_encoding`

    Args:
        d_model: width of x.
        max_len: longest sequence (largest position + 1) the table covers.
        dropout: dropout on the sum, as in the paper.
    """

    def __init__(self, d_model: int, max_len: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.d_model = d_model
        self.max_len = max_len
        # Not persistent: it is a function of (max_len, d_model), not a learned state.
        self.register_buffer("pe", sinusoidal_positional_encoding(max_len, d_model), persistent=False)
        self.dropout = nn.Dropout(check_probability("dropout", dropout))

    def forward(self, x: Tensor, positions: Tensor | None = None) -> Tensor:
        """x (..., L, d_model); positions: optional int tensor broadcastable to (..., L),
        default 0..L-1. Returns x + PE[positions], same shape as x."""
        _check_sequence("x", x, "d_model", self.d_model)
        pe = self.pe[_position_index(x, positions, self.max_len)]  # (..., L, d_model)
        return self.dropout(x + pe.to(x.dtype))


class LearnedPositionalEmbedding(nn.Module):
    """Adds a trainable vector per position to x (as BERT, Devlin et al., 2019, NAACL, and
    SASRec, Kang & McAuley, 2018, ICDM), then dropout:

        out = dropout(x + E[positions])        E (max_len, d_model), initialised N(0, 0.02²)

    Unlike the sinusoidal table it cannot extrapolate: a position never seen in training
    keeps its random initial vector.
    """

    def __init__(self, max_len: int, d_model: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.max_len = check_int("max_len", max_len, low=1)
        self.d_model = check_int("d_model", d_model, low=1)
        self.embedding = nn.Embedding(max_len, d_model)
        nn.init.normal_(self.embedding.weight, std=0.02)
        self.dropout = nn.Dropout(check_probability("dropout", dropout))

    def forward(self, x: Tensor, positions: Tensor | None = None) -> Tensor:
        """x (..., L, d_model); positions as in :class:`SinusoidalPositionalEncoding`."""
        _check_sequence("x", x, "d_model", self.d_model)
        pe = self.embedding(_position_index(x, positions, self.max_len))  # (..., L, d_model)
        return self.dropout(x + pe)


class RotaryPositionalEmbedding(nn.Module):
    """Rotary position embedding, RoPE (Su et al., 2021, RoFormer, arXiv:2104.09864).

    Coordinates (2i, 2i+1) of a query or key at position p are rotated by angle p·ω_i,
    ω_i = 1 / base^(2i/head_dim) (the sinusoidal frequencies):

        [y_2i  ]   [cos pω_i  -sin pω_i] [x_2i  ]
        [y_2i+1] = [sin pω_i   cos pω_i] [x_2i+1]

    i.e. y = x R_pᵀ with R_p = ``relative_rotation(p, head_dim)``ᵀ. Apply it to queries
    and keys (not values) after the projections and before the dot product; then
    ⟨rotate(q at p), rotate(k at r)⟩ depends on p and r only through r - p, and every
    rotation preserves the norm. Pairs are interleaved as in the paper (GPT-NeoX and
    HF LLaMA pair coordinate i with i + head_dim/2 instead; the two are a fixed
    permutation apart).

    Args:
        head_dim: even size of each head's query/key vectors.
        max_len: longest sequence (largest position + 1).
        base: the 10000 of the frequencies.
    """

    def __init__(self, head_dim: int, max_len: int, base: float = 10000.0) -> None:
        super().__init__()
        head_dim = check_int("head_dim", head_dim, low=1)
        if head_dim % 2:
            raise ValueError(f"head_dim must be even (RoPE rotates pairs), got {head_dim!r}")
        self.head_dim = head_dim
        self.max_len = check_int("max_len", max_len, low=1)
        self.base = check_number("base", base, low=1, low_open=True)
        positions = torch.arange(max_len, dtype=torch.float64)[:, None]  # (max_len, 1)
        angles = positions * _inverse_frequencies(head_dim, self.base)  # (max_len, head_dim/2)
        # (max_len, head_dim/2) tables, computed in float64 and stored in float32.
        self.register_buffer("cos", torch.cos(angles).float(), persistent=False)
        self.register_buffer("sin", torch.sin(angles).float(), persistent=False)

    def rotate(self, x: Tensor, positions: Tensor | None = None) -> Tensor:
        """Rotate x (..., L, head_dim) by its positions; returns the same shape.

        positions: optional int tensor broadcastable to x.shape[:-1] (e.g. (L,), or
        (B, 1, L) for x (B, H, L, head_dim)); default 0..L-1.
        """
        _check_sequence("x", x, "head_dim", self.head_dim)
        index = _position_index(x, positions, self.max_len)
        cos = self.cos[index].to(x.dtype)  # (..., L, head_dim/2)
        sin = self.sin[index].to(x.dtype)
        x1, x2 = x[..., 0::2], x[..., 1::2]  # (..., L, head_dim/2) each: the pairs' two coordinates
        # (x1 + i·x2) · e^(i·pω): the 2x2 rotation of each pair
        rotated = torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)  # (..., L, hd/2, 2)
        return rotated.flatten(-2)  # (..., L, head_dim), pairs interleaved again

    def forward(self, x: Tensor, positions: Tensor | None = None) -> Tensor:
        """Same as :meth:`rotate`; call it on queries and on keys."""
        return self.rotate(x, positions)
