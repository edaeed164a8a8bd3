"""mtlkit.attention against torch.nn.functional.scaled_dot_product_attention and
torch.nn.MultiheadAttention, on seeded random inputs and edge cases."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mtlkit.attention import MultiHeadAttention, scaled_dot_product_attention

ATOL = 1e-5  # float32 agreement required by the issue
BATCH_SHAPES = [(), (3,), (2, 3)]
MASK_KINDS = ["none", "bool", "float", "float-inf", "causal", "bool-broadcast"]


def _random_mask(kind: str, batch: tuple[int, ...], L: int, S: int, g: torch.Generator) -> tuple[torch.Tensor | None, bool]:
    """(attn_mask, is_causal) of the given kind; bool masks may contain fully masked rows."""
    if kind == "none":
        return None, False
    if kind == "causal":
        return None, True
    if kind == "bool":
        return torch.rand(*batch, L, S, generator=g) > 0.4, False
    if kind == "bool-broadcast":
        return torch.rand(L, S, generator=g) > 0.3, False  # (L, S) broadcast over the batch
    if kind == "float":
        return torch.randn(*batch, L, S, generator=g), False
    # float with -inf entries, some rows entirely -inf
    mask = torch.randn(*batch, L, S, generator=g)
    return mask.masked_fill(torch.rand(*batch, L, S, generator=g) > 0.5, float("-inf")), False


def _allowed(mask: torch.Tensor | None, is_causal: bool, shape: tuple[int, ...]) -> torch.Tensor:
    """Bool (..., L, S): which (query, key) pairs the mask allows."""
    L, S = shape[-2:]
    if is_causal:
        allowed = torch.ones(L, S, dtype=torch.bool).tril()
    elif mask is None:
        allowed = torch.ones(L, S, dtype=torch.bool)
    elif mask.dtype == torch.bool:
        allowed = mask
    else:
        allowed = ~torch.isneginf(mask)
    return allowed.expand(shape)


def _reference_weights(q, k, mask, is_causal, scale):
    """softmax(Q Kᵀ · scale + additive mask) with torch.softmax (NaN on fully masked rows)."""
    scores = q @ k.transpose(-2, -1) * (1 / math.sqrt(q.size(-1)) if scale is None else scale)
    allowed = _allowed(mask, is_causal, scores.shape)
    scores = scores.masked_fill(~allowed, float("-inf"))
    if mask is not None and mask.is_floating_point():
        scores = scores + mask
    return torch.softmax(scores, dim=-1)


# --------------------------------------------------------------------------- functional


@pytest.mark.parametrize("kind", MASK_KINDS)
@pytest.mark.parametrize("batch", BATCH_SHAPES, ids=str)
def test_sdpa_matches_torch(kind, batch):
    g = torch.Generator().manual_seed(10 * MASK_KINDS.index(kind) + BATCH_SHAPES.index(batch))
    worst = 0.0
    for _ in range(15):
        L, S, E, Ev = (int(torch.randint(1, 8, (1,), generator=g)) for _ in range(4))
        q = torch.randn(*batch, L, E, generator=g)
        k = torch.randn(*batch, S, E, generator=g)
        v = torch.randn(*batch, S, Ev, generator=g)
        mask, causal = _random_mask(kind, batch, L, S, g)
        scale = None if torch.rand(1, generator=g) < 0.5 else float(torch.rand(1, generator=g)) + 0.1
        out, weights = scaled_dot_product_attention(q, k, v, mask, is_causal=causal, scale=scale)
        assert out.shape == (*batch, L, Ev) and weights.shape == (*batch, L, S)
        live = _allowed(mask, causal, (*batch, L, S)).any(-1)  # (..., L) rows with a key
        ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal, scale=scale)
        torch.testing.assert_close(out[live], ref[live], atol=ATOL, rtol=0)
        ref_w = _reference_weights(q, k, mask, causal, scale)
        torch.testing.assert_close(weights[live], ref_w[live], atol=ATOL, rtol=0)
        # rows without any allowed key: exactly zero, never NaN
        assert torch.all(out[~live] == 0) and torch.all(weights[~live] == 0)
        worst = max(worst, float((out[live] - ref[live]).abs().max()) if live.any() else 0.0)
    assert worst < ATOL


def test_sdpa_causal_top_left_when_L_differs_from_S():
    q, k, v = torch.randn(4, 3), torch.randn(6, 3), torch.randn(6, 2)
    out, weights = scaled_dot_product_attention(q, k, v, is_causal=True)
    assert torch.all(weights.triu(1) == 0)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, is_causal=True), atol=ATOL, rtol=0)


def test_sdpa_softmax_is_stable_for_huge_scores():
    q = torch.full((2, 4), 1e4)
    k = torch.full((3, 4), 1e4)
    v = torch.randn(3, 5)
    out, weights = scaled_dot_product_attention(q, k, v)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(weights, torch.full((2, 3), 1 / 3))


@pytest.mark.parametrize(
    "mask",
    [
        torch.tensor([[True, False, True], [False, False, False]]),
        torch.tensor([[0.0, -1.0, 2.0], [float("-inf")] * 3]),
    ],
    ids=["bool", "float-inf"],
)
def test_sdpa_fully_masked_row_gives_zero_and_finite_gradients(mask):
    q = torch.randn(2, 4, requires_grad=True)
    k = torch.randn(3, 4, requires_grad=True)
    v = torch.randn(3, 5, requires_grad=True)
    out, weights = scaled_dot_product_attention(q, k, v, mask)
    assert torch.all(out[1] == 0) and torch.all(weights[1] == 0)
    assert torch.isfinite(out).all() and torch.isfinite(weights).all()
    (out.square().sum() + weights.sum()).backward()
    for t in (q, k, v):
        assert torch.isfinite(t.grad).all()
    assert torch.all(q.grad[1] == 0)


@pytest.mark.parametrize("kind", ["none", "bool", "float-inf", "causal"])
def test_sdpa_gradcheck_float64(kind):
    g = torch.Generator().manual_seed(1)
    batch, L, S = (2,), 3, 4
    q = torch.randn(*batch, L, 5, dtype=torch.float64, generator=g, requires_grad=True)
    k = torch.randn(*batch, S, 5, dtype=torch.float64, generator=g, requires_grad=True)
    v = torch.randn(*batch, S, 2, dtype=torch.float64, generator=g, requires_grad=True)
    mask, causal = _random_mask(kind, batch, L, S, g)
    if mask is not None and mask.is_floating_point():
        mask = mask.double()
    if mask is not None:  # make sure one row is fully masked
        mask = mask.clone()
        mask[0, 0] = False if mask.dtype == torch.bool else float("-inf")

    def f(q, k, v):
        return scaled_dot_product_attention(q, k, v, mask, is_causal=causal)

    assert torch.autograd.gradcheck(f, (q, k, v))


def test_sdpa_dropout_matches_torch_with_the_same_seed():
    q, k, v = torch.randn(2, 3, 6, 4), torch.randn(2, 3, 7, 4), torch.randn(2, 3, 7, 5)
    mask = torch.rand(6, 7) > 0.3
    torch.manual_seed(123)
    out, _ = scaled_dot_product_attention(q, k, v, mask, dropout_p=0.3)
    torch.manual_seed(123)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=0.3)
    torch.testing.assert_close(out, ref, atol=ATOL, rtol=0)


def test_sdpa_dropout_zeroes_and_rescales_weights():
    p = 0.4
    q, k, v = torch.randn(8, 16, 4), torch.randn(8, 32, 4), torch.randn(8, 32, 3)
    _, clean = scaled_dot_product_attention(q, k, v)
    torch.manual_seed(0)
    out, dropped = scaled_dot_product_attention(q, k, v, dropout_p=p)
    kept = dropped != 0
    # kept weights are scaled by 1/(1-p) (torch's inverted dropout), the others zeroed
    torch.testing.assert_close(dropped[kept], clean[kept] / (1 - p))
    assert abs((~kept).float().mean().item() - p) < 0.03  # 4096 weights: ~0.008 std
    torch.testing.assert_close(out, dropped @ v)


# One bad argument at a time: (kwargs overriding the good ones, error type, name in message).
BAD_SDPA = [
    ({"query": [[1.0]]}, TypeError, "query"),
    ({"query": torch.ones(3, 4, dtype=torch.int64)}, TypeError, "query"),
    ({"key": torch.randn(4)}, ValueError, "key"),
    ({"key": torch.randn(2, 5, 3)}, ValueError, "key"),  # E differs
    ({"key": torch.randn(3, 5, 4)}, ValueError, "key"),  # batch differs
    ({"key": torch.randn(2, 5, 4, dtype=torch.float64)}, TypeError, "key"),
    ({"value": torch.randn(2, 6, 2)}, ValueError, "value"),  # S differs
    ({"attn_mask": torch.ones(3, 4, dtype=torch.int64)}, TypeError, "attn_mask"),
    ({"attn_mask": torch.ones(3, 6, dtype=torch.bool)}, ValueError, "attn_mask"),
    ({"attn_mask": torch.ones(4, 2, 3, 5, dtype=torch.bool)}, ValueError, "attn_mask"),
    ({"attn_mask": torch.ones(3, 5, dtype=torch.bool), "is_causal": True}, ValueError, "attn_mask"),
    ({"dropout_p": 1.0}, ValueError, "dropout_p"),
    ({"dropout_p": -0.1}, ValueError, "dropout_p"),
    ({"scale": float("nan")}, ValueError, "scale"),
    ({"is_causal": 1}, TypeError, "is_causal"),
]


@pytest.mark.parametrize("bad,error,name", BAD_SDPA, ids=[f"{b[2]}-{i}" for i, b in enumerate(BAD_SDPA)])
def test_sdpa_bad_inputs_name_the_argument(bad, error, name):
    args = {"query": torch.randn(2, 3, 4), "key": torch.randn(2, 5, 4), "value": torch.randn(2, 5, 2)}
    args.update(bad)
    with pytest.raises(error, match=name):
        scaled_dot_product_attention(**args)


# --------------------------------------------------------------------------- multi-head


def _torch_mha(d_model: int, n_heads: int, bias: bool = True, seed: int = 0) -> nn.MultiheadAttention:
    torch.manual_seed(seed)
    m = nn.MultiheadAttention(d_model, n_heads, bias=bias, batch_first=True).eval()
    with torch.no_grad():  # torch zero-initialises the biases; random ones test their copy
        for p in m.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return m


def _mha_case(g: torch.Generator, kind: str):
    """Random inputs and masks in both conventions: ours and torch.nn.MultiheadAttention's."""
    H = int(torch.randint(1, 4, (1,), generator=g))
    d = H * int(torch.randint(1, 5, (1,), generator=g))
    B, L, S = (int(torch.randint(1, 6, (1,), generator=g)) for _ in range(3))
    self_attention = kind in ("causal", "causal+padding")
    if self_attention:
        S = L
    query = torch.randn(B, L, d, generator=g)
    key = query if self_attention else torch.randn(B, S, d, generator=g)
    value = query if self_attention else torch.randn(B, S, d, generator=g)
    ours: dict = {}
    theirs: dict = {}
    if kind in ("padding", "causal+padding", "padding+float"):
        kpm = torch.rand(B, S, generator=g) > 0.6
        kpm[:, 0] = False  # torch gives NaN on fully padded rows; compare those separately
        ours["key_padding_mask"] = theirs["key_padding_mask"] = kpm
    if kind == "bool2d":
        allowed = torch.rand(L, S, generator=g) > 0.3
        allowed[:, 0] = True
        ours["attn_mask"], theirs["attn_mask"] = allowed, ~allowed  # torch: True = blocked
    if kind == "bool3d":
        allowed = torch.rand(B, L, S, generator=g) > 0.3
        allowed[..., 0] = True
        ours["attn_mask"] = allowed
        theirs["attn_mask"] = (~allowed).repeat_interleave(H, dim=0)  # (B*H, L, S)
    if kind in ("float4d", "padding+float"):
        mask = torch.randn(B, H, L, S, generator=g)
        ours["attn_mask"], theirs["attn_mask"] = mask, mask.reshape(B * H, L, S)
        if "key_padding_mask" in theirs:  # torch wants both masks of one type
            kpm = theirs["key_padding_mask"]
            theirs["key_padding_mask"] = torch.zeros(kpm.shape).masked_fill(kpm, float("-inf"))
    if kind in ("causal", "causal+padding"):
        ours["is_causal"] = True
        theirs["attn_mask"] = torch.ones(L, L, dtype=torch.bool).triu(1)
        theirs["is_causal"] = True
    return H, d, (query, key, value), ours, theirs


MHA_KINDS = ["none", "padding", "bool2d", "bool3d", "float4d", "padding+float", "causal", "causal+padding"]


@pytest.mark.parametrize("kind", MHA_KINDS)
def test_mha_matches_torch_multihead_attention(kind):
    g = torch.Generator().manual_seed(MHA_KINDS.index(kind))
    for trial in range(8):
        H, d, (query, key, value), ours, theirs = _mha_case(g, kind)
        ref_module = _torch_mha(d, H, bias=trial % 4 != 3, seed=trial)
        module = MultiHeadAttention.from_torch(ref_module)
        ref, ref_w = ref_module(query, key, value, need_weights=True, average_attn_weights=False, **theirs)
        out, weights = module(query, key, value, **ours)
        fused, none = module(query, key, value, need_weights=False, **ours)
        assert none is None and weights.shape == (query.size(0), H, query.size(1), key.size(1))
        torch.testing.assert_close(out, ref, atol=ATOL, rtol=0)
        torch.testing.assert_close(weights, ref_w, atol=ATOL, rtol=0)
        torch.testing.assert_close(fused, ref, atol=ATOL, rtol=0)


def test_mha_both_paths_agree_on_values_and_gradients_with_fully_masked_rows():
    torch.manual_seed(0)
    module = MultiHeadAttention(8, 2)
    x = torch.randn(3, 5, 8)
    kpm = torch.zeros(3, 5, dtype=torch.bool)
    kpm[0] = True  # an empty history: every key of sample 0 is padding
    allowed = torch.rand(5, 5) > 0.3
    allowed[2] = False  # query 2 may attend to nothing
    float_mask = torch.randn(3, 2, 5, 5).masked_fill(~allowed, float("-inf"))
    cases = [
        {"key_padding_mask": kpm},
        {"key_padding_mask": kpm, "is_causal": True},
        {"attn_mask": allowed},
        {"attn_mask": float_mask},
        {"attn_mask": float_mask, "key_padding_mask": kpm},
        {"attn_mask": allowed.expand(3, 5, 5), "key_padding_mask": torch.randn(3, 5)},  # float kpm: added
    ]
    for masks in cases:
        results = []
        for need_weights in (True, False):
            xi = x.clone().requires_grad_(True)
            module.zero_grad()
            out, _ = module(xi, need_weights=need_weights, **masks)
            out.square().sum().backward()
            grads = [xi.grad] + [p.grad for p in module.parameters()]
            assert torch.isfinite(out).all() and all(torch.isfinite(gr).all() for gr in grads)
            results.append((out.detach(), grads))
        (out_a, grads_a), (out_b, grads_b) = results
        torch.testing.assert_close(out_a, out_b, atol=ATOL, rtol=0)
        for a, b in zip(grads_a, grads_b):
            torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
        if "key_padding_mask" in masks and masks["key_padding_mask"].dtype == torch.bool:
            # sample 0 sees no key: its attention output is 0, so out = out_proj bias
            torch.testing.assert_close(out_a[0], module.out_proj.bias.detach().expand(5, 8))


def test_mha_gradcheck_float64():
    torch.manual_seed(0)
    module = MultiHeadAttention(6, 3).double()
    q = torch.randn(2, 3, 6, dtype=torch.float64, requires_grad=True)
    kv = torch.randn(2, 4, 6, dtype=torch.float64, requires_grad=True)
    kpm = torch.tensor([[False, False, True, True], [True, True, True, True]])
    for need_weights in (True, False):

        def f(q, kv, need_weights=need_weights):
            return module(q, kv, key_padding_mask=kpm, need_weights=need_weights)[0]

        assert torch.autograd.gradcheck(f, (q, kv))


def test_mha_dropout_only_in_training_mode():
    torch.manual_seed(0)
    module = MultiHeadAttention(8, 2, dropout=0.5)
    x = torch.randn(2, 6, 8)
    module.train()
    a, wa = module(x)
    b, _ = module(x)
    assert not torch.allclose(a, b)
    kept = wa != 0
    module.eval()
    c, wc = module(x)
    d, _ = module(x, need_weights=False)
    torch.testing.assert_close(c, d, atol=ATOL, rtol=0)
    torch.testing.assert_close(wa[kept], wc[kept] / 0.5)  # inverted dropout, as torch


def test_mha_from_torch_refuses_what_it_cannot_copy():
    with pytest.raises(ValueError, match="kdim"):
        MultiHeadAttention.from_torch(nn.MultiheadAttention(8, 2, kdim=4, vdim=4, batch_first=True))
    with pytest.raises(ValueError, match="add_bias_kv"):
        MultiHeadAttention.from_torch(nn.MultiheadAttention(8, 2, add_bias_kv=True))
    with pytest.raises(ValueError, match="add_zero_attn"):
        MultiHeadAttention.from_torch(nn.MultiheadAttention(8, 2, add_zero_attn=True))
    with pytest.raises(TypeError, match="m must"):
        MultiHeadAttention.from_torch(nn.Linear(2, 2))


def test_mha_from_torch_keeps_dtype_and_dropout():
    m = nn.MultiheadAttention(4, 2, dropout=0.25, batch_first=True).double()
    copy = MultiHeadAttention.from_torch(m)
    assert copy.dropout == 0.25 and copy.q_proj.weight.dtype == torch.float64


@pytest.mark.parametrize(
    "args,error,name",
    [
        ((0, 1), ValueError, "d_model"),
        ((8, 3), ValueError, "d_model"),
        ((8, 2.0), TypeError, "n_heads"),
        ((8, 2, 1.5), ValueError, "dropout"),
    ],
)
def test_mha_constructor_bad_inputs(args, error, name):
    with pytest.raises(error, match=name):
        MultiHeadAttention(*args)


BAD_MHA = [
    ({"query": torch.randn(2, 3, 6)}, ValueError, "query"),
    ({"query": torch.randn(3, 8)}, ValueError, "query"),
    ({"key": torch.randn(3, 4, 8)}, ValueError, "key"),
    ({"value": torch.randn(2, 5, 8)}, ValueError, "value"),
    ({"key_padding_mask": torch.zeros(2, 5, dtype=torch.bool)}, ValueError, "key_padding_mask"),
    ({"key_padding_mask": torch.zeros(2, 4, dtype=torch.int64)}, TypeError, "key_padding_mask"),
    ({"attn_mask": torch.ones(3, 3, dtype=torch.bool)}, ValueError, "attn_mask"),
    ({"attn_mask": torch.ones(2, 3, 3, 4, dtype=torch.bool)}, ValueError, "attn_mask"),
    ({"attn_mask": torch.ones(3, 4, dtype=torch.bool), "is_causal": True}, ValueError, "attn_mask"),
    ({"need_weights": "yes"}, TypeError, "need_weights"),
]


@pytest.mark.parametrize("bad,error,name", BAD_MHA, ids=[f"{b[2]}-{i}" for i, b in enumerate(BAD_MHA)])
def test_mha_forward_bad_inputs_name_the_argument(bad, error, name):
    module = MultiHeadAttention(8, 2)
    args = {"query": torch.randn(2, 3, 8), "key": torch.randn(2, 4, 8), "value": torch.randn(2, 4, 8)}
    args.update(bad)
    with pytest.raises(error, match=name):
        module(**args)


@pytest.mark.parametrize("where", ["query", "key", "value"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_inputs_are_refused_not_propagated(where, bad):
    q, k, v = torch.randn(2, 3, 4), torch.randn(2, 5, 4), torch.randn(2, 5, 4)
    tensors = {"query": q, "key": k, "value": v}
    tensors[where][1, 2, 0] = bad
    with pytest.raises(ValueError, match=f"{where} must hold finite values"):
        scaled_dot_product_attention(tensors["query"], tensors["key"], tensors["value"])
    out, _ = scaled_dot_product_attention(tensors["query"], tensors["key"], tensors["value"], check_finite=False)
    assert not torch.isfinite(out).all()  # what the check prevents: the NaN spreads silently
