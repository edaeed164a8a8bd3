"""Task balancing: how the per-task losses of a multi-task model become one update.

A multi-task model minimises a combination of task losses. The simplest is a weighted sum

    L(θ) = Σ_t w_t · L_t(θ),   so   ∂L/∂θ_shared = Σ_t w_t · g_t,   g_t = ∂L_t/∂θ_shared,

and the weights decide which task the shared parameters serve. *Loss-weighting* strategies
choose w_t (fixed, learned, or from the loss history); *gradient-surgery* strategies look at
the per-task gradients g_t themselves and combine them into one direction.

Both kinds sit behind one interface, as in LibMTL (Lin & Zhang, 2023): once per step the
trainer calls

    weights = strategy.backward(losses, shared_parameters,
                                last_shared_parameters=..., diagnostics=False)

and the strategy fills the ``.grad`` of every parameter (it calls ``backward`` itself) and
returns the weights it used, which the trainer records in the run history. Adding a
strategy touches this file and the ``WEIGHTINGS`` registry only.

Conventions shared by every strategy:

* **Scale.** Returned weights are on the scale of equal weighting, Σ_t w_t ≈ T (the task
  count), so a learning rate tuned for ``equal`` stays sensible when the strategy changes.
  Where a paper's weights sum to 1 (MGDA, RLW, CAGrad's mean gradient) the docstring says so
  and the factor T is applied; the *direction* is the paper's. Uncertainty weighting is
  the exception: its weights are learned, with no fixed sum.
* **Gradient surgery only touches shared parameters.** A task-specific parameter (a tower)
  depends on one loss only, so it has nothing to conflict with: it receives the gradient of
  the plain sum Σ_t L_t, as in LibMTL. The shared parameters receive the combined direction.
  Every surgery direction is written as Σ_t w_t g_t over the *original* task gradients, so
  the returned weights describe exactly what the shared parameters got.
* **Nothing shared, nothing to balance.** With no shared parameters (the single-task
  baseline, whose towers are independent) every strategy reduces to back-propagating
  Σ_t L_t and returns weight 1 for every task.
* **Diagnostics.** With ``diagnostics=True`` the strategy also stores, in
  ``last_diagnostics``, each task's gradient norm on the shared parameters
  (``"grad_norm/<task>"``) and the cosine similarity of every pair of task gradients
  (``"grad_cos/<a>/<b>"``, a before b in task order; negative = the tasks conflict).

Per-task gradients, and what they cost. ``task_gradients`` runs one
``torch.autograd.grad(L_t, shared, retain_graph=True)`` per task: T partial backward
passes, each through the task's tower and the shared trunk, the minimum for exact per-task
gradients. The task-specific parameters still need their gradients. Calling
``(Σ_t L_t).backward()`` would pass through the trunk a (T+1)-th time only to compute shared
gradients that are then overwritten; instead the final backward is restricted, with
``torch.autograd.backward(..., inputs=...)``, to the leaves of the graph that are not
shared (found by walking ``grad_fn``), so autograd skips the trunk. The same reuse serves
diagnostics: a loss-weighting strategy asked for them gives the shared parameters
Σ_t w_t g_t from the per-task gradients it has just computed. (Recovering g_T as "the sum
minus the others" would save no pass and loses precision when the tasks' gradient scales
differ by orders of magnitude — exactly when surgery matters.) The graph walk sees every
parameter autograd records; a model that hides parameters from the graph (reentrant
``torch.utils.checkpoint``) is not supported by the gradient-based strategies.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from mtlkit.checks import check_int, check_number

__all__ = [
    "WeightingStrategy",
    "GradientSurgery",
    "EqualWeighting",
    "StaticWeighting",
    "UncertaintyWeighting",
    "DynamicWeightAverage",
    "GradNorm",
    "RandomLossWeighting",
    "PCGrad",
    "MGDA",
    "CAGrad",
    "WEIGHTINGS",
    "make_weighting",
    "task_gradients",
    "gradient_diagnostics",
    "min_norm_two",
    "min_norm_frank_wolfe",
    "min_norm_weights",
    "pcgrad_coefficients",
    "cagrad_weights",
]


# --------------------------------------------------------------------------------------
# Per-task gradients and diagnostics (shared by every gradient-based strategy)
# --------------------------------------------------------------------------------------


def task_gradients(losses: Sequence[Tensor], parameters: Sequence[Tensor]) -> Tensor:
    """The gradient of each loss w.r.t. ``parameters``, flattened into one row per task.

    Row t is g_t = ∂L_t/∂θ, the parameters' gradients concatenated in order. One
    ``torch.autograd.grad`` call per task, on these parameters only, with
    ``retain_graph=True`` because a final backward follows. A parameter a loss does not
    depend on (``allow_unused``), or a loss that needs no gradient at all, gives zeros.

    Returns:
        Tensor (T, P), P = total number of elements of ``parameters``.
    """
    parameters = list(parameters)
    n_elements = sum(p.numel() for p in parameters)
    out = parameters[0].new_zeros((len(losses), n_elements))  # (T, P)
    for t, loss in enumerate(losses):
        if not loss.requires_grad:
            continue
        grads = torch.autograd.grad(loss, parameters, retain_graph=True, allow_unused=True)
        offset = 0
        for p, g in zip(parameters, grads):
            if g is not None:
                out[t, offset : offset + p.numel()] = g.reshape(-1)
            offset += p.numel()
    return out


def gradient_diagnostics(task_names: Sequence[str], grads: Tensor) -> dict[str, float]:
    """Gradient norms and pairwise cosine similarities of per-task gradients.

    cos(g_a, g_b) = g_a·g_b / (‖g_a‖ ‖g_b‖), read off the Gram matrix G Gᵀ; it is reported
    as 0 when either gradient is zero. Negative cosine = the two tasks pull the shared
    parameters in conflicting directions (Yu et al., 2020).

    Args:
        task_names: the T tasks, in the order of the rows of ``grads``.
        grads: Tensor (T, P) from ``task_gradients``.

    Returns:
        ``{"grad_norm/<task>": ‖g_t‖, "grad_cos/<a>/<b>": cos(g_a, g_b)}`` with a before b.
    """
    gram = (grads @ grads.T).double().cpu()  # (T, T)
    norms = gram.diagonal().clamp_min(0).sqrt()  # (T,)
    out = {f"grad_norm/{name}": float(norms[i]) for i, name in enumerate(task_names)}
    for i, a in enumerate(task_names):
        for j in range(i + 1, len(task_names)):
            denominator = float(norms[i] * norms[j])
            cosine = float(gram[i, j]) / denominator if denominator > 0 else 0.0
            out[f"grad_cos/{a}/{task_names[j]}"] = cosine
    return out


def _leaf_tensors(root: Tensor) -> list[Tensor]:
    """The leaf tensors that require grad and that ``root`` depends on (its graph's inputs)."""
    if root.grad_fn is None:
        return [root] if root.requires_grad else []
    leaves: dict[int, Tensor] = {}
    seen = set()
    stack = [root.grad_fn]
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        variable = getattr(node, "variable", None)  # AccumulateGrad nodes hold their leaf
        if variable is not None:
            leaves[id(variable)] = variable
            continue
        stack.extend(child for child, _ in node.next_functions if child is not None)
    return list(leaves.values())


class _SharedGradients:
    """The per-task gradients of the shared parameters, computed on first use only.

    Calling the object returns ``task_gradients(losses, shared)`` (T, P), computed at most
    once per step whoever asks first (diagnostics, gradient surgery, GradNorm's fallback).
    """

    def __init__(self, losses: Sequence[Tensor], shared: Sequence[Tensor]) -> None:
        self.losses, self.shared = losses, shared
        self.value: Tensor | None = None

    @property
    def computed(self) -> bool:
        return self.value is not None

    def __call__(self) -> Tensor:
        if self.value is None:
            self.value = task_gradients(self.losses, self.shared)
        return self.value

    def apply(self, weights: Tensor, total: Tensor) -> None:
        """Give the shared parameters Σ_t w_t g_t and every other leaf ∂total/∂leaf.

        The backward of ``total`` is restricted (``inputs=``) to the leaves of its graph
        that are not shared, so autograd prunes the shared trunk instead of computing its
        gradient a (T+1)-th time. Gradients accumulate into ``.grad`` as ``backward`` does.
        """
        grads = self()
        direction = weights.to(grads) @ grads  # (P,)
        shared_ids = {id(p) for p in self.shared}
        others = [leaf for leaf in _leaf_tensors(total) if id(leaf) not in shared_ids]
        if others:
            torch.autograd.backward(total, inputs=others)
        offset = 0
        for p in self.shared:
            g = direction[offset : offset + p.numel()].view_as(p).to(p.dtype)
            offset += p.numel()
            if p.grad is None:
                p.grad = g.clone()
            else:
                p.grad.add_(g)


# --------------------------------------------------------------------------------------
# The interface
# --------------------------------------------------------------------------------------


class WeightingStrategy(nn.Module):
    """Base class: combine per-task losses into gradients for one optimiser step.

    A strategy is an ``nn.Module`` so that learnable weights (uncertainty weighting) are
    saved in checkpoints and can be handed to the optimiser with ``parameters()``; state
    such as loss histories and random generators lives in buffers and the module's extra
    state, so ``state_dict()``/``load_state_dict()`` resume a strategy exactly.

    Subclasses either implement ``weights()`` (loss weighting: back-propagate Σ_t w_t L_t)
    or derive from ``GradientSurgery``.

    Attributes:
        task_names: the tasks, in the order the model and the history use.
        requires_grads: True when the strategy needs per-task gradients of the (last)
            shared parameters: gradient surgery and GradNorm.
        last_diagnostics: filled by ``backward(..., diagnostics=True)``, else ``{}``.
    """

    requires_grads: bool = False
    #: The run context the constructor takes as keyword arguments, besides its own options:
    #: "task_kinds" (task → "binary" / "regression") and/or "seed". :func:`make_weighting`
    #: passes exactly these, so a strategy says what it needs instead of being inspected.
    context: tuple[str, ...] = ()

    def __init__(self, task_names: Sequence[str]) -> None:
        super().__init__()
        task_names = tuple(task_names)
        if not task_names or not all(isinstance(n, str) and n for n in task_names):
            raise ValueError(f"task_names must be a non-empty sequence of names, got {task_names!r}")
        if len(set(task_names)) != len(task_names):
            raise ValueError(f"task_names must be unique, got {task_names!r}")
        self.task_names = task_names
        self.last_diagnostics: dict[str, float] = {}

    @property
    def n_tasks(self) -> int:
        return len(self.task_names)

    def weights(self, losses: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """The weight w_t of each task for a loss-weighting strategy (a 0-dim tensor each)."""
        raise NotImplementedError(f"{type(self).__name__} must implement weights() or _backward()")

    def combine(self, losses: Mapping[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        """The combined objective Σ_t w_t L_t and the weights used, as floats."""
        weights = self.weights(losses)
        total = sum(weights[name] * losses[name] for name in self.task_names)
        return total, {name: float(weights[name].detach()) for name in self.task_names}

    def backward(
        self,
        losses: Mapping[str, Tensor],
        shared_parameters: Sequence[nn.Parameter],
        *,
        last_shared_parameters: Sequence[nn.Parameter] | None = None,
        diagnostics: bool = False,
    ) -> dict[str, float]:
        """Fill ``.grad`` of all parameters for this step and return the task weights used.

        Gradients are accumulated into ``.grad`` as ``Tensor.backward`` does; the trainer
        zeroes them between steps.

        Args:
            losses: task → 0-dim loss tensor (the masked mean loss of this step).
            shared_parameters: the parameters all tasks share (``model.shared_parameters()``).
                Empty (single-task baseline): every strategy back-propagates Σ_t L_t and
                returns weight 1 per task — with nothing shared there is nothing to balance.
            last_shared_parameters: the last shared layer (``model.last_shared_parameters()``),
                where GradNorm measures gradient norms; other strategies ignore it.
            diagnostics: also compute per-task gradient norms and pairwise cosines on the
                shared parameters into ``last_diagnostics``. Free for gradient surgery;
                a loss-weighting strategy then passes through the trunk T times instead
                of once.

        Returns:
            task → weight used this step (see the module docstring for the scale).
        """
        self._check_losses(losses)
        shared = [p for p in shared_parameters if p.requires_grad]
        self.last_diagnostics = {}
        if not shared:
            sum(losses[name] for name in self.task_names).backward()
            return {name: 1.0 for name in self.task_names}

        shared_grads = _SharedGradients([losses[name] for name in self.task_names], shared)
        if diagnostics:
            self.last_diagnostics = gradient_diagnostics(self.task_names, shared_grads())
        last = [p for p in (last_shared_parameters or ()) if p.requires_grad]
        return self._backward(losses, shared, shared_grads, last)

    def _backward(
        self,
        losses: Mapping[str, Tensor],
        shared: list[nn.Parameter],
        shared_grads: _SharedGradients,
        last_shared: list[nn.Parameter],
    ) -> dict[str, float]:
        """Loss weighting: back-propagate Σ_t w_t L_t.

        One plain backward; when the per-task gradients were already computed (for
        diagnostics), the shared parameters get Σ_t w_t g_t from them and the backward
        skips the shared trunk.
        """
        total, weights = self.combine(losses)
        if shared_grads.computed:
            shared_grads.apply(torch.tensor([weights[n] for n in self.task_names]), total)
        else:
            total.backward()
        return weights

    def end_epoch(self, epoch_losses: Mapping[str, float]) -> None:
        """Called by the trainer after every epoch with each task's mean training loss."""

    def _check_losses(self, losses: Mapping[str, object], argument: str = "losses") -> None:
        missing = [name for name in self.task_names if name not in losses]
        if missing:
            raise ValueError(f"{argument} must have an entry for every task, missing {missing!r}")

    def _loss_vector(self, losses: Mapping[str, Tensor]) -> Tensor:
        """The detached losses in task order, float64 on the CPU.  # (T,)"""
        return torch.stack([losses[n].detach().double().cpu().reshape(()) for n in self.task_names])


class _SeededGenerator:
    """Mixin: a private CPU ``torch.Generator`` saved in the module's extra state."""

    context = ("seed",)
    generator: torch.Generator

    def _init_generator(self, seed: int) -> None:
        self.generator = torch.Generator().manual_seed(check_int("seed", seed))

    def get_extra_state(self) -> dict:
        return {"generator": self.generator.get_state()}

    def set_extra_state(self, state: dict) -> None:
        self.generator.set_state(state["generator"])


# --------------------------------------------------------------------------------------
# Loss weighting
# --------------------------------------------------------------------------------------


class EqualWeighting(WeightingStrategy):
    """Equal weights: L = Σ_t L_t (w_t = 1), the baseline every strategy is compared with."""

    def weights(self, losses: Mapping[str, Tensor]) -> dict[str, Tensor]:
        one = torch.ones((), device=next(iter(losses.values())).device)
        return {name: one for name in self.task_names}


class StaticWeighting(WeightingStrategy):
    """Fixed, user-chosen weights: L = Σ_t w_t L_t.

    Args:
        task_names: the tasks.
        weights: a mapping task → weight (tasks left out get weight 1), or a sequence in
            ``task_names`` order. Weights must be finite and non-negative.
    """

    def __init__(
        self, task_names: Sequence[str], weights: Mapping[str, float] | Sequence[float] | None = None
    ) -> None:
        super().__init__(task_names)
        if weights is None:
            weights = {}
        if isinstance(weights, Mapping):
            unknown = sorted(set(weights) - set(self.task_names))
            if unknown:
                raise ValueError(f"weights names unknown tasks {unknown!r}; tasks are {self.task_names!r}")
            values = [float(weights.get(name, 1.0)) for name in self.task_names]
        else:
            values = [float(w) for w in weights]
            if len(values) != len(self.task_names):
                raise ValueError(
                    f"weights must have one value per task ({len(self.task_names)}), got {len(values)}"
                )
        if not all(math.isfinite(v) and v >= 0 for v in values):
            raise ValueError(f"weights must be finite and non-negative, got {values!r}")
        self.register_buffer("static_weights", torch.tensor(values, dtype=torch.float32))

    def weights(self, losses: Mapping[str, Tensor]) -> dict[str, Tensor]:
        return {name: self.static_weights[i] for i, name in enumerate(self.task_names)}


_REGRESSION, _CLASSIFICATION = "regression", "classification"
_TASK_KINDS = {"regression": _REGRESSION, "binary": _CLASSIFICATION, "classification": _CLASSIFICATION}


class UncertaintyWeighting(WeightingStrategy):
    """Homoscedastic-uncertainty weighting (Kendall, Gal & Cipolla, CVPR 2018).

    Each task t has a learnable s_t = log σ_t² (initialised to ``init_log_var``) and

        regression:      L_t / (2σ_t²) + log σ_t  =  ½ exp(−s_t) L_t + ½ s_t
        classification:  L_t / σ_t²    + log σ_t  =    exp(−s_t) L_t + ½ s_t

    so a task whose loss stays large learns a large σ_t and is down-weighted, and the
    ½ s_t term stops σ_t from growing without bound. At the optimum over s_t,
    exp(s_t) = L_t (regression) or 2 L_t (classification): the method balances tasks by
    the *relative* size of their losses, so it is invariant to rescaling a loss.

    The s_t are ``nn.Parameter``s: the trainer adds ``strategy.parameters()`` to its
    optimiser. The weights returned are the factors in front of L_t (½ exp(−s_t) or
    exp(−s_t)); they do not sum to T.

    Args:
        task_names: the tasks.
        task_kinds: task → "regression", "binary" or "classification" (binary is the
            classification form). Tasks left out, or all tasks when None, use the
            regression form, as the official implementation does for every task.
        init_log_var: initial s_t (0 → σ_t = 1).
    """

    context = ("task_kinds",)

    def __init__(
        self,
        task_names: Sequence[str],
        task_kinds: Mapping[str, str] | None = None,
        init_log_var: float = 0.0,
    ) -> None:
        super().__init__(task_names)
        task_kinds = dict(task_kinds or {})
        unknown = sorted(set(task_kinds) - set(self.task_names))
        if unknown:
            raise ValueError(f"task_kinds names unknown tasks {unknown!r}; tasks are {self.task_names!r}")
        bad = {name: kind for name, kind in task_kinds.items() if kind not in _TASK_KINDS}
        if bad:
            raise ValueError(f"task_kinds values must be one of {sorted(_TASK_KINDS)}, got {bad!r}")
        init_log_var = check_number("init_log_var", init_log_var)
        self.task_kinds = {n: _TASK_KINDS[task_kinds.get(n, _REGRESSION)] for n in self.task_names}
        # factor c_t in c_t exp(−s_t) L_t: ½ for regression, 1 for classification
        factors = [0.5 if self.task_kinds[n] == _REGRESSION else 1.0 for n in self.task_names]
        self.register_buffer("loss_factors", torch.tensor(factors))
        self.log_vars = nn.Parameter(torch.full((self.n_tasks,), init_log_var))  # s_t = log σ_t²

    def weights(self, losses: Mapping[str, Tensor]) -> dict[str, Tensor]:
        precision = self.loss_factors * torch.exp(-self.log_vars)  # (T,)
        return {name: precision[i] for i, name in enumerate(self.task_names)}

    def combine(self, losses: Mapping[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        total, weights = super().combine(losses)
        return total + 0.5 * self.log_vars.sum(), weights


class DynamicWeightAverage(WeightingStrategy):
    """Dynamic Weight Average (Liu, Johns & Davison, CVPR 2019).

        w_t(e) = T · exp(r_t(e−1)/τ) / Σ_i exp(r_i(e−1)/τ),   r_t(e−1) = L_t(e−1) / L_t(e−2)

    where L_t(e) is task t's mean training loss in epoch e and τ the temperature (the
    paper's "T"; larger = more uniform). A task whose loss fell less in the last epoch
    (larger ratio) gets more weight. w_t = 1 for the first two epochs, before two losses
    are known. Driven by ``end_epoch``, which the trainer calls after every epoch; the
    weights sum to T.

    Args:
        task_names: the tasks.
        temperature: τ > 0 (2 in the paper).
    """

    def __init__(self, task_names: Sequence[str], temperature: float = 2.0) -> None:
        super().__init__(task_names)
        self.temperature = check_number("temperature", temperature, low=0, low_open=True)
        self.register_buffer("loss_history", torch.ones(2, self.n_tasks, dtype=torch.float64))  # (e−2, e−1)
        self.register_buffer("epochs_seen", torch.zeros((), dtype=torch.long))
        self.register_buffer("current_weights", torch.ones(self.n_tasks))

    def weights(self, losses: Mapping[str, Tensor]) -> dict[str, Tensor]:
        return {name: self.current_weights[i] for i, name in enumerate(self.task_names)}

    def end_epoch(self, epoch_losses: Mapping[str, float]) -> None:
        self._check_losses(epoch_losses, "epoch_losses")
        latest = torch.tensor([float(epoch_losses[n]) for n in self.task_names], dtype=torch.float64)
        self.loss_history[0] = self.loss_history[1]
        self.loss_history[1] = latest
        self.epochs_seen += 1
        if int(self.epochs_seen) >= 2:
            ratio = self.loss_history[1] / self.loss_history[0].clamp_min(1e-12)  # r_t(e−1)
            weights = self.n_tasks * torch.softmax(ratio / self.temperature, dim=0)
            self.current_weights.copy_(weights.float())


class RandomLossWeighting(_SeededGenerator, WeightingStrategy):
    """Random Loss Weighting (Lin, Ye, Xu, Shi & Zhang, TMLR 2022; arXiv 2021).

        λ̃ ~ N(0, I_T),   λ = softmax(λ̃),   w_t = T · λ_t   (drawn afresh every step)

    The paper's weights sum to 1; they are multiplied by T here so that, on average, the
    step has the scale of equal weighting. The draw uses a private generator seeded with
    ``seed``, saved in the state dict, so a resumed run draws the same weights.

    Args:
        task_names: the tasks.
        seed: seed of the generator.
    """

    def __init__(self, task_names: Sequence[str], seed: int = 0) -> None:
        super().__init__(task_names)
        self._init_generator(seed)

    def weights(self, losses: Mapping[str, Tensor]) -> dict[str, Tensor]:
        device = next(iter(losses.values())).device
        logits = torch.randn(self.n_tasks, generator=self.generator)
        weights = (self.n_tasks * torch.softmax(logits, dim=0)).to(device)  # (T,)
        return {name: weights[i] for i, name in enumerate(self.task_names)}


class GradNorm(WeightingStrategy):
    """GradNorm (Chen, Badrinarayanan, Lee & Rabinovich, ICML 2018).

    Learnable weights w_t scale the losses, L = Σ_t w_t L_t. At the last shared layer W,
    with G_t = ‖∇_W (w_t L_t)‖ = w_t ‖∇_W L_t‖, GradNorm pulls every G_t towards a target
    that grows with how slowly the task trains:

        L̃_t = L_t / L_t(0),   r_t = L̃_t / mean_i L̃_i,   target_t = mean_i G_i · r_t^α
        L_grad = Σ_t |G_t − target_t|          (target held constant)

    After the network's backward, the weights take one gradient step on L_grad,
    w ← w − lr · ∂L_grad/∂w with ∂L_grad/∂w_t = sign(G_t − target_t) ‖∇_W L_t‖, are
    clipped to stay positive (≥ 1e-4) and renormalised to Σ_t w_t = T. The weights are
    buffers, not parameters: they are trained only through L_grad, never through the main
    loss, and the trainer's optimiser does not see them. L_t(0) is the loss of the first
    step. α ("asymmetry") sets how strongly slow tasks are favoured.

    W is ``last_shared_parameters`` as the paper prescribes; when the caller passes none,
    all shared parameters are used instead (more expensive, same idea).

    Args:
        task_names: the tasks.
        alpha: asymmetry α ≥ 0 (1.5 in the paper's NYUv2 experiments).
        lr: step size of the weights' own gradient step.
    """

    requires_grads = True
    min_weight = 1e-4

    def __init__(self, task_names: Sequence[str], alpha: float = 1.5, lr: float = 0.025) -> None:
        super().__init__(task_names)
        self.alpha = check_number("alpha", alpha, low=0)
        self.lr = check_number("lr", lr, low=0, low_open=True)
        self.register_buffer("loss_weights", torch.ones(self.n_tasks))
        self.register_buffer("initial_losses", torch.ones(self.n_tasks, dtype=torch.float64))
        self.register_buffer("initialised", torch.zeros((), dtype=torch.bool))

    def weights(self, losses: Mapping[str, Tensor]) -> dict[str, Tensor]:
        return {name: self.loss_weights[i] for i, name in enumerate(self.task_names)}

    def _backward(self, losses, shared, shared_grads, last_shared) -> dict[str, float]:
        if last_shared:
            layer_grads = task_gradients([losses[n] for n in self.task_names], last_shared)
        else:  # fall back to all shared parameters, reusing the diagnostics' gradients
            layer_grads = shared_grads()
        grad_norms = layer_grads.norm(dim=1).double().cpu()  # ‖∇_W L_t‖  (T,)
        weights = super()._backward(losses, shared, shared_grads, last_shared)
        self._update_weights(self._loss_vector(losses), grad_norms)
        return weights

    @torch.no_grad()
    def _update_weights(self, losses: Tensor, grad_norms: Tensor) -> None:
        """One step on L_grad; ``losses`` and ``grad_norms`` are float64 CPU tensors (T,)."""
        if not bool(self.initialised):
            self.initial_losses.copy_(losses)
            self.initialised.fill_(True)
        relative = losses / self.initial_losses.cpu().clamp_min(1e-12)  # L̃_t
        rate = relative / relative.mean().clamp_min(1e-12)  # r_t
        w = self.loss_weights.double().cpu()
        norms = w * grad_norms  # G_t
        target = norms.mean() * rate**self.alpha
        w = w - self.lr * torch.sign(norms - target) * grad_norms
        w = w.clamp_min(self.min_weight)
        self.loss_weights.copy_(self.n_tasks * w / w.sum())


# --------------------------------------------------------------------------------------
# Gradient surgery: solvers on the T×T Gram matrix, then the strategies
# --------------------------------------------------------------------------------------


def min_norm_two(gram: np.ndarray) -> np.ndarray:
    """Closed-form min-norm point of the segment [g_1, g_2] (Sener & Koltun, 2018, Alg. 1).

        α = clip( (g_2 − g_1)·g_2 / ‖g_1 − g_2‖², 0, 1 ),   d = α g_1 + (1 − α) g_2

    Args:
        gram: (2, 2) Gram matrix, gram[i, j] = g_i·g_j.

    Returns:
        (2,) weights (α, 1 − α).
    """
    g11, g12, g22 = float(gram[0, 0]), float(gram[0, 1]), float(gram[1, 1])
    denominator = g11 + g22 - 2.0 * g12  # ‖g_1 − g_2‖²
    if denominator <= 1e-12 * (g11 + g22):  # g_1 = g_2: every α is optimal
        alpha = 0.5
    else:
        alpha = float(np.clip((g22 - g12) / denominator, 0.0, 1.0))
    return np.array([alpha, 1.0 - alpha])


def min_norm_frank_wolfe(gram: np.ndarray, max_iter: int = 250, tol: float = 1e-8) -> np.ndarray:
    """Min-norm point of the convex hull of T gradients by Frank-Wolfe (Sener & Koltun, 2018, Alg. 2).

        min_α f(α) = ‖Σ_t α_t g_t‖² = αᵀ (G Gᵀ) α   s.t.  α ≥ 0, Σ_t α_t = 1

    From uniform α, each iteration looks at the current point d = Σ_t α_t g_t and

    * the Frank-Wolfe vertex s = argmin_t g_t·d (the gradient most opposed to d; the paper's
      step moves towards it), and
    * the away vertex v = argmax_{t: α_t > 0} g_t·d (the worst gradient still in use),

    takes whichever direction, e_s − α or α − e_v, descends faster, and line-searches it
    exactly (f is quadratic). The away steps (Lacoste-Julien & Jaggi, NeurIPS 2015) let
    weights drop to zero and give linear convergence; plain Frank-Wolfe zig-zags at O(1/k)
    when the min-norm point lies inside a face. With two tasks the first step is already
    the closed form. Stops when the duality gap d·d − g_s·d, an upper bound on
    f(α) − min f, is below ``tol`` · max_t ‖g_t‖², or after ``max_iter`` iterations.

    Args:
        gram: (T, T) Gram matrix G Gᵀ.

    Returns:
        (T,) weights α on the simplex.
    """
    n = gram.shape[0]
    alpha = np.full(n, 1.0 / n)
    scale = float(np.max(np.diag(gram)))  # max_t ‖g_t‖²
    for _ in range(max_iter):
        gram_alpha = gram @ alpha  # (T,) g_t·d
        norm2 = float(alpha @ gram_alpha)  # ‖d‖²
        s = int(np.argmin(gram_alpha))
        gap = norm2 - float(gram_alpha[s])
        if gap <= tol * scale:
            break
        active = np.flatnonzero(alpha > 0)
        v = int(active[np.argmax(gram_alpha[active])])
        if gap >= float(gram_alpha[v]) - norm2 or alpha[v] >= 1.0:
            direction = -alpha.copy()
            direction[s] += 1.0  # e_s − α
            step_max = 1.0
        else:
            direction = alpha.copy()
            direction[v] -= 1.0  # α − e_v
            step_max = alpha[v] / (1.0 - alpha[v])
        curvature = float(direction @ gram @ direction)  # ‖G d‖²
        slope = float(gram_alpha @ direction)  # ½ f'(0) < 0
        step = step_max if curvature <= 0.0 else min(step_max, -slope / curvature)
        alpha = np.clip(alpha + step * direction, 0.0, None)
        alpha /= alpha.sum()
    return alpha


def min_norm_weights(gram: np.ndarray, max_iter: int = 250, tol: float = 1e-8) -> np.ndarray:
    """Min-norm weights: the closed form for two tasks, Frank-Wolfe for more."""
    if gram.shape[0] == 1:
        return np.ones(1)
    if gram.shape[0] == 2:
        return min_norm_two(gram)
    return min_norm_frank_wolfe(gram, max_iter=max_iter, tol=tol)


def pcgrad_coefficients(gram: np.ndarray, orders: Sequence[Sequence[int]]) -> np.ndarray:
    """PCGrad's projected gradients as combinations of the original ones (Yu et al., 2020).

    For each task i, for each other task j in ``orders[i]``:

        if g_i^PC · g_j < 0:   g_i^PC ← g_i^PC − (g_i^PC · g_j) / ‖g_j‖² · g_j

    (projection onto the normal plane of the *original* g_j). Every g_i^PC stays a linear
    combination Σ_k C[i, k] g_k of the original gradients, so the whole procedure runs on
    the Gram matrix: g_i^PC · g_j = C[i] · gram[:, j].

    Args:
        gram: (T, T) Gram matrix G Gᵀ.
        orders: for each task i, the other tasks in the order to project against.

    Returns:
        C: (T, T) with g_i^PC = Σ_k C[i, k] g_k, i.e. projected = C @ G.
    """
    coefficients = np.eye(gram.shape[0])
    for i, order in enumerate(orders):
        for j in order:
            dot = float(coefficients[i] @ gram[:, j])  # g_i^PC · g_j
            if dot < 0.0 and gram[j, j] > 0.0:
                coefficients[i, j] -= dot / gram[j, j]
    return coefficients


def cagrad_weights(gram: np.ndarray, c: float) -> np.ndarray:
    """Conflict-Averse Gradient descent (Liu, Liu, Jin, Stone & Liu, NeurIPS 2021).

    CAGrad looks for the update d, within a ball around the mean gradient g_0, that
    maximises the worst task's improvement: max_d min_t g_tᵀd s.t. ‖d − g_0‖ ≤ c‖g_0‖.
    Its dual gives the closed form

        d = g_0 + (√φ / ‖g_w‖) g_w,   φ = c² ‖g_0‖²,   g_w = Σ_t w_t g_t,
        w = argmin_{w ∈ simplex}  g_wᵀ g_0 + √φ ‖g_w‖.

    The T-dimensional problem is solved on the Gram matrix, first divided by its mean
    diagonal (w is invariant to the gradients' scale; solver tolerances are not): exactly
    for two tasks (``_cagrad_two``), with SLSQP for more (the official code's
    ``scipy.optimize.minimize``). As in the official implementation (``rescale=1``) the
    update is d / (1 + c²), so c = 0 gives the mean gradient g_0.

    Args:
        gram: (T, T) Gram matrix G Gᵀ.
        c: c ≥ 0, the radius of the ball relative to ‖g_0‖.

    Returns:
        (T,) coefficients β with d / (1 + c²) = Σ_t β_t g_t (mean scale: Σ β = 1 when c = 0).
    """
    n = gram.shape[0]
    uniform = np.full(n, 1.0 / n)
    scale = float(np.mean(np.diag(gram)))
    if c == 0.0 or scale <= 0.0:
        return uniform
    a = gram / scale
    b = a @ uniform  # (T,) g_t·g_0, so g_wᵀg_0 = w·b
    sqrt_phi = c * math.sqrt(max(float(uniform @ b), 0.0))  # c ‖g_0‖
    if sqrt_phi == 0.0:
        return uniform
    w = _cagrad_two(a, b, sqrt_phi) if n == 2 else _cagrad_slsqp(a, b, sqrt_phi)
    gw_norm = math.sqrt(max(float(w @ a @ w), 0.0))
    lam = sqrt_phi / gw_norm if gw_norm > 1e-12 else 0.0  # g_w = 0: d = g_0
    return (uniform + lam * w) / (1.0 + c**2)


def _cagrad_two(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    """Exact minimiser of F(γ) = g_γ·g_0 + k‖g_γ‖ over g_γ = γ g_1 + (1 − γ) g_2, γ ∈ [0, 1].

    With u = p γ + q, p = ‖g_1 − g_2‖², q = (g_1 − g_2)·g_2, h = p‖g_2‖² − q² ≥ 0, one has
    ‖g_γ‖² = (u² + h)/p and F'(γ) = Δ + k √p u/√(u² + h), Δ = (g_1 − g_2)·g_0. F is convex.
    With m = −Δ/k, F' = 0 at u = sign(m) √(m² h / (p − m²)) when m² < p; otherwise F is
    monotone on [0, 1] and the minimum is at an end. The stationary γ is clipped to [0, 1].
    """
    p = float(a[0, 0] + a[1, 1] - 2.0 * a[0, 1])
    q = float(a[0, 1] - a[1, 1])
    delta = float(b[0] - b[1])
    if p <= 1e-12:  # g_1 = g_2: F is linear in γ
        gamma = 0.5 if delta == 0.0 else float(delta < 0.0)
    else:
        h = max(p * float(a[1, 1]) - q * q, 0.0)
        m = -delta / k  # target value of u √p / √(u² + h), which lies in (−√p, √p)
        if m * m >= p:
            gamma = float(m > 0.0)
        else:
            u = math.copysign(math.sqrt(m * m * h / (p - m * m)), m)
            gamma = float(np.clip((u - q) / p, 0.0, 1.0))
    return np.array([gamma, 1.0 - gamma])


def _cagrad_slsqp(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    """argmin_{w ∈ simplex} w·b + k √(wᵀ a w), by SLSQP from the uniform weights."""
    from scipy.optimize import minimize  # scipy comes with scikit-learn

    n = a.shape[0]

    def objective(w: np.ndarray) -> tuple[float, np.ndarray]:
        aw = a @ w
        norm = math.sqrt(float(w @ aw) + 1e-12)  # ‖g_w‖, smoothed where g_w = 0
        return float(w @ b) + k * norm, b + k * aw / norm

    result = minimize(
        objective,
        np.full(n, 1.0 / n),
        jac=True,
        method="SLSQP",
        bounds=[(0.0, 1.0)] * n,
        constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1.0, "jac": lambda w: np.ones(n)}],
        options={"ftol": 1e-12, "maxiter": 200},
    )
    w = np.clip(result.x, 0.0, None)
    return w / w.sum()


class GradientSurgery(WeightingStrategy):
    """Base of strategies that combine the per-task gradients of the shared parameters.

    A subclass implements ``gradient_weights(gram, losses) -> w`` (T,) on the Gram matrix
    G Gᵀ of the task gradients; the shared parameters receive Σ_t w_t g_t, the other
    (task-specific) parameters the gradient of Σ_t L_t — see the module docstring for why
    and for the cost (T partial backward passes, no second trunk pass).
    """

    requires_grads = True

    def gradient_weights(self, gram: np.ndarray, losses: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _backward(self, losses, shared, shared_grads, last_shared) -> dict[str, float]:
        grads = shared_grads()  # (T, P)
        gram = (grads @ grads.T).double().cpu().numpy()  # (T, T)
        weights = self.gradient_weights(gram, self._loss_vector(losses).numpy())  # (T,)
        shared_grads.apply(torch.from_numpy(weights), sum(losses[name] for name in self.task_names))
        return {name: float(weights[i]) for i, name in enumerate(self.task_names)}


class PCGrad(_SeededGenerator, GradientSurgery):
    """Projecting Conflicting Gradients (Yu, Kumar, Gupta, Levine, Hausman & Finn, NeurIPS 2020).

    For each task i, for each other task j in a random order:

        if g_i · g_j < 0:   g_i ← g_i − (g_i · g_j) / ‖g_j‖² · g_j

    projecting g_i onto the normal plane of the *original* g_j it conflicts with; the update
    is the sum Σ_i g_i^PC (equal-weighting scale). Non-conflicting gradients are untouched.
    The returned weight of task k is Σ_i C[i, k] (see ``pcgrad_coefficients``): the
    coefficient of the original g_k in the update. Orders are drawn from a private
    generator seeded with ``seed`` and saved in the state dict.

    Args:
        task_names: the tasks.
        seed: seed of the generator for the random orders.
    """

    def __init__(self, task_names: Sequence[str], seed: int = 0) -> None:
        super().__init__(task_names)
        self._init_generator(seed)

    def gradient_weights(self, gram: np.ndarray, losses: np.ndarray) -> np.ndarray:
        n = self.n_tasks
        orders = []
        for i in range(n):
            others = [j for j in range(n) if j != i]
            permutation = torch.randperm(n - 1, generator=self.generator).tolist()
            orders.append([others[k] for k in permutation])
        return pcgrad_coefficients(gram, orders).sum(axis=0)


_MGDA_NORMALIZATIONS = ("none", "l2", "loss", "loss+")


class MGDA(GradientSurgery):
    """Multiple-Gradient Descent Algorithm (Sener & Koltun, NeurIPS 2018).

    The update is the min-norm point of the convex hull of the task gradients,

        d = Σ_t α_t g_t,   α = argmin_{α ∈ simplex} ‖Σ_t α_t g_t‖²,

    which is zero exactly at Pareto-stationary points and otherwise decreases every task.
    Two tasks use the closed form α_1 = clip((g_2 − g_1)·g_2 / ‖g_1 − g_2‖², 0, 1); more
    tasks use Frank-Wolfe (``min_norm_frank_wolfe``).

    Gradient normalisation, as in the paper's code: α is solved for g_t / s_t with
    s_t = 1 ("none"), ‖g_t‖ ("l2"), L_t ("loss") or L_t ‖g_t‖ ("loss+"), and then applied to
    the *raw* gradients (the paper back-propagates Σ_t α_t L_t). Weights are returned as
    T · α (equal-weighting scale; the paper's α sums to 1).

    This is MGDA on the shared parameters, not the representation-level upper bound
    (MGDA-UB) that the paper uses for speed.

    Args:
        task_names: the tasks.
        normalization: "none" (default), "l2", "loss" or "loss+".
        max_iter: Frank-Wolfe iterations at most (more than two tasks).
        tol: Frank-Wolfe stops when its duality gap is below tol · max_t ‖g_t‖².
    """

    def __init__(
        self,
        task_names: Sequence[str],
        normalization: str = "none",
        max_iter: int = 250,
        tol: float = 1e-8,
    ) -> None:
        super().__init__(task_names)
        if normalization not in _MGDA_NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {_MGDA_NORMALIZATIONS!r}, got {normalization!r}")
        self.normalization = normalization
        self.max_iter = check_int("max_iter", max_iter, low=1)
        self.tol = check_number("tol", tol, low=0, low_open=True)

    def gradient_weights(self, gram: np.ndarray, losses: np.ndarray) -> np.ndarray:
        norms = np.sqrt(np.clip(np.diag(gram), 0.0, None))
        scale = {"none": np.ones_like(norms), "l2": norms, "loss": losses, "loss+": losses * norms}
        s = np.clip(scale[self.normalization], 1e-12, None)
        alpha = min_norm_weights(gram / np.outer(s, s), max_iter=self.max_iter, tol=self.tol)
        return self.n_tasks * alpha


class CAGrad(GradientSurgery):
    """Conflict-Averse Gradient descent (Liu, Liu, Jin, Stone & Liu, NeurIPS 2021).

        d = g_0 + (√φ / ‖g_w‖) g_w,   φ = c² ‖g_0‖²,   g_0 = (1/T) Σ_t g_t,
        w = argmin_{w ∈ simplex} g_wᵀ g_0 + √φ ‖g_w‖,     update = T · d / (1 + c²)

    (``cagrad_weights`` solves for w). The division by 1 + c² is the official
    implementation's default rescaling; the factor T puts the update on the scale of the
    loss sum, as the official code does ("to match the sum loss"). With c = 0 the update is
    Σ_t g_t, equal weighting; larger c moves towards the worst-off task (MGDA-like).

    The reported task weights are the coefficients of the update, T (1/T + √φ w_t / ‖g_w‖) / (1 + c²).
    Unlike the loss-weighting strategies they do not sum to T but to
    T (1 + c ‖g_0‖ / ‖g_w‖) / (1 + c²), which exceeds T whenever ‖g_w‖ < ‖g_0‖ / c: the usual
    case when the worst-off combination g_w is short (near-orthogonal or unequal gradients).

    Args:
        task_names: the tasks.
        c: c ≥ 0 (0.4 in the paper's multi-task supervised experiments).
    """

    def __init__(self, task_names: Sequence[str], c: float = 0.4) -> None:
        super().__init__(task_names)
        self.c = check_number("c", c, low=0)

    def gradient_weights(self, gram: np.ndarray, losses: np.ndarray) -> np.ndarray:
        return self.n_tasks * cagrad_weights(gram, self.c)


# --------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------

WEIGHTINGS: dict[str, type[WeightingStrategy]] = {
    "equal": EqualWeighting,
    "static": StaticWeighting,
    "uncertainty": UncertaintyWeighting,
    "dwa": DynamicWeightAverage,
    "gradnorm": GradNorm,
    "rlw": RandomLossWeighting,
    "pcgrad": PCGrad,
    "mgda": MGDA,
    "cagrad": CAGrad,
}


def make_weighting(
    name: str,
    task_names: Sequence[str],
    *,
    task_kinds: Mapping[str, str] | None = None,
    seed: int = 0,
    **options,
) -> WeightingStrategy:
    """Build the strategy registered as ``name`` (see ``WEIGHTINGS``) for these tasks.

    Args:
        name: a key of ``WEIGHTINGS``.
        task_names: the tasks, in model order.
        task_kinds: task → "binary" / "regression", given to strategies whose formula depends
            on it (uncertainty weighting); the others ignore it.
        seed: seed of the strategies that draw at random (RLW's weights, PCGrad's orders).
        **options: the strategy's own arguments (e.g. ``temperature`` for DWA); an argument it
            does not take is a TypeError that names it and lists the ones it takes.
    """
    if name not in WEIGHTINGS:
        raise ValueError(f"weighting must be one of {sorted(WEIGHTINGS)}, got {name!r}")
    cls = WEIGHTINGS[name]
    # The signature is read only to name the accepted options in the error message.
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "task_names", *cls.context)]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise TypeError(f"weighting {name!r} got unexpected argument(s) {unknown}; it accepts {accepted}")
    context = {"task_kinds": task_kinds, "seed": seed}
    return cls(task_names, **{key: context[key] for key in cls.context}, **options)
