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
The measurement that matters is the attribute's AUC on users whose attribute was never seen in
training: 0.5 means the attribute cannot be recovered from the representation.

The adversary's own AUC is a poor witness of that. The head chases a moving encoder: at large λ
the encoder can *flip* the signal faster than the head follows, and the head's AUC falls below
0.5 — which means the attribute is still there, with the sign reversed. Elazar & Goldberg
(EMNLP 2018, "Adversarial Removal of Demographic Attributes from Text Data") found that while
the adversary reached chance level during training, a *post-hoc* classifier trained on the
frozen representations still recovered the demographic attribute well above chance.
:func:`probe_auc` (and :meth:`mtlkit.training.Trainer.probe_adversary`) is that check: freeze
the model, fit a fresh classifier on the representations of the users the adversary trained
on, and score it on the held-out users — new users, since a probe scored on the rows it was
fitted to can find correlations specific to that sample (Barrett, Kementchedjhieva, Elazar,
Elliott & Søgaard, EMNLP 2019, "Adversarial Removal of Demographic Attributes Revisited").

:class:`Adversary` attaches a head to any model of :mod:`mtlkit.models` by reading the output of
its ``encoder`` submodule (the representation every task shares) with a forward hook, so the
models need no change; :class:`mtlkit.training.Trainer` adds its loss when
``TrainConfig.adversary`` names the attribute.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mtlkit import metrics
from mtlkit.models.experts import MLP

__all__ = [
    "ADVERSARY_ATTRIBUTES",
    "PROBES",
    "Adversary",
    "AdversaryHead",
    "GradientReversal",
    "GradientReversalFunction",
    "gradient_reversal",
    "heldout_users",
    "probe_auc",
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

    @property
    def representation(self) -> Tensor:
        """The shared representation ``(B, out_dim)`` of the model's last forward (the head's input)."""
        if self._representation is None:
            raise RuntimeError("the adversary has seen no forward of the model yet; call model(batch) first")
        return self._representation

    def logits(self) -> Tensor:
        """The adversary's logits ``(B,)`` for the model's last forward."""
        return self.head(self.representation.float())

    def loss(self, batch: dict[str, Tensor]) -> Tensor:
        """BCE of the adversary on the last forward, over the rows of non-held-out users.

        Its gradient reaches the head unchanged and the encoder multiplied by −λ.
        """
        target = batch[self.key].float()  # (B,)
        train_rows = ~heldout_users(batch["user"], self.holdout_every)  # (B,)
        losses = F.binary_cross_entropy_with_logits(self.logits(), target, reduction="none")  # (B,)
        return (losses * train_rows).sum() / train_rows.sum().clamp(min=1)


#: Post-hoc probes of :func:`probe_auc`.
PROBES = ("linear", "mlp")


def probe_auc(train_features: Any, train_target: Any, eval_features: Any, eval_target: Any, *,
              probe: str = "linear", seed: int = 0) -> float:
    """Fit a fresh classifier of the attribute on frozen representations; return its held-out AUC.

    The post-hoc check of Elazar & Goldberg (EMNLP 2018): an adversary at chance level does not
    prove the attribute is gone, so a new classifier ("attacker"), trained after the model is
    frozen, tries again. It is fitted on one set of users and scored on others — the held-out
    users — so its AUC measures what the representation gives away about *new* users (Barrett
    et al., EMNLP 2019). 0.5: not recoverable by this probe; 1: perfectly recoverable. The probe
    is fitted once the encoder has stopped moving, so it learns whichever sign the signal has:
    a flipped signal, which drives the adversary head's AUC below 0.5, still scores high here.

    Probes (features standardised first, so the regularisation treats every dimension alike):

    * ``"linear"``: L2-regularised logistic regression, p(a=1 | h) = σ(wᵀh + b). It finds only
      linearly decodable information; an attribute can survive non-linearly (Ravfogel, Vargas,
      Goldberg & Cotterell, 2022, "Adversarial Concept Erasure in Kernel Space").
    * ``"mlp"``: one hidden layer of 64 ReLU units (sklearn ``MLPClassifier``, Adam, early
      stopping on 10% of the fitting rows), which can find non-linear leakage. Neither probe is
      the strongest possible attacker: an AUC near 0.5 is evidence, not proof, of removal.

    Args:
        train_features: (n, d) representations of the fitting users' rows.
        train_target: (n,) 0/1 attribute of those rows (both classes present).
        eval_features: (m, d) representations of the held-out users' rows.
        eval_target: (m,) 0/1 attribute of those rows.
        probe: one of :data:`PROBES`.
        seed: seeds the MLP probe's initialisation and its early-stopping split.

    The fit uses as many BLAS threads as ``torch.get_num_threads()`` allows.

    Returns:
        the probe's ROC AUC on the evaluation rows (NaN when they hold one class only).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    if probe not in PROBES:
        raise ValueError(f"probe must be one of {PROBES}, got {probe!r}")
    x_fit, x_eval = (np.asarray(a, dtype=np.float64) for a in (train_features, eval_features))
    y_fit, y_eval = (np.asarray(a, dtype=np.float64).reshape(-1) for a in (train_target, eval_target))
    if x_fit.ndim != 2 or len(x_fit) != len(y_fit):
        raise ValueError(f"train_features must be (n, d) with n = len(train_target) = {len(y_fit)}, "
                         f"got shape {x_fit.shape}")
    if x_eval.ndim != 2 or x_eval.shape[1] != x_fit.shape[1] or len(x_eval) != len(y_eval):
        raise ValueError(f"eval_features must be (m, {x_fit.shape[1]}) with m = len(eval_target) = {len(y_eval)}, "
                         f"got shape {x_eval.shape}")
    if np.unique(y_fit).size != 2:
        raise ValueError(f"train_target must hold both classes 0 and 1, got {np.unique(y_fit).tolist()}")
    if probe == "linear":
        classifier = LogisticRegression(C=1.0, max_iter=2000)
    else:
        classifier = MLPClassifier(hidden_layer_sizes=(64,), alpha=1e-3, early_stopping=True,
                                   validation_fraction=0.1, max_iter=200, random_state=seed)
    # sklearn's BLAS would take every core; use as many threads as torch is allowed.
    with threadpool_limits(limits=torch.get_num_threads()):
        model = make_pipeline(StandardScaler(), classifier).fit(x_fit, y_fit)
    if np.unique(y_eval).size < 2:
        return float("nan")
    return metrics.roc_auc(y_eval, model.predict_proba(x_eval)[:, 1])
