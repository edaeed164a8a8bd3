"""Exercises of notebook 11 (a language model as the shared encoder): what LoRA trains, a
sample's text assembled from token ids, and a LoRA layer's forward pass."""

from __future__ import annotations

from typing import Any

import torch

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
from mtlkit.models.lm import compose_sequences

EXERCISES = NotebookExercises("11_large_model_multitask")
#: all-MiniLM-L6-v2's weights: embeddings 11.9 M, six layers of 1.77 M, the pooler 0.15 M.
MINILM_PARAMETERS = 22_713_216


# --------------------------------------------------------------------------- 11.1
@EXERCISES.add("11.1", "derive", "lora_parameters(d_model, n_layers, rank, n_adapted): the weights LoRA trains")
def judge_lora_parameters(answer: Any) -> str:
    """LoRA on a d_in → d_out matrix trains A (r × d_in) and B (d_out × r): r (d_in + d_out) weights,
    2 r d per square d × d projection; times the adapted matrices per layer and the layers."""
    lora_parameters = require_function(answer, "lora_parameters(d_model, n_layers, rank, n_adapted)")
    cases = [(384, 6, 8, 2), (384, 6, 64, 2), (768, 12, 16, 4), (32, 1, 1, 1)]
    got = [require_number(call(lora_parameters, *case), f"lora_parameters{case}") for case in cases]
    expected = [n_layers * n_adapted * rank * 2 * d for d, n_layers, rank, n_adapted in cases]
    if got == expected:
        trained = expected[0]
        return (f"2 r d per adapted matrix: {trained:,} weights at r = 8 ({trained / MINILM_PARAMETERS:.2%} of "
                f"all-MiniLM-L6-v2) "
                f"and {expected[1]:,} at r = 64 — still under 3 %, and zero change to the model at the start (B = 0).")
    slips = {
        "one factor": [n * a * r * d for d, n, r, a in cases],
        "full matrix": [n * a * d * d for d, n, r, a in cases],
        "one matrix": [n * r * 2 * d for d, n, r, a in cases],
        "rank squared": [n * a * r * r for d, n, r, a in cases],
    }
    hints = {
        "one factor": "you counted one of the two factors: LoRA trains A (r × d_in) and B (d_out × r), r (d_in + d_out) "
                      "weights per matrix",
        "full matrix": "that is the full d × d matrix W, which LoRA keeps frozen; it trains only A and B",
        "one matrix": "you adapted one matrix per layer; count n_adapted of them (the query and the value in the "
                      "notebook)",
        "rank squared": "A is r × d_in and B is d_out × r; r² would be the size of the product's inner square",
    }
    reject_slips(got, slips, hints)
    case, g, e = next((case, g, e) for case, g, e in zip(cases, got, expected) if g != e)
    raise Mistake(f"lora_parameters{case} = {g:.0f}; A and B of every adapted matrix hold {e:,} weights in all")


# --------------------------------------------------------------------------- 11.2
CLS, SEP, JOINER, PAD = 101, 102, 1025, 0  # all-MiniLM-L6-v2's [CLS], [SEP], ';' and [PAD]
COMPOSE_CASES = (  # (candidate title tokens, history titles most recent first, max_length)
    ([7, 8], [[21, 22], [31]], 32),
    ([7], [[], [21, 22, 23], [], [31]], 32),  # empty titles: padding or an unknown item
    ([7, 8, 9], [[], []], 32),  # no history at all
    ([7, 8], [[21, 22, 23], [31, 32, 33], [41, 42]], 10),  # too long: cut, still ending in [SEP]
)


def _reference_tokens(candidate: list[int], history: list[list[int]], max_length: int) -> list[int]:
    """``mtlkit.models.lm.compose_sequences`` on a title table built from these token lists."""
    titles = [[], candidate, *history]  # row 0: the empty title of item 0
    width = max(len(t) for t in titles)
    table = torch.tensor([t + [PAD] * (width - len(t)) for t in titles])
    lengths = torch.tensor([len(t) for t in titles])
    ids, mask = compose_sequences(torch.tensor([1]), torch.arange(2, 2 + len(history))[None, :], table, lengths,
                                  cls_id=CLS, sep_id=SEP, joiner_id=JOINER, pad_id=PAD, max_length=max_length)
    return ids[0][mask[0].bool()].tolist()


@EXERCISES.add("11.2", "derive-and-verify",
               "compose_tokens(candidate, history, max_length): a sample's token ids, against mtlkit")
def judge_compose_tokens(answer: Any) -> str:
    """``[CLS] candidate [SEP] h_1 ; h_2 ; … ; h_K [SEP]``, empty titles skipped, cut to max_length and
    still ending in [SEP], against ``mtlkit.models.lm.compose_sequences``."""
    compose_tokens = require_function(answer, "compose_tokens(candidate, history, max_length)")
    for candidate, history, max_length in COMPOSE_CASES:
        got = call(compose_tokens, list(candidate), [list(title) for title in history], max_length)
        if not isinstance(got, (list, tuple)):
            raise Mistake(f"compose_tokens must return a list of token ids, got {type(got).__name__}")
        got = [int(token) for token in got]
        expected = _reference_tokens(candidate, history, max_length)
        if got == expected:
            continue
        case = f"for candidate {candidate}, history {history}, max_length {max_length} you return {got}; "
        real = [title for title in history if title]
        if not real and got == expected + [SEP]:
            raise Mistake(case + "with no history title the text ends after the candidate's [SEP], no second [SEP]")
        if real and got[-2:] == [JOINER, SEP]:
            raise Mistake(case + "the joiner ';' goes *between* history titles, not after the last one")
        if len(got) > max_length:
            raise Mistake(case + f"that is {len(got)} tokens; cut the sequence to max_length = {max_length}")
        if len(expected) == max_length and got[:-1] == expected[:-1]:
            raise Mistake(case + "a sequence cut at max_length must still end in [SEP]: overwrite its last token")
        if got.count(JOINER) > expected.count(JOINER):
            raise Mistake(case + "an empty history title (padding, or an item without a title) adds nothing — no "
                          "joiner either")
        raise Mistake(case + f"expected {expected}")
    return ("equals what compose_sequences gathers from the token table for a whole batch at once — and what the "
            "tokenizer gives for the template string, without calling it in the training loop.")


# --------------------------------------------------------------------------- 11.3
@EXERCISES.add("11.3", "derive-and-verify",
               "lora_forward(x, weight, bias, lora_a, lora_b, alpha): a LoRA layer's output")
def judge_lora_forward(answer: Any) -> str:
    """y = W x + b + (α/r) B A x, checked through the merged weight W + (α/r) B A (how LoRA is served)."""
    lora_forward = require_function(answer, "lora_forward(x, weight, bias, lora_a, lora_b, alpha)")
    generator = torch.Generator().manual_seed(18)
    d_in, d_out, rank, alpha = 12, 10, 4, 16.0
    x = torch.randn(5, d_in, generator=generator, dtype=torch.float64)
    weight = torch.randn(d_out, d_in, generator=generator, dtype=torch.float64)
    bias = torch.randn(d_out, generator=generator, dtype=torch.float64)
    lora_a = torch.randn(rank, d_in, generator=generator, dtype=torch.float64)
    lora_b = torch.randn(d_out, rank, generator=generator, dtype=torch.float64)
    got = as_tensor(call(lora_forward, x, weight, bias, lora_a, lora_b, alpha), "lora_forward(...)", (5, d_out))
    expected = torch.nn.functional.linear(x, weight + (alpha / rank) * lora_b @ lora_a, bias)
    if deviation(got, expected) <= 1e-8:
        start = as_tensor(call(lora_forward, x, weight, bias, lora_a, torch.zeros_like(lora_b), alpha),
                          "lora_forward with B = 0", (5, d_out))
        return ("W x + b + (α/r) B A x; with B = 0, as LoRA initialises it, your layer is exactly the pretrained one "
                f"(deviation {deviation(start, torch.nn.functional.linear(x, weight, bias)):.0e}), so fine-tuning "
                "starts from the pretrained model.")
    update = lora_b @ lora_a
    slips = {
        "alpha": torch.nn.functional.linear(x, weight + alpha * update, bias),
        "r over alpha": torch.nn.functional.linear(x, weight + (rank / alpha) * update, bias),
        "no scale": torch.nn.functional.linear(x, weight + update, bias),
        "no bias": torch.nn.functional.linear(x, weight + (alpha / rank) * update),
        "no update": torch.nn.functional.linear(x, weight, bias),
    }
    hints = {
        "alpha": f"your update is r = {rank} times too large: LoRA scales B A x by α/r",
        "r over alpha": "you scaled by r/α; LoRA scales by α/r",
        "no scale": "you left out the scale α/r of the low-rank update",
        "no bias": "you dropped the frozen layer's bias b",
        "no update": "your output is the frozen layer alone: add the low-rank update (α/r) B A x",
    }
    reject_slips(got, slips, hints)
    raise Mistake(f"your output differs from W x + b + (α/r) B A x by up to {deviation(got, expected):.3g} "
                  "(A is r × d_in, B is d_out × r: the update is x Aᵀ Bᵀ for row vectors x)")
