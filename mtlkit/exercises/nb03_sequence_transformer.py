"""Exercises of notebook 03 (the encoder block): a post-LN layer by hand, the width at which a
layer passes a million parameters, and where attention starts to cost more than the projections."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from mtlkit.exercises.exercise import (
    Mistake,
    NotebookExercises,
    as_tensor,
    call,
    deviation,
    reject_slips,
    require_function,
    require_number,
    seeded,
)
from mtlkit.transformer import TransformerEncoderLayer

EXERCISES = NotebookExercises("03_sequence_transformer")


# --------------------------------------------------------------------------- 03.1
def _post_ln_layer() -> nn.TransformerEncoderLayer:
    with seeded(3):
        layer = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, activation="gelu", batch_first=True,
                                           norm_first=False)
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():  # LayerNorms away from their (1, 0) start, so that a misplaced one shows
        for norm in (layer.norm1, layer.norm2):
            norm.weight.uniform_(0.5, 1.5, generator=generator)
            norm.bias.uniform_(-0.5, 0.5, generator=generator)
    return layer.eval()


def _layer_variant(layer: nn.TransformerEncoderLayer, x: torch.Tensor, *, pre_ln: bool = False,
                   activation: Any = F.gelu) -> torch.Tensor:
    """The layer computed as a typical slip computes it (pre-LN placement, another activation)."""

    def attention(h: torch.Tensor) -> torch.Tensor:
        return layer.self_attn(h, h, h, need_weights=False)[0]

    def ffn(h: torch.Tensor) -> torch.Tensor:
        return layer.linear2(activation(layer.linear1(h)))

    if pre_ln:
        x = x + attention(layer.norm1(x))
        return x + ffn(layer.norm2(x))
    x = layer.norm1(x + attention(x))
    return layer.norm2(x + ffn(x))


@EXERCISES.add("03.1", "derive-and-verify", "post_ln_layer(layer, x): a post-LN encoder layer by hand, against PyTorch")
def judge_post_ln_layer(answer: Any) -> str:
    """x ← LN₁(x + MHA(x)), x ← LN₂(x + FFN(x)), against ``torch.nn.TransformerEncoderLayer(norm_first=False)``."""
    post_ln_layer = require_function(answer, "post_ln_layer(layer, x)")
    layer = _post_ln_layer()
    x = torch.randn(2, 5, 16, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        got = as_tensor(call(post_ln_layer, layer, x.clone()), "post_ln_layer(layer, x)", tuple(x.shape))
        expected = layer(x).double()
        slips = {
            "pre-LN": _layer_variant(layer, x, pre_ln=True),
            "relu": _layer_variant(layer, x, activation=F.relu),
            "no residual": layer.norm2(layer.linear2(F.gelu(layer.linear1(layer.norm1(
                layer.self_attn(x, x, x, need_weights=False)[0]))))),
        }
    if deviation(got, expected) <= 1e-5:
        return ("equals PyTorch's post-LN layer: every sub-layer's output is added to the stream and the sum is "
                "normalised, so even a layer with silent sub-layers normalises its input (unlike pre-LN).")
    hints = {
        "pre-LN": "your output is the pre-LN layer (x + MHA(LN(x))): post-LN normalises after the residual addition, "
                  "x ← LN(x + MHA(x))",
        "relu": "your feed-forward network uses ReLU; this layer was built with activation='gelu'",
        "no residual": "you dropped the residual additions: post-LN computes LN(x + sublayer(x)), the input is added "
                       "back before normalising",
    }
    reject_slips(got, {name: value.double() for name, value in slips.items()}, hints, tolerance=1e-5)
    raise Mistake(f"your output differs from nn.TransformerEncoderLayer(norm_first=False) by up to "
                  f"{deviation(got, expected):.3g}")


# --------------------------------------------------------------------------- 03.2
def _layer_parameters(d_model: int) -> int:
    """Parameters of an mtlkit encoder layer with d_ff = 4 d_model, counted (one head: any width works)."""
    with seeded(0):
        return sum(p.numel() for p in TransformerEncoderLayer(d_model, 1, 4 * d_model).parameters())


@EXERCISES.add("03.2", "derive",
               "million_parameter_width: the smallest d_model whose layer (d_ff = 4d) has over a million parameters")
def judge_million_parameter_width(answer: Any) -> str:
    """The smallest d with 4d² + 2 d (4d) + 9d + 4d = 12d² + 13d > 10⁶, checked by counting the
    parameters of :class:`~mtlkit.transformer.TransformerEncoderLayer` at d and d − 1."""
    width = require_number(answer, "million_parameter_width")
    if width != int(width) or width < 2:
        raise Mistake(f"million_parameter_width must be a whole number of dimensions, got {width}")
    width = int(width)
    at, below = _layer_parameters(width), _layer_parameters(width - 1)
    if at > 1_000_000 >= below:
        return (f"d_model = {width}: {below:,} parameters at d = {width - 1}, {at:,} at d = {width}. Two thirds of "
                "them are the FFN's; BERT-base (d = 768) has 7 million per layer.")
    if 4 * width**2 + 4 * width > 1_000_000 >= 4 * (width - 1) ** 2 + 4 * (width - 1):
        raise Mistake(f"{width} is where the attention alone, 4d² + 4d, passes a million; the FFN adds "
                      "2 d d_ff + d_ff + d = 8d² + 5d and the LayerNorms 4d")
    if at <= 1_000_000:
        raise Mistake(f"at d_model = {width} a layer has {at:,} parameters, not yet more than a million")
    raise Mistake(f"at d_model = {width - 1} a layer already has {below:,} parameters; look for the smallest width")


# --------------------------------------------------------------------------- 03.3
@EXERCISES.add("03.3", "derive", "crossover_length(d_model): the length from which attention costs more than the rest")
def judge_crossover_length(answer: Any) -> str:
    """Multiply-adds per layer: Q Kᵀ and A V cost 2 L² d, the four projections 4 L d² and the FFN
    (d_ff = 4d) 8 L d², so attention costs more beyond L = 6d."""
    crossover_length = require_function(answer, "crossover_length(d_model)")
    cases = (32, 768, 100)
    got = [require_number(call(crossover_length, d), f"crossover_length({d})") for d in cases]
    slips = {
        "d": list(cases),
        "12 d": [12 * d for d in cases],
        "2 d": [2 * d for d in cases],
        "4 d": [4 * d for d in cases],
    }
    hints = {
        "d": "L² d = L d² ignores the constants: Q Kᵀ and A V cost 2 L² d multiply-adds, the four projections and "
             "the FFN (d_ff = 4d) 12 L d²",
        "12 d": "you counted Q Kᵀ only: A V costs another L² d multiply-adds, 2 L² d in all",
        "2 d": "you left out the FFN: with d_ff = 4d its two matrices cost 8 L d², on top of the projections' 4 L d²",
        "4 d": "you left out the four projections (Q, K, V and the output): 4 L d² on top of the FFN's 8 L d²",
    }
    reject_slips(got, slips, hints)
    for d, value in zip(cases, got):
        if abs(value - 6 * d) > 0.5:
            attention, rest = 2 * value**2 * d, 12 * value * d**2
            raise Mistake(f"at L = {value:.6g} and d = {d} attention costs {attention:.3g} multiply-adds and the "
                          f"projections and FFN {rest:.3g}: they are not equal there")
    return ("L = 6d: 192 for d = 32 and 4,608 for d = 768. Behaviour sequences of 50 items sit far below it, so the "
            "projections and the FFN dominate the cost of a BST encoder.")
