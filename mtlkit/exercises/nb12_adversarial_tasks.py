"""Exercises of notebook 12 (adversarial tasks): gradient reversal without an autograd.Function,
macro and micro AUC, and the loss of an adversary that has learned nothing."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from mtlkit import metrics
from mtlkit.exercises.exercise import (
    Mistake,
    NotebookExercises,
    call,
    deviation,
    require_function,
    require_number,
)
from mtlkit.models.adversarial import gradient_reversal
from mtlkit.summaries import macro_average, micro_average

EXERCISES = NotebookExercises("12_adversarial_tasks")


# --------------------------------------------------------------------------- 12.1
def _through(reversal: Any, strength: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(forward values, gradient on the encoder's weights) of an adversary loss through ``reversal``."""
    generator = torch.Generator().manual_seed(19)
    weights = torch.randn(4, 3, generator=generator, dtype=torch.float64).requires_grad_()
    x = torch.randn(5, 4, generator=generator, dtype=torch.float64)
    h = torch.tanh(x @ weights)  # (5, 3): the "encoder"
    out = reversal(h, strength)
    if not isinstance(out, torch.Tensor):
        raise Mistake(f"reverse_gradient must return a tensor, got {type(out).__name__}")
    loss = (out**2).sum()  # any adversary loss
    if not loss.requires_grad:
        raise Mistake("no gradient flows through your output at all: keep a term that depends on h with "
                      "gradient, e.g. −λ·h")
    (gradient,) = torch.autograd.grad(loss, weights)
    return out.detach(), gradient


@EXERCISES.add("12.1", "derive-and-verify",
               "reverse_gradient(h, strength): gradient reversal from detach, without autograd.Function")
def judge_reverse_gradient(answer: Any) -> str:
    """R_λ(h) = h forward, −λ × the gradient backward, built from ``detach``:
    (1 + λ) h.detach() − λ h; against ``mtlkit.models.adversarial.gradient_reversal``."""
    reverse_gradient = require_function(answer, "reverse_gradient(h, strength)")
    for strength in (0.7, 2.0, 0.0):
        values, gradient = _through(lambda h, s: call(reverse_gradient, h, s), strength)
        expected_values, expected_gradient = _through(gradient_reversal, strength)
        if deviation(values, expected_values) > 1e-9:
            ratio = (values / expected_values).median().item()
            raise Mistake(f"for λ = {strength} your forward returns {ratio:.3g}·h, not h: the reversal layer changes "
                          "nothing in the forward pass (hint: h.detach() carries h's values without its gradient)")
        if deviation(gradient, expected_gradient) <= 1e-9:
            continue
        _, plain = _through(lambda h, s: h, strength)
        ratio = (gradient * plain).sum().item() / (plain * plain).sum().item()  # the factor on the plain gradient
        if abs(ratio - 1.0) < 1e-6:
            raise Mistake(f"for λ = {strength} the gradient passes unchanged; it must come back multiplied by −λ")
        if abs(ratio - strength) < 1e-6:
            raise Mistake(f"for λ = {strength} the gradient comes back multiplied by +λ; the sign must flip: −λ")
        raise Mistake(f"for λ = {strength} your gradient is {ratio:.3g} times the plain one, expected −λ = "
                      f"{-strength:g}")
    return ("identity forward, −λ backward, equal to mtlkit's gradient_reversal: the detached copy carries the values, "
            "the −λ h term carries the (reversed) gradient, and the two h terms cancel in the forward pass.")


# --------------------------------------------------------------------------- 12.2
TASKS = ("click", "purchase")


def _task_labels(seed: int = 20) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(labels, logits, label_mask) of two binary tasks, the second observed on a fifth of the rows."""
    rng = np.random.default_rng(seed)
    labels = (rng.random((600, 2)) < [0.3, 0.1]).astype(float)
    logits = rng.normal(size=(600, 2)) + labels * [1.5, 0.5] + [0.0, -2.0]  # purchase: harder and on another scale
    mask = np.stack([np.ones(600, dtype=bool), rng.random(600) < 0.2], axis=1)
    labels[~mask] = 0.0  # placeholders where a label is unobserved
    return labels, logits, mask


@EXERCISES.add("12.2", "derive-and-verify",
               "macro_and_micro_auc(labels, logits, label_mask): the two AUC summaries, against mtlkit")
def judge_macro_and_micro_auc(answer: Any) -> str:
    """Macro: the mean of the tasks' AUCs; micro: one AUC over all observed (label, logit) pairs pooled,
    against ``mtlkit.summaries.macro_average`` and ``micro_average``."""
    macro_and_micro_auc = require_function(answer, "macro_and_micro_auc(labels, logits, label_mask)")
    labels, logits, mask = _task_labels()
    returned = call(macro_and_micro_auc, labels.copy(), logits.copy(), mask.copy())
    if not isinstance(returned, (tuple, list)) or len(returned) != 2:
        raise Mistake(f"macro_and_micro_auc must return the pair (macro, micro), got {returned!r:.60}")
    macro, micro = (require_number(value, name) for value, name in zip(returned, ("macro", "micro")))
    per_task = {task: {"auc": metrics.roc_auc(labels[mask[:, j], j], logits[mask[:, j], j])}
                for j, task in enumerate(TASKS)}
    expected_macro = macro_average(per_task, "auc")
    expected_micro = micro_average({task: torch.tensor(logits[:, j]) for j, task in enumerate(TASKS)},
                                   torch.tensor(labels), torch.tensor(mask), dict.fromkeys(TASKS, "binary"), "auc")
    if abs(macro - expected_micro) < 1e-9 and abs(micro - expected_macro) < 1e-9:
        raise Mistake("you swapped the two: macro averages the tasks' AUCs, micro pools the labels of all tasks")
    if abs(macro - expected_macro) > 1e-9:
        counts = mask.sum(axis=0)
        weighted = sum(per_task[t]["auc"] * c for t, c in zip(TASKS, counts)) / counts.sum()
        if abs(macro - weighted) < 1e-9:
            raise Mistake("your macro AUC weighs each task by its number of labels; macro weighs every task the same")
        if abs(macro - np.mean([metrics.roc_auc(labels[:, j], logits[:, j]) for j in range(2)])) < 1e-9:
            raise Mistake("your per-task AUCs count unobserved rows, whose placeholder 0 is not a negative: keep the "
                          "rows whose mask is True")
        raise Mistake(f"your macro AUC is {macro:.6f}; the mean of the tasks' AUCs is {expected_macro:.6f}")
    if abs(micro - expected_micro) > 1e-9:
        if abs(micro - metrics.roc_auc(labels.ravel(), logits.ravel())) < 1e-9:
            raise Mistake("your micro AUC pools the unobserved labels too (their placeholder 0 becomes a negative): "
                          "pool the observed pairs only")
        raise Mistake(f"your micro AUC is {micro:.6f}; one AUC over all observed pairs of both tasks is "
                      f"{expected_micro:.6f}")
    return (f"macro {expected_macro:.4f}, micro {expected_micro:.4f}: the micro AUC is dominated by the click task's "
            "labels and also rewards putting the two tasks' scores on a common scale — read it with care.")


# --------------------------------------------------------------------------- 12.3
@EXERCISES.add("12.3", "derive", "chance_adversary_loss: the BCE of an adversary that learned nothing (10 % bots)")
def judge_chance_adversary_loss(answer: Any) -> str:
    """An adversary that knows nothing predicts the base rate p = 0.1; its BCE is the entropy
    H(p) = −p ln p − (1 − p) ln(1 − p) nats."""
    got = require_number(answer, "chance_adversary_loss")
    p = 0.1
    entropy = -p * math.log(p) - (1 - p) * math.log(1 - p)
    if abs(got - entropy) <= 1e-3:
        return (f"H(0.1) = {entropy:.4f}: an adversary loss near this value means the head learned nothing; compare "
                "the curve with it, not with ln 2 = 0.693, which only a 50/50 attribute would give.")
    hints = {
        math.log(2): "ln 2 is the loss of predicting ½; even a head that knows nothing learns the base rate 0.1",
        entropy / math.log(2): "that is in bits; binary cross-entropy uses natural logarithms (nats)",
        -math.log(1 - p): "that is the loss on the humans only; average over the bots too: −p ln p − (1 − p) ln(1 − p)",
        -math.log(p): "that is the loss on the bots only; average over everyone: −p ln p − (1 − p) ln(1 − p)",
        p: "that is the bot share itself; the loss of predicting it is its entropy, −p ln p − (1 − p) ln(1 − p)",
    }
    for value, hint in hints.items():
        if abs(got - value) <= 1e-3:
            raise Mistake(hint)
    raise Mistake(f"{got:.4g} is not the binary cross-entropy of predicting 0.1 everywhere when 10 % of the rows are "
                  "bots")
