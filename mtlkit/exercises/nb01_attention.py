"""Exercises of notebook 01 (attention from scratch): the scale, causal masking, the masks of a
padded history, and the memory the attention weights take."""

from __future__ import annotations

import math
from typing import Any

import torch

from mtlkit.attention import scaled_dot_product_attention
from mtlkit.exercises.exercise import (
    Mistake,
    NotebookExercises,
    as_tensor,
    call,
    deviation,
    reject_slips,
    require_function,
    require_number,
)

EXERCISES = NotebookExercises("01_attention")


# --------------------------------------------------------------------------- 01.1
@EXERCISES.add("01.1", "derive", "unit_variance_scale(d, sigma): the score scale when q, k have entries of variance σ²")
def judge_unit_variance_scale(answer: Any) -> str:
    """Var(q·k) = d σ⁴ for q, k with independent N(0, σ²) entries, so the scale is 1 / (σ² √d)."""
    unit_variance_scale = require_function(answer, "unit_variance_scale(d, sigma)")
    cases = [(64, 1.0), (16, 2.0), (256, 0.5), (3, 3.0)]
    got = [require_number(call(unit_variance_scale, d, sigma), f"unit_variance_scale({d}, {sigma})")
           for d, sigma in cases]
    slips = {
        "1 / sqrt(d)": [1 / math.sqrt(d) for d, _ in cases],
        "1 / (sigma sqrt(d))": [1 / (s * math.sqrt(d)) for d, s in cases],
        "1 / (sigma^2 d)": [1 / (s**2 * d) for d, s in cases],
        "1 / (d sigma^4)": [1 / (d * s**4) for d, s in cases],
    }
    hints = {
        "1 / sqrt(d)": "your scale ignores σ: each product q_i k_i has variance E[q_i²] E[k_i²] = σ⁴, so "
                       "Var(q·k) = d σ⁴, not d",
        "1 / (sigma sqrt(d))": "you divide by σ once: Var(q·k) = d σ⁴, whose square root is σ² √d",
        "1 / (sigma^2 d)": "you divide by σ² d: a scale multiplies the scores' standard deviation, √(d σ⁴) = σ² √d, "
                           "so d needs its square root",
        "1 / (d sigma^4)": "1 / (d σ⁴) divides by the variance itself; the scores' standard deviation is √(d σ⁴)",
    }
    reject_slips(got, slips, hints)
    for (d, sigma), value in zip(cases, got):
        expected = 1 / (sigma**2 * math.sqrt(d))
        if abs(value - expected) > 1e-9 * expected:
            raise Mistake(f"for d = {d}, σ = {sigma} your scale is {value:.6g}; the scores q·k then have variance "
                          f"{value**2 * d * sigma**4:.4g}, not 1")
    generator = torch.Generator().manual_seed(0)
    d, sigma = 64, 2.0
    q, k = sigma * torch.randn(2, 20_000, d, generator=generator, dtype=torch.float64)
    measured = ((q * k).sum(-1) * require_number(call(unit_variance_scale, d, sigma))).var().item()
    return (f"1 / (σ² √d): with d = {d} and σ = {sigma}, 20,000 scaled scores have variance {measured:.3f}. "
            "LayerNorm keeps σ near 1 in a Transformer, which is why 1/√d is enough there.")


# --------------------------------------------------------------------------- 01.2
def _attention_inputs() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    return tuple(torch.randn(2, 3, 5, 8, generator=generator) for _ in range(3))  # (B, H, L, d) each


@EXERCISES.add("01.2", "derive-and-verify",
               "causal_attention(query, key, value): masked attention, compared with mtlkit")
def judge_causal_attention(answer: Any) -> str:
    """softmax(Q Kᵀ / √d + M) V with M = −inf above the diagonal, against
    ``mtlkit.attention.scaled_dot_product_attention(..., is_causal=True)``."""
    causal_attention = require_function(answer, "causal_attention(query, key, value)")
    query, key, value = _attention_inputs()
    returned = call(causal_attention, query.clone(), key.clone(), value.clone())
    if not isinstance(returned, tuple) or len(returned) != 2:
        raise Mistake(f"causal_attention must return the pair (output, weights), got {type(returned).__name__}")
    output = as_tensor(returned[0], "output", (2, 3, 5, 8))
    weights = as_tensor(returned[1], "weights", (2, 3, 5, 5))
    expected_output, expected_weights = (t.double() for t in scaled_dot_product_attention(query, key, value,
                                                                                          is_causal=True))
    if deviation(weights, expected_weights) > 1e-5:
        future = weights.triu(1).abs().max().item()
        past = weights.tril(-1).abs().max().item()
        row_sums = weights.sum(-1)
        if future > 1e-6 and past < 1e-6:
            raise Mistake("your mask is transposed: query i attends to keys i, …, L−1 (the future) and never to the "
                          "past; the causal mask is True on and below the diagonal, torch.ones(L, L).tril()")
        if future > 1e-6:
            raise Mistake(f"query 0 puts weight {weights[0, 0, 0, 1:].sum().item():.3f} on later keys: set the "
                          "scores above the diagonal to -inf before the softmax, so the future gets weight 0")
        if (row_sums - 1).abs().max().item() > 1e-5:
            column_sums = weights.sum(-2)
            if (column_sums - 1).abs().max().item() < 1e-5:
                raise Mistake("your weights' columns sum to 1, not the rows: take the softmax over the keys, dim=-1")
            raise Mistake(f"your weight rows sum to {row_sums.min().item():.3f} … {row_sums.max().item():.3f}, "
                          "not 1: mask the scores before the softmax (zeroing weights after it leaves rows that no "
                          "longer sum to 1)")
        for name, scale in (("without the 1/√d scale", 1.0), ("with 1/d instead of 1/√d", 1 / 8)):
            _, unscaled = scaled_dot_product_attention(query, key, value, is_causal=True, scale=scale)
            if deviation(weights, unscaled.double()) < 1e-5:
                raise Mistake(f"your weights are those of causal attention {name}: divide the scores by √d = √8")
        raise Mistake(f"your weights differ from mtlkit's causal attention by up to {deviation(weights, expected_weights):.3g}")
    if deviation(output, weights @ value.double()) > 1e-4:
        raise Mistake("your weights are right but the output is not weights @ value")
    return (f"matches mtlkit.attention.scaled_dot_product_attention(is_causal=True) on a (2, 3, 5, 8) batch "
            f"(max deviation {max(deviation(output, expected_output), deviation(weights, expected_weights)):.1e}), "
            "and every weight above the diagonal is exactly 0.")


# --------------------------------------------------------------------------- 01.3
def _allowed(lengths: torch.Tensor, seq_len: int, *, causal: bool = True, left: bool = True,
             on_keys: bool = True) -> torch.Tensor:
    """The reference mask (B, L, L), True = may attend, and the variants a typical slip builds."""
    positions = torch.arange(seq_len)
    if left:  # left padding: the last `length` positions are real
        padding = positions[None, :] < (seq_len - lengths)[:, None]  # (B, L), True = padding
    else:
        padding = positions[None, :] >= lengths[:, None]
    not_padding = ~padding[:, None, :] if on_keys else ~padding[:, :, None]  # block keys (columns) or queries (rows)
    allowed = not_padding.expand(len(lengths), seq_len, seq_len)
    if causal:
        allowed = allowed & torch.ones(seq_len, seq_len, dtype=torch.bool).tril()
    return allowed


@EXERCISES.add("01.3", "derive-and-verify",
               "attention_mask(lengths, seq_len): causal AND not-padding for left-padded histories")
def judge_attention_mask(answer: Any) -> str:
    """Causal AND key-not-padding for left-padded histories, in mtlkit's convention (True = may attend)."""
    attention_mask = require_function(answer, "attention_mask(lengths, seq_len)")
    lengths, seq_len = torch.tensor([6, 4, 1]), 6
    returned = call(attention_mask, lengths.clone(), seq_len)
    if not isinstance(returned, torch.Tensor):
        raise Mistake(f"attention_mask must return a bool tensor, got {type(returned).__name__}")
    if returned.dtype != torch.bool:
        raise Mistake(f"your mask has dtype {returned.dtype}: return a bool mask, True = may attend")
    if tuple(returned.shape) != (3, seq_len, seq_len):
        raise Mistake(f"your mask has shape {tuple(returned.shape)}; expected (3, 6, 6): one (query, key) mask per "
                      "history")
    expected = _allowed(lengths, seq_len)
    if torch.equal(returned, expected):
        empty_rows = int((~expected.any(-1)).sum())
        return (f"causal AND not padding, True = may attend. {empty_rows} query rows (the padding positions) have no "
                "key at all; mtlkit gives them weight 0 and output 0 instead of NaN.")
    slips = {
        "inverted": ~expected,
        "right padding": _allowed(lengths, seq_len, left=False),
        "no padding": torch.ones(seq_len, seq_len, dtype=torch.bool).tril().expand_as(expected),
        "not causal": _allowed(lengths, seq_len, causal=False),
        "queries": _allowed(lengths, seq_len, on_keys=False),
    }
    hints = {
        "inverted": "your mask is inverted: in mtlkit (and F.scaled_dot_product_attention) True means *may attend*; "
                    "it is key_padding_mask whose True means padding",
        "right padding": "you padded on the right: mtlkit histories are left-padded, the most recent item in the last "
                         "column, so the first seq_len − length positions are padding",
        "no padding": "your mask lets queries attend to the padding keys: AND the causal mask with 'key is not "
                      "padding'",
        "not causal": "your mask lets a position see later items: AND it with the causal mask (tril)",
        "queries": "you blocked the padding *queries* (rows); block the padding *keys* (columns): no query may read a "
                   "padded slot",
    }
    reject_slips(returned, slips, hints, tolerance=0.0)
    b, i, j = (int(x) for x in torch.nonzero(returned != expected)[0])
    raise Mistake(f"your mask differs in {int((returned != expected).sum())} entries, e.g. history {b} (length "
                  f"{int(lengths[b])}), query {i}, key {j}: got {bool(returned[b, i, j])}, expected "
                  f"{bool(expected[b, i, j])}")


# --------------------------------------------------------------------------- 01.4
@EXERCISES.add("01.4", "derive",
               "attention_weights_bytes: memory of one layer's weights at L = 2048, 8 heads, batch 256")
def judge_attention_weights_bytes(answer: Any) -> str:
    """B · H · L² float32 weights of one layer: 256 · 8 · 2048² · 4 bytes = 32 GiB."""
    got = require_number(answer, "attention_weights_bytes")
    batch, heads, length, itemsize = 256, 8, 2048, 4
    expected = batch * heads * length**2 * itemsize
    if abs(got - expected) <= 0.01 * expected:
        return (f"{expected:,} bytes = {expected / 2**30:.0f} GiB for a single layer's weights: more than most GPUs "
                "hold, which is why the fused kernel never stores them.")
    hints = {
        1 / itemsize: "you counted the weights, not bytes: each float32 takes 4 bytes",
        1 / heads: "that is one head's weights; each of the 8 heads has its own L × L matrix",
        1 / batch: "that is one sequence's weights; the batch holds 256",
        1 / length: "one L × L matrix per head and sequence has L² = 2048² entries, not L",
        2**-30: "you answered in GiB; give the number of bytes",
        1e-9: "you answered in GB; give the number of bytes",
        2: "you counted 8 bytes per weight; float32 takes 4",
    }
    for ratio, hint in hints.items():
        if abs(got / expected - ratio) <= 0.01 * ratio:
            raise Mistake(hint)
    raise Mistake(f"{got:.4g} bytes is {got / expected:.3g} times the size of batch × heads × L × L float32 weights")
