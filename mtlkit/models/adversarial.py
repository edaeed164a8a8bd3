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
models need no change. It is an auxiliary objective of the trainer
(:mod:`mtlkit.training.auxiliary`): :class:`mtlkit.training.Trainer` builds it when
``TrainConfig.adversary`` names the attribute, trains its loss beside the tasks and records
its held-out AUC every epoch. :data:`PROTECTED_ATTRIBUTES` says, for each attribute, which
batch key carries it, which model input would reveal it, and which data sets have it.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mtlkit import metrics
from mtlkit.checks import check_int, check_number
from mtlkit.data.batch import IS_BOT, IS_FEMALE, USER
from mtlkit.models.experts import MLP

if TYPE_CHECKING:
    from mtlkit.data.tensors import TensorSamples
    from mtlkit.training.trainer import Trainer

__all__ = [
    "ADVERSARY_ATTRIBUTES",
    "PROBES",
    "PROTECTED_ATTRIBUTES",
    "ProtectedAttribute",
    "Adversary",
    "AdversaryHead",
    "GradientReversal",
    "GradientReversalFunction",
    "gradient_reversal",
    "heldout_users",
    "probe_auc",
]

@dataclass(frozen=True)
class ProtectedAttribute:
    """A user attribute an adversary can be trained against.

    Attributes:
        batch_key: the bool ``(B,)`` batch tensor that holds it (never a model input itself).
        input_field: the model input that carries the same information (dropped from the
            inputs by default when the adversary is on), or None when no input does.
        data_sets: the data sets whose samples carry ``batch_key``.
    """

    batch_key: str
    input_field: str | None
    data_sets: tuple[str, ...]


#: The one table of protected attributes: short name → where it lives.
PROTECTED_ATTRIBUTES: dict[str, ProtectedAttribute] = {
    "bot": ProtectedAttribute(IS_BOT, None, ("synthetic-funnel",)),
    "gender": ProtectedAttribute(IS_FEMALE, "gender", ("movielens-100k", "movielens-1m")),
}
#: Short names of the protected attributes → their batch keys (bool (B,) tensors).
ADVERSARY_ATTRIBUTES = {name: attribute.batch_key for name, attribute in PROTECTED_ATTRIBUTES.items()}


def _check_strength(strength: Any) -> float:
    return check_number("strength", strength, low=0)


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
        check_int("in_dim", in_dim, low=1)
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
    rows never enter the adversary's loss, and :meth:`evaluate` (the trainer's
    ``evaluate_adversary``) measures the head's AUC on them; :meth:`probe` fits a fresh
    classifier there.

    Args:
        model: a multi-task model with an ``encoder`` submodule that has ``out_dim``.
        attribute: the batch key of the attribute (a bool/0-1 tensor (B,)), or a short name of
            :data:`ADVERSARY_ATTRIBUTES` (``"bot"``, ``"gender"``).
        strength: λ of the gradient reversal.
        hidden: the adversary MLP's hidden sizes.
        holdout_every: every k-th user is held out from the adversary's training (k >= 2).
    """

    #: The trainer's name for this auxiliary objective: "loss/adversary", "valid/adversary/auc".
    name = "adversary"

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
        check_int("holdout_every", holdout_every, low=2)
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
        train_rows = ~heldout_users(batch[USER], self.holdout_every)  # (B,)
        losses = F.binary_cross_entropy_with_logits(self.logits(), target, reduction="none")  # (B,)
        return (losses * train_rows).sum() / train_rows.sum().clamp(min=1)

    # ------------------------------------------------------------------ measuring the attribute
    @torch.no_grad()
    def representations(self, trainer: Trainer, samples: TensorSamples, rows: Tensor,
                        batch_size: int | None = None) -> Tensor:
        """The shared representation (the head's input) of ``rows`` of ``samples`` under
        ``trainer.model`` in eval mode: float32 ``(len(rows), out_dim)`` on the device."""
        model = trainer.model
        was_training = model.training
        model.eval()
        parts = []
        try:
            for idx in torch.split(rows, batch_size or trainer.config.eval_batch_size):
                with trainer._autocast():
                    model(samples.gather(idx))
                parts.append(self.representation.float())
        finally:
            model.train(was_training)
        return torch.cat(parts)

    def _heldout_rows(self, samples: TensorSamples) -> Tensor:
        """Indices ``(n,)`` of the rows of ``samples`` whose users never trained the adversary."""
        return torch.nonzero(heldout_users(samples[USER], self.holdout_every)).squeeze(1)

    @torch.no_grad()
    def evaluate(self, trainer: Trainer, samples: TensorSamples, *, batch_size: int | None = None) -> dict[str, float]:
        """How well the head recovers its attribute for the *held-out* users of ``samples``.

        Returns ``{"auc", "logloss", "n_users", "n_rows"}`` over the rows of users the adversary
        never trained on (0.5 AUC: the head cannot recover it; NaN when those rows hold one
        class). Below 0.5 means the encoder flipped the signal faster than the head followed:
        the attribute is still there — :meth:`probe` is the honest measure.
        """
        rows = self._heldout_rows(samples)
        result = {"auc": math.nan, "logloss": math.nan, "n_users": 0, "n_rows": int(len(rows))}
        if not len(rows):
            return result
        logits = self.head(self.representations(trainer, samples, rows, batch_size)).cpu()
        target = samples[self.key][rows].float().cpu()
        result["n_users"] = int(torch.unique(samples[USER][rows]).numel())
        result["logloss"] = float(metrics.log_loss(target, torch.sigmoid(logits)))
        with contextlib.suppress(ValueError):  # one class only: the AUC is undefined
            result["auc"] = float(metrics.roc_auc(target, logits))
        return result

    def probe(self, trainer: Trainer, samples: TensorSamples, *, probe: str = "linear",
              max_train_rows: int = 10_000, batch_size: int | None = None) -> dict[str, float]:
        """A post-hoc probe of the attribute on the frozen model (Elazar & Goldberg, EMNLP 2018).

        Fits a fresh classifier (:func:`probe_auc`, ``probe`` "linear" or "mlp") on the shared
        representations of training-split rows of the users the adversary trained on (at most
        ``max_train_rows``, a sample seeded with the run's seed), and scores it on the rows of
        the held-out users of ``samples`` — the rows :meth:`evaluate` scores. Unlike the head,
        the probe never chased a moving encoder, so its AUC says what the representation still
        gives away (0.5: nothing, to this probe).

        Returns:
            ``{"auc", "n_users", "n_rows", "n_train_rows"}``.
        """
        check_int("max_train_rows", max_train_rows, low=1)
        rows = self._heldout_rows(samples)
        train = trainer.split("train")
        fit_rows = torch.nonzero(~heldout_users(train[USER], self.holdout_every)).squeeze(1)
        if len(fit_rows) > max_train_rows:
            sample = torch.randperm(len(fit_rows), generator=torch.Generator().manual_seed(trainer.config.seed))
            fit_rows = fit_rows[sample[:max_train_rows].sort().values.to(fit_rows.device)]
        result = {"auc": math.nan, "n_users": 0, "n_rows": len(rows), "n_train_rows": len(fit_rows)}
        if not len(rows):
            return result
        result["n_users"] = int(torch.unique(samples[USER][rows]).numel())
        result["auc"] = probe_auc(
            self.representations(trainer, train, fit_rows, batch_size).cpu().numpy(),
            train[self.key][fit_rows].cpu().numpy(),
            self.representations(trainer, samples, rows, batch_size).cpu().numpy(),
            samples[self.key][rows].cpu().numpy(),
            probe=probe, seed=trainer.config.seed,
        )  # fmt: skip
        return result


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
