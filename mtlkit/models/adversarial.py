"""Adversarial tasks: a gradient-reversal layer and an adversary head on the shared representation.

An *adversarial* task is one the shared representation must fail at. The adversary — a small
classifier — tries to recover a protected or nuisance attribute a (a user's gender, a "bot"
flag) from the shared features h = encoder(x); the encoder is trained to serve the real tasks
*and* to defeat the adversary (Ganin & Lempitsky, ICML 2015, "Unsupervised Domain Adaptation by
Backpropagation"; Ganin et al., JMLR 2016, "Domain-Adversarial Training of Neural Networks"):

    min_{θ_adv}  L_adv(θ_enc, θ_adv)                       the adversary learns to predict a
    min_{θ_enc}  Σ_t L_t(θ_enc) − λ · L_adv(θ_enc, θ_adv)  the encoder learns to hide a

Both are one ordinary gradient step with a *gradient-reversal layer* R_λ between encoder and
adversary:

    forward:  R_λ(h) = h                 backward:  ∂L/∂h ← −λ · ∂L/∂h

so the adversary head receives the gradient of L_adv as usual, and the encoder receives it
multiplied by −λ (it climbs the adversary's loss). λ = 0 trains an adversary that only
*measures* how recoverable the attribute is; larger λ trades main-task accuracy for privacy.
The measurement that matters is the adversary's AUC on users whose attribute it never saw in
training: 0.5 means the attribute cannot be recovered from the representation (by this
adversary — a stronger probe trained afterwards may still find it).

:class:`Adversary` attaches a head to any model of :mod:`mtlkit.models` by reading the output of
its ``encoder`` submodule (the representation every task shares) with a forward hook, so the
models need no change; :class:`mtlkit.training.Trainer` adds its loss when
``TrainConfig.adversary`` names the attribute.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mtlkit.models.experts import MLP

__all__ = [
    "ADVERSARY_ATTRIBUTES",
    "Adversary",
    "AdversaryHead",
    "GradientReversal",
    "GradientReversalFunction",
    "gradient_reversal",
    "heldout_users",
]

#: Short names of the protected attributes → their batch keys (bool (B,) tensors).
ADVERSARY_ATTRIBUTES = {"bot": "is_bot", "gender": "is_female"}


def _check_strength(strength: Any) -> float:
    if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not strength >= 0:
        raise ValueError(f"strength must be a number >= 0, got {strength!r}")
    return float(strength)


class GradientReversalFunction(torch.autograd.Function):
    """R_λ: the identity forward, ``−λ ×`` the incoming gradient backward (Ganin & Lempitsky, 2015)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, strength: float) -> Tensor:
        ctx.strength = strength
        return x.view_as(x)  # a new tensor node, same values

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor, None]:
        return -ctx.strength * grad_output, None  # no gradient for λ


def gradient_reversal(x: Tensor, strength: float = 1.0) -> Tensor:
    """R_λ(x): ``x`` forward; the gradient flowing back through it is multiplied by ``−strength``."""
    return GradientReversalFunction.apply(x, _check_strength(strength))


class GradientReversal(nn.Module):
    """The gradient-reversal layer as a module; ``strength`` (λ >= 0) may be changed between steps."""

    def __init__(self, strength: float = 1.0) -> None:
        super().__init__()
        self.strength = _check_strength(strength)

    def forward(self, x: Tensor) -> Tensor:
        return GradientReversalFunction.apply(x, self.strength)

    def extra_repr(self) -> str:
        return f"strength={self.strength}"


class AdversaryHead(nn.Module):
    """R_λ → MLP → one logit: predicts a binary attribute from a representation ``(B, in_dim)``.

    Args:
        in_dim: width of the representation.
        hidden: hidden layer sizes of the adversary's MLP (empty: a linear probe).
        strength: λ of the gradient-reversal layer.
        dropout: dropout in the MLP.
    """

    def __init__(self, in_dim: int, hidden: Sequence[int] = (32,), *, strength: float = 1.0,
                 dropout: float = 0.0) -> None:
        super().__init__()
        if isinstance(in_dim, bool) or not isinstance(in_dim, int) or in_dim <= 0:
            raise ValueError(f"in_dim must be a positive int, got {in_dim!r}")
        self.reversal = GradientReversal(strength)
        self.mlp = MLP(in_dim, tuple(hidden), out_dim=1, dropout=dropout)

    @property
    def strength(self) -> float:
        return self.reversal.strength

    def forward(self, representation: Tensor) -> Tensor:  # (B, in_dim) -> (B,) logits
        return self.mlp(self.reversal(representation)).squeeze(-1)


def heldout_users(users: Tensor, holdout_every: int) -> Tensor:
    """True for the users the adversary never trains on: index % ``holdout_every`` == 0
    (this includes the unknown user 0)."""
    return users % holdout_every == 0


class Adversary(nn.Module):
    """An :class:`AdversaryHead` on a model's shared representation (the output of ``model.encoder``).

    A forward hook keeps the encoder output of the model's last forward; :meth:`loss` then
    scores it with the head. Users with ``index % holdout_every == 0`` are *held out*: their
    rows never enter the adversary's loss, and :meth:`mtlkit.training.Trainer.evaluate_adversary`
    measures the adversary's AUC on them.

    Args:
        model: a multi-task model with an ``encoder`` submodule that has ``out_dim``.
        attribute: the batch key of the attribute (a bool/0-1 tensor (B,)), or a short name of
            :data:`ADVERSARY_ATTRIBUTES` (``"bot"``, ``"gender"``).
        strength: λ of the gradient reversal.
        hidden: the adversary MLP's hidden sizes.
        holdout_every: every k-th user is held out from the adversary's training (k >= 2).
    """

    def __init__(self, model: nn.Module, attribute: str, *, strength: float = 1.0,
                 hidden: Sequence[int] = (32,), holdout_every: int = 5) -> None:
        super().__init__()
        encoder = getattr(model, "encoder", None)
        if not isinstance(encoder, nn.Module) or not isinstance(getattr(encoder, "out_dim", None), int):
            raise ValueError(
                f"model must have an `encoder` submodule with an int `out_dim` (the shared representation), "
                f"got {type(model).__name__}"
            )
        if not isinstance(attribute, str) or not attribute:
            raise ValueError(f"attribute must be a batch key or one of {list(ADVERSARY_ATTRIBUTES)}, got {attribute!r}")
        if isinstance(holdout_every, bool) or not isinstance(holdout_every, int) or holdout_every < 2:
            raise ValueError(f"holdout_every must be an int >= 2, got {holdout_every!r}")
        self.attribute = attribute
        self.key = ADVERSARY_ATTRIBUTES.get(attribute, attribute)
        self.holdout_every = holdout_every
        self.head = AdversaryHead(encoder.out_dim, hidden, strength=strength)
        self._representation: Tensor | None = None
        # The hook holds the adversary; keep it out of the model's state dict and modules.
        self._hook = encoder.register_forward_hook(self._keep)

    def _keep(self, module: nn.Module, inputs: Any, output: Tensor) -> None:
        self._representation = output

    def remove(self) -> None:
        """Detach the hook from the model (the adversary stops seeing new forwards)."""
        self._hook.remove()

    @property
    def strength(self) -> float:
        return self.head.strength

    def logits(self) -> Tensor:
        """The adversary's logits ``(B,)`` for the model's last forward."""
        if self._representation is None:
            raise RuntimeError("the adversary has seen no forward of the model yet; call model(batch) first")
        return self.head(self._representation.float())

    def loss(self, batch: dict[str, Tensor]) -> Tensor:
        """BCE of the adversary on the last forward, over the rows of non-held-out users.

        Its gradient reaches the head unchanged and the encoder multiplied by −λ.
        """
        target = batch[self.key].float()  # (B,)
        train_rows = ~heldout_users(batch["user"], self.holdout_every)  # (B,)
        losses = F.binary_cross_entropy_with_logits(self.logits(), target, reduction="none")  # (B,)
        return (losses * train_rows).sum() / train_rows.sum().clamp(min=1)
