"""Scaled dot-product attention and multi-head attention, written out from scratch.

Attention (Vaswani et al., 2017, "Attention Is All You Need", NeurIPS) lets every query
position take a weighted average of the value vectors, weighted by how well its query
matches each key:

    weights = softmax(Q Kᵀ · scale + M)        scale = 1 / sqrt(E) by default
    output  = weights V

with Q (..., L, E), K (..., S, E), V (..., S, Ev), weights (..., L, S), output (..., L, Ev).

Mask convention (the one of ``torch.nn.functional.scaled_dot_product_attention``, used
everywhere in mtlkit):

* ``attn_mask`` bool: **True = the query may attend to this key**; False entries get -inf.
* ``attn_mask`` float: added to the scores (0 = allowed, -inf = blocked, other values bias).
* ``key_padding_mask`` (B, S) bool: **True = this key is padding** (torch's convention).

Beware: ``torch.nn.MultiheadAttention`` reads a bool ``attn_mask`` the other way round
(True = *not* allowed), so a mask moved between the two must be inverted.

A query row with no key it may attend to (all False, or all -inf) gets weights 0 and
output 0 here, never NaN: in a recommender this is a user with an empty history.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mtlkit.checks import check_bool, check_int, check_number, check_probability, check_tensor

__all__ = ["MultiHeadAttention", "scaled_dot_product_attention"]


# --------------------------------------------------------------------------- validation
# Tensor checks shared by mtlkit.attention, mtlkit.transformer and mtlkit.positional; the
# scalar arguments are checked with mtlkit.checks.


def _check_float_tensor(name: str, value: object) -> Tensor:
    check_tensor(name, value)
    if not value.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {value.dtype}")
    return value


def _check_sequence(name: str, x: object, width_name: str, width: int, *, batched: bool = False) -> Tensor:
    """A float tensor (..., seq_len, width); exactly (batch, seq_len, width) when ``batched``."""
    _check_float_tensor(name, x)
    if (x.dim() != 3 if batched else x.dim() < 2) or x.size(-1) != width:
        layout = "(batch, seq_len" if batched else "(..., seq_len"
        raise ValueError(f"{name} must have shape {layout}, {width_name}={width}), got shape {tuple(x.shape)}")
    return x


def _check_mask(name: str, mask: object, target_shape: tuple[int, ...]) -> Tensor:
    """A bool or float mask that broadcasts to ``target_shape``."""
    check_tensor(name, mask)
    if mask.dtype != torch.bool and not mask.is_floating_point():
        raise TypeError(f"{name} must be a bool or floating-point tensor, got dtype {mask.dtype}")
    try:
        broadcast = torch.broadcast_shapes(mask.shape, target_shape)
    except RuntimeError:
        broadcast = None
    if broadcast != torch.Size(target_shape):
        raise ValueError(
            f"{name} must be broadcastable to {tuple(target_shape)}, got shape {tuple(mask.shape)}"
        )
    return mask


# --------------------------------------------------------------------------- functional


def _causal_mask(L: int, S: int, device: torch.device | str | None = None) -> Tensor:
    """Bool (L, S) mask, True on and below the diagonal: query i may attend to keys 0..i.

    Aligned to the top-left corner when L != S, as ``torch.nn.functional``'s ``is_causal``.
    """
    return torch.ones(L, S, dtype=torch.bool, device=device).tril()


def _masked_softmax(scores: Tensor) -> Tensor:
    """softmax over the last dim, where a row of only -inf gives zeros instead of NaN.

    softmax(x) = exp(x - max(x)) / Σ exp(x - max(x)): subtracting the row maximum keeps
    exp() from overflowing and leaves the result unchanged (softmax is shift-invariant,
    which is also why the maximum may be detached from the graph).
    """
    row_max = scores.detach().amax(dim=-1, keepdim=True)  # (..., L, 1)
    # A fully masked row has max -inf; shifting by 0 instead keeps exp(-inf - 0) = 0.
    row_max = row_max.masked_fill(torch.isneginf(row_max), 0.0)
    exp = torch.exp(scores - row_max)  # (..., L, S), blocked entries are exactly 0
    denom = exp.sum(dim=-1, keepdim=True)  # (..., L, 1)
    # Divide a fully masked row by 1 (not 0): its weights stay 0 and its gradient finite.
    denom = torch.where(denom > 0, denom, torch.ones_like(denom))
    return exp / denom


def scaled_dot_product_attention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attn_mask: Tensor | None = None,
    *,
    is_causal: bool = False,
    dropout_p: float = 0.0,
    scale: float | None = None,
    check_finite: bool = True,
) -> tuple[Tensor, Tensor]:
    """Scaled dot-product attention (Vaswani et al., 2017, NeurIPS), step by step.

        weights = softmax(query keyᵀ · scale + mask)      (..., L, S)
        output  = dropout(weights) value                   (..., L, Ev)

    Args:
        query: (..., L, E) float tensor.
        key: (..., S, E), same batch dimensions ``...`` and dtype as ``query``.
        value: (..., S, Ev), same batch dimensions and dtype.
        attn_mask: optional mask broadcastable to (..., L, S), in the convention of
            ``torch.nn.functional.scaled_dot_product_attention``: bool True = may attend,
            or a float mask added to the scores.
        is_causal: if True, query i attends to keys 0..i only (top-left aligned when
            L != S, as torch). Cannot be combined with ``attn_mask`` (torch refuses too).
        dropout_p: probability of zeroing an attention weight; kept weights are scaled by
            1 / (1 - dropout_p). Applied whenever > 0 (modules pass 0 in eval mode).
        scale: factor on the scores; default 1 / sqrt(E).
        check_finite: refuse NaN or infinity in ``query``, ``key`` or ``value`` with a
            ``ValueError`` (a NaN anywhere would silently turn whole output rows into NaN).
            The check reads the tensors back to the host once, so
            :class:`MultiHeadAttention` turns it off inside a model's forward pass; call
            :func:`torch.autograd.detect_anomaly` to trace NaNs there.

    Returns:
        (output, weights): output (..., L, Ev) and the weights that multiplied ``value``,
        (..., L, S) — after dropout, as ``torch.nn.MultiheadAttention`` returns them, so
        ``output == weights @ value`` always holds. A query row with no key it may attend
        to gets weights 0 and output 0 (torch's kernels may give NaN there).
    """
    for name, tensor in (("query", query), ("key", key), ("value", value)):
        _check_float_tensor(name, tensor)
        if tensor.dim() < 2:
            raise ValueError(
                f"{name} must have shape (..., seq_len, dim) with at least 2 dimensions, "
                f"got shape {tuple(tensor.shape)}"
            )
    for name, tensor in (("key", key), ("value", value)):
        if tensor.dtype != query.dtype:
            raise TypeError(f"{name} must have the dtype of query ({query.dtype}), got {tensor.dtype}")
        if tensor.shape[:-2] != query.shape[:-2]:
            raise ValueError(
                f"{name} must have the batch dimensions of query {tuple(query.shape[:-2])}, "
                f"got shape {tuple(tensor.shape)}"
            )
    if key.size(-1) != query.size(-1):
        raise ValueError(
            f"key must have the last dimension E={query.size(-1)} of query, got shape {tuple(key.shape)}"
        )
    if value.size(-2) != key.size(-2):
        raise ValueError(
            f"value must have as many rows S={key.size(-2)} as key, got shape {tuple(value.shape)}"
        )
    if check_bool("check_finite", check_finite):
        for name, tensor in (("query", query), ("key", key), ("value", value)):
            if not bool(torch.isfinite(tensor).all()):
                raise ValueError(f"{name} must hold finite values, got NaN or infinity (e.g. from a diverged layer)")
    check_bool("is_causal", is_causal)
    dropout_p = check_probability("dropout_p", dropout_p)
    if scale is not None:
        scale = check_number("scale", scale)
    L, S = query.size(-2), key.size(-2)
    if attn_mask is not None:
        if is_causal:
            raise ValueError("attn_mask must be None when is_causal=True (give one of the two)")
        _check_mask("attn_mask", attn_mask, (*query.shape[:-2], L, S))

    if scale is None:
        scale = 1.0 / math.sqrt(query.size(-1))
    if is_causal:
        attn_mask = _causal_mask(L, S, query.device)
    scores = query @ key.transpose(-2, -1) * scale  # (..., L, E) @ (..., E, S) -> (..., L, S)
    if attn_mask is not None:
        if attn_mask.dtype == torch.bool:
            scores = scores.masked_fill(~attn_mask, float("-inf"))
        else:
            scores = scores + attn_mask.to(scores.dtype)
    weights = _masked_softmax(scores)  # (..., L, S)
    if dropout_p > 0.0:
        weights = F.dropout(weights, p=dropout_p, training=True)
    return weights @ value, weights  # (..., L, S) @ (..., S, Ev) -> (..., L, Ev)


# --------------------------------------------------------------------------- multi-head


def _merge_masks(
    attn_mask: Tensor | None,
    key_padding_mask: Tensor | None,
    is_causal: bool,
    L: int,
    S: int,
    dtype: torch.dtype,
    device: torch.device,
) -> Tensor | None:
    """One mask broadcastable to (B, H, L, S) in the sdpa convention, or None.

    Bool masks are combined with AND (a key must be allowed by every mask); as soon as one
    mask is float, all become additive (0 / -inf) and are summed.
    """
    masks: list[Tensor] = []
    if attn_mask is not None:
        # (L, S) and (B, H, L, S) broadcast as they are; (B, L, S) needs a head axis.
        masks.append(attn_mask.unsqueeze(1) if attn_mask.dim() == 3 else attn_mask)
    if is_causal:
        masks.append(_causal_mask(L, S, device))  # (L, S)
    if key_padding_mask is not None:
        kpm = key_padding_mask[:, None, None, :]  # (B, S) -> (B, 1, 1, S)
        masks.append(~kpm if kpm.dtype == torch.bool else kpm)  # True = padding -> True = may attend
    if not masks:
        return None
    if all(m.dtype == torch.bool for m in masks):
        merged = masks[0]
        for m in masks[1:]:
            merged = merged & m
        return merged
    additive = [
        torch.zeros(m.shape, dtype=dtype, device=device).masked_fill(~m, float("-inf"))
        if m.dtype == torch.bool
        else m.to(dtype)
        for m in masks
    ]
    merged = additive[0]
    for m in additive[1:]:
        merged = merged + m
    return merged


def _fused_attention(
    q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, is_causal: bool, dropout_p: float
) -> Tensor:
    """``F.scaled_dot_product_attention``, with fully masked query rows giving 0, not NaN.

    Some kernels return NaN for a row with no allowed key. Such rows are opened to every
    key before the call (so the kernel sees a well-defined softmax) and zeroed after,
    which also gives them a zero (finite) gradient.
    """
    if mask is None:
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, is_causal=is_causal)
    allowed = mask if mask.dtype == torch.bool else ~torch.isneginf(mask)
    has_key = allowed.any(dim=-1, keepdim=True)  # (B|1, H|1, L|1, 1)
    if mask.dtype == torch.bool:
        mask = mask | ~has_key
    else:
        mask = mask.masked_fill(~has_key, 0.0)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)
    return out.masked_fill(~has_key, 0.0)  # (B, H, L, hd)


class MultiHeadAttention(nn.Module):
    """Multi-head attention (Vaswani et al., 2017, NeurIPS), batch-first.

    Each head h attends in its own d_model / n_heads dimensional subspace:

        head_h = Attention(query W_q,h, key W_k,h, value W_v,h)
        output = concat(head_1, ..., head_H) W_out

    The projections are separate ``nn.Linear`` layers ``q_proj``, ``k_proj``, ``v_proj``
    and ``out_proj`` (torch packs the first three into one ``in_proj_weight``; see
    :meth:`from_torch`).

    Two paths compute the same thing, as in nanoGPT: with ``need_weights=True`` the
    from-scratch :func:`scaled_dot_product_attention` runs and the per-head weights are
    returned; with ``need_weights=False`` torch's fused
    ``torch.nn.functional.scaled_dot_product_attention`` runs and ``weights`` is None.

    Args:
        d_model: model width; must be divisible by ``n_heads``.
        n_heads: number of heads.
        dropout: dropout on the attention weights in training mode (as torch).
        bias: whether the four projections have a bias.
    """

    def __init__(self, d_model: int, n_heads: int, dropout: float = 0.0, bias: bool = True) -> None:
        super().__init__()
        d_model = check_int("d_model", d_model, low=1)
        n_heads = check_int("n_heads", n_heads, low=1)
        if d_model % n_heads != 0:
            raise ValueError(f"d_model must be divisible by n_heads={n_heads}, got {d_model!r}")
        self.d_model = d_model
        self.n_heads = n_heads
        self.head_dim = d_model // n_heads
        self.dropout = check_probability("dropout", dropout)
        self.q_proj = nn.Linear(d_model, d_model, bias=bias)
        self.k_proj = nn.Linear(d_model, d_model, bias=bias)
        self.v_proj = nn.Linear(d_model, d_model, bias=bias)
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        # As torch.nn.MultiheadAttention: Xavier-uniform input projections, zero biases.
        for proj in (self.q_proj, self.k_proj, self.v_proj):
            nn.init.xavier_uniform_(proj.weight)
        for proj in (self.q_proj, self.k_proj, self.v_proj, self.out_proj):
            if proj.bias is not None:
                nn.init.zeros_(proj.bias)

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, n_heads={self.n_heads}, dropout={self.dropout}"

    def forward(
        self,
        query: Tensor,
        key: Tensor | None = None,
        value: Tensor | None = None,
        *,
        key_padding_mask: Tensor | None = None,
        attn_mask: Tensor | None = None,
        is_causal: bool = False,
        need_weights: bool = True,
    ) -> tuple[Tensor, Tensor | None]:
        """Attend from ``query`` to ``key``/``value`` (self-attention when they are None).

        Args:
            query: (B, L, d_model).
            key: (B, S, d_model); defaults to ``query``.
            value: (B, S, d_model); defaults to ``key``.
            key_padding_mask: (B, S), torch convention: bool True = this key is padding
                (or a float mask added to the scores of that key).
            attn_mask: (L, S), (B, L, S) or (B, n_heads, L, S), in the convention of
                ``torch.nn.functional.scaled_dot_product_attention``: bool True = may
                attend (the opposite of ``torch.nn.MultiheadAttention``'s bool mask), or a
                float mask added to the scores.
            is_causal: query i attends to keys 0..i only; not together with ``attn_mask``.
            need_weights: return the per-head weights (from-scratch path) or None (fused).

        Returns:
            (output, weights): output (B, L, d_model); weights (B, n_heads, L, S) after
            dropout, or None. Query rows with no allowed key give 0 in both paths.
        """
        key = query if key is None else key
        value = key if value is None else value
        for name, tensor in (("query", query), ("key", key), ("value", value)):
            _check_sequence(name, tensor, "d_model", self.d_model, batched=True)
        B, L, _ = query.shape
        S = key.size(1)
        if key.size(0) != B:
            raise ValueError(f"key must have the batch size {B} of query, got shape {tuple(key.shape)}")
        if value.shape[:2] != key.shape[:2]:
            raise ValueError(
                f"value must have the (batch, seq_len) {tuple(key.shape[:2])} of key, "
                f"got shape {tuple(value.shape)}"
            )
        check_bool("is_causal", is_causal)
        check_bool("need_weights", need_weights)
        if key_padding_mask is not None:
            _check_mask("key_padding_mask", key_padding_mask, (B, S))
            if key_padding_mask.dim() != 2:
                raise ValueError(
                    f"key_padding_mask must have shape (B, S)=({B}, {S}), "
                    f"got shape {tuple(key_padding_mask.shape)}"
                )
        if attn_mask is not None:
            if is_causal:
                raise ValueError("attn_mask must be None when is_causal=True (give one of the two)")
            shapes = {2: (L, S), 3: (B, L, S), 4: (B, self.n_heads, L, S)}
            target = shapes.get(check_tensor("attn_mask", attn_mask).dim())
            if target is None:
                raise ValueError(
                    f"attn_mask must have shape (L, S), (B, L, S) or (B, n_heads, L, S), "
                    f"got shape {tuple(attn_mask.shape)}"
                )
            _check_mask("attn_mask", attn_mask, target)

        H, hd = self.n_heads, self.head_dim
        q = self.q_proj(query).view(B, L, H, hd).transpose(1, 2)  # (B, H, L, hd)
        k = self.k_proj(key).view(B, S, H, hd).transpose(1, 2)  # (B, H, S, hd)
        v = self.v_proj(value).view(B, S, H, hd).transpose(1, 2)  # (B, H, S, hd)
        # A causal mask alone is passed as is_causal (the kernels' fast case); with padding
        # it is merged into one explicit mask.
        only_causal = is_causal and key_padding_mask is None
        merge_causal = is_causal and not only_causal
        mask = _merge_masks(attn_mask, key_padding_mask, merge_causal, L, S, q.dtype, q.device)
        dropout_p = self.dropout if self.training else 0.0
        if need_weights:
            out, weights = scaled_dot_product_attention(
                q, k, v, mask, is_causal=only_causal, dropout_p=dropout_p, check_finite=False
            )
        else:
            out, weights = _fused_attention(q, k, v, mask, only_causal, dropout_p), None
        out = out.transpose(1, 2).reshape(B, L, self.d_model)  # (B, H, L, hd) -> (B, L, d_model)
        return self.out_proj(out), weights

    @classmethod
    def from_torch(cls, m: nn.MultiheadAttention) -> MultiHeadAttention:
        """A MultiHeadAttention with the weights of a ``torch.nn.MultiheadAttention``.

        torch stores the three input projections stacked in ``in_proj_weight`` (3·d, d);
        they are split into ``q_proj``, ``k_proj``, ``v_proj``. The copy is batch-first
        whatever ``m.batch_first`` says, and its bool ``attn_mask`` means "may attend"
        (invert a torch bool mask). Unsupported (ValueError): ``kdim``/``vdim`` different
        from ``embed_dim``, ``add_bias_kv``, ``add_zero_attn``.
        """
        if not isinstance(m, nn.MultiheadAttention):
            raise TypeError(f"m must be a torch.nn.MultiheadAttention, got {type(m).__name__}")
        if not m._qkv_same_embed_dim:
            raise ValueError(
                f"m must have kdim == vdim == embed_dim={m.embed_dim}, got kdim={m.kdim}, vdim={m.vdim}"
            )
        if m.bias_k is not None:
            raise ValueError("m must not use add_bias_kv=True (not supported)")
        if m.add_zero_attn:
            raise ValueError("m must not use add_zero_attn=True (not supported)")
        bias = m.in_proj_bias is not None
        new = cls(m.embed_dim, m.num_heads, dropout=m.dropout, bias=bias)
        new = new.to(device=m.in_proj_weight.device, dtype=m.in_proj_weight.dtype)
        with torch.no_grad():
            for proj, w in zip((new.q_proj, new.k_proj, new.v_proj), m.in_proj_weight.chunk(3)):
                proj.weight.copy_(w)
            new.out_proj.weight.copy_(m.out_proj.weight)
            if bias:
                for proj, b in zip((new.q_proj, new.k_proj, new.v_proj), m.in_proj_bias.chunk(3)):
                    proj.bias.copy_(b)
                new.out_proj.bias.copy_(m.out_proj.bias)
        return new.train(m.training)
