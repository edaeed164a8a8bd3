"""Exercises of notebook 02 (positional encodings): the sinusoidal table, the distance between
two encodings, RoPE's rotation, and whether causal self-attention still ignores order."""

from __future__ import annotations

import math
from typing import Any

import torch

from mtlkit.attention import MultiHeadAttention
from mtlkit.exercises.exercise import (
    Mistake,
    NotebookExercises,
    as_tensor,
    call,
    deviation,
    reject_slips,
    require_function,
    require_number,
    require_prediction,
    seeded,
)
from mtlkit.positional import relative_rotation, sinusoidal_positional_encoding

EXERCISES = NotebookExercises("02_positional_encoding")


# --------------------------------------------------------------------------- 02.1
def _table_variant(max_len: int, d_model: int, *, exponent: str = "2i", swap: bool = False) -> torch.Tensor:
    """A sinusoidal table as a typical slip builds it (the judge's catalogue of mistakes)."""
    position = torch.arange(max_len, dtype=torch.float64)[:, None]  # (max_len, 1)
    column = torch.arange(d_model, dtype=torch.float64)  # (d,)
    pair = torch.div(column, 2, rounding_mode="floor")  # i of column 2i and 2i + 1
    power = {"2i": 2 * pair, "i": pair, "column": column, "-2i": -2 * pair}[exponent]
    angle = position / 10000 ** (power / d_model)  # (max_len, d)
    even = (column % 2 == 0)
    sine, cosine = torch.sin(angle), torch.cos(angle)
    return torch.where(even ^ swap, sine, cosine)


@EXERCISES.add("02.1", "derive-and-verify",
               "sinusoidal_table(max_len, d_model): the sinusoidal encoding, against mtlkit")
def judge_sinusoidal_table(answer: Any) -> str:
    """PE[p, 2i] = sin(p ω_i), PE[p, 2i+1] = cos(p ω_i), ω_i = 10000^(−2i/d), against
    ``mtlkit.positional.sinusoidal_positional_encoding``."""
    sinusoidal_table = require_function(answer, "sinusoidal_table(max_len, d_model)")
    for max_len, d_model in ((50, 16), (7, 6)):
        got = as_tensor(call(sinusoidal_table, max_len, d_model), f"sinusoidal_table({max_len}, {d_model})",
                        (max_len, d_model))
        expected = sinusoidal_positional_encoding(max_len, d_model, dtype=torch.float64)
        if deviation(got, expected) <= 1e-5:
            continue
        slips = {
            "swap": _table_variant(max_len, d_model, swap=True),
            "i": _table_variant(max_len, d_model, exponent="i"),
            "column": _table_variant(max_len, d_model, exponent="column"),
            "-2i": _table_variant(max_len, d_model, exponent="-2i"),
        }
        hints = {
            "swap": "your even columns hold cosines and the odd ones sines: PE[p, 2i] = sin(p ω_i), "
                    "PE[p, 2i+1] = cos(p ω_i)",
            "i": "your frequencies fall too slowly: ω_i = 10000^(−2i/d), the exponent is the pair's first column 2i",
            "column": "your cosine columns use the exponent (2i+1)/d: both columns of a pair share one frequency, "
                      "ω_i = 10000^(−2i/d)",
            "-2i": "your frequencies grow with i: ω_i = 1 / 10000^(2i/d) falls from 1 to almost 1/10000",
        }
        reject_slips(got, slips, hints, tolerance=1e-5)
        p, j = (int(x) for x in torch.nonzero((got - expected).abs() > 1e-5)[0])
        raise Mistake(f"for max_len = {max_len}, d_model = {d_model} your entry [{p}, {j}] is {got[p, j].item():.6g}, "
                      f"the formula gives {expected[p, j].item():.6g}")
    return ("equals mtlkit's table; every row has norm √(d/2), since each (sin, cos) pair is a point on the unit "
            "circle.")


# --------------------------------------------------------------------------- 02.2
@EXERCISES.add("02.2", "derive", "squared_distance(offset, d_model): ‖PE(p) − PE(p + k)‖² in closed form")
def judge_squared_distance(answer: Any) -> str:
    """‖PE(p) − PE(p+k)‖² = ‖PE(p)‖² + ‖PE(p+k)‖² − 2 PE(p)·PE(p+k) = d − 2 Σ_i cos(k ω_i)."""
    squared_distance = require_function(answer, "squared_distance(offset, d_model)")
    cases = [(1, 16), (5, 64), (0, 8), (-7, 32), (100, 64)]
    got = [require_number(call(squared_distance, k, d), f"squared_distance({k}, {d})") for k, d in cases]
    expected, sums = [], []
    for k, d in cases:
        table = sinusoidal_positional_encoding(3 + abs(k) + 1 + 3, d, dtype=torch.float64)
        p = 3 + max(0, -k)
        expected.append(((table[p] - table[p + k]) ** 2).sum().item())  # measured on mtlkit's table
        sums.append(sum(math.cos(k / 10000 ** (2 * i / d)) for i in range(d // 2)))
    slips = {
        "half": [d / 2 - s for (_, d), s in zip(cases, sums)],
        "cross term": [d - s for (_, d), s in zip(cases, sums)],
        "sign": [d + 2 * s for (_, d), s in zip(cases, sums)],
    }
    hints = {
        "half": "each encoding has ‖PE‖² = d/2 (d/2 pairs on the unit circle), and the distance adds both norms: d",
        "cross term": "‖a − b‖² = ‖a‖² + ‖b‖² − 2 a·b: the cross term is 2 PE(p)·PE(p+k) = 2 Σ_i cos(k ω_i)",
        "sign": "the cross term is subtracted: ‖a − b‖² = ‖a‖² + ‖b‖² − 2 a·b",
    }
    reject_slips(got, slips, hints)
    for (k, d), value, target in zip(cases, got, expected):
        if abs(value - target) > 1e-6 * max(1.0, target):
            raise Mistake(f"for offset {k}, d_model {d} you return {value:.6g}; on mtlkit's table "
                          f"‖PE(p) − PE(p + {k})‖² = {target:.6g} (for every p)")
    return ("d − 2 Σ_i cos(k ω_i): it depends on the offset k only, is 0 at k = 0 and grows, with ripples, as the "
            "positions move apart.")


# --------------------------------------------------------------------------- 02.3
@EXERCISES.add("02.3", "derive-and-verify",
               "rope_rotate(x, positions): RoPE's rotation of interleaved pairs, against mtlkit")
def judge_rope_rotate(answer: Any) -> str:
    """RoPE: the pair (x_2i, x_2i+1) at position p turned counter-clockwise by p ω_i, i.e.
    x @ relative_rotation(p, d) (mtlkit's :class:`~mtlkit.positional.RotaryPositionalEmbedding`)."""
    rope_rotate = require_function(answer, "rope_rotate(x, positions)")
    generator = torch.Generator().manual_seed(2)
    d = 8
    x = torch.randn(2, 6, d, generator=generator, dtype=torch.float64)  # (B, L, d)
    positions = torch.tensor([0, 1, 2, 5, 17, 40])
    got = as_tensor(call(rope_rotate, x.clone(), positions.clone()), "rope_rotate(x, positions)", tuple(x.shape))

    def rotated_by(sign: float) -> torch.Tensor:
        return torch.stack([x[:, j] @ relative_rotation(sign * int(p), d, dtype=torch.float64)
                            for j, p in enumerate(positions)], dim=1)

    expected = rotated_by(1.0)
    if deviation(got, expected) <= 1e-5:
        q, k = torch.randn(2, d, generator=generator, dtype=torch.float64)
        offsets = torch.arange(12)
        queries = as_tensor(call(rope_rotate, q.expand(12, d).clone(), offsets), "rope_rotate(q, positions)")
        keys = as_tensor(call(rope_rotate, k.expand(12, d).clone(), offsets), "rope_rotate(k, positions)")
        scores = queries @ keys.T  # (12, 12)
        spread = max((scores.diagonal(o).max() - scores.diagonal(o).min()).item() for o in range(-11, 12))
        return (f"equals mtlkit's rotation at every position; with your function the score <R_p q, R_r k> varies by "
                f"at most {spread:.1e} along a diagonal r − p = const: it sees only the offset.")
    half = d // 2
    interleave = torch.arange(d).reshape(2, half).T.reshape(-1)  # [0, d/2, 1, d/2 + 1, ...]: the pairs (i, i + d/2)
    rotate_half = torch.stack([x[:, j, interleave] @ relative_rotation(int(p), d, dtype=torch.float64)
                               for j, p in enumerate(positions)], dim=1)[..., torch.argsort(interleave)]
    slips = {"clockwise": rotated_by(-1.0), "rotate half": rotate_half, "no rotation": x}
    hints = {
        "clockwise": "you turn each pair clockwise: RoPE turns (x_2i, x_2i+1) by +p ω_i, "
                     "x'_2i = x_2i cos(p ω_i) − x_2i+1 sin(p ω_i), x'_2i+1 = x_2i sin(p ω_i) + x_2i+1 cos(p ω_i)",
        "rotate half": "you paired coordinate i with i + d/2 (the 'rotate half' layout of GPT-NeoX and LLaMA code); "
                       "mtlkit and the RoFormer paper pair neighbours (2i, 2i+1)",
        "no rotation": "your output equals the input: position p must turn pair i by the angle p ω_i",
    }
    reject_slips(got, slips, hints, tolerance=1e-5)
    norm_change = (got.norm(dim=-1) - x.norm(dim=-1)).abs().max().item()
    if norm_change > 1e-5:
        raise Mistake(f"your function changes norms by up to {norm_change:.3g}: a rotation keeps every norm "
                      "(cos² + sin² = 1 in each pair)")
    raise Mistake(f"your rotation differs from RoPE's by up to {deviation(got, expected):.3g}; check the angles "
                  "p ω_i with ω_i = 10000^(−2i/d)")


# --------------------------------------------------------------------------- 02.4
@EXERCISES.add("02.4", "predict-then-run",
               "causal_equivariance: is causal self-attention still permutation-equivariant? Predict, then measure")
def judge_causal_equivariance(answer: Any) -> str:
    """With a causal mask M, Attn(P X) = P Attn(X) fails: the scores become P S Pᵀ + M, not P (S + M) Pᵀ,
    because the mask stays in place while the items move."""
    prediction, deviation_measured = require_prediction(answer, ("yes", "no"), "max_deviation",
                                                        "your measured max |Attn(P X) − P Attn(X)|")
    measured = require_number(deviation_measured, "answer['max_deviation']")
    with seeded(21), torch.no_grad():
        attention = MultiHeadAttention(16, 2).eval()
        history = torch.randn(2, 8, 16)
        perm = torch.randperm(8)
        ours = (attention(history, is_causal=True)[0][:, perm] - attention(history[:, perm], is_causal=True)[0])
    reference = ours.abs().max().item()
    if prediction == "yes":
        message = ("it is not: with the mask the scores become P S Pᵀ + M, not P (S + M) Pᵀ — the mask stays in place "
                   "while the items move, so a shuffled position sees other items than before")
        if measured < 1e-4:
            message += ("; and your measurement says equivariant too: pass is_causal=True to both calls and compare "
                        "out[:, perm] with the shuffled history's output")
        raise Mistake(message + f" (a random layer here: {reference:.2f})")
    if measured < 1e-4:
        raise Mistake(f"the prediction is right, but your measurement {measured:.1e} says the layer is still "
                      "equivariant: pass is_causal=True to both calls")
    return (f"not equivariant: you measured {measured:.3g} (a random layer here: {reference:.2f}). A causal mask is "
            "itself a signal about order: position i reads exactly i + 1 items, so a causal Transformer can tell "
            "positions apart even without a positional encoding (Haviv et al., 2022).")
