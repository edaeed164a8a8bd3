"""``TrainConfig``: everything that decides how a model is trained (saved with every checkpoint)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mtlkit.checks import check_bool, check_choice, check_int, check_number, check_seed, check_str
from mtlkit.utils import to_jsonable

__all__ = ["OPTIMIZERS", "SCHEDULERS", "TrainConfig"]

OPTIMIZERS = ("adam", "adamw")
SCHEDULERS = ("none", "cosine", "step")


@dataclass
class TrainConfig:
    """Everything that decides how a model is trained (saved with every checkpoint).

    Attributes:
        epochs: passes over the training split.
        batch_size: samples per optimiser step (the *global* batch under DDP).
        lr: learning rate. weight_decay: L2 (adam) or decoupled (adamw) decay.
        optimizer: "adam" or "adamw" (Loshchilov & Hutter, ICLR 2019).
        scheduler: "none", "cosine" (lr · ½(1 + cos(π·step/total_steps)), Loshchilov &
            Hutter, ICLR 2017) or "step" (lr · gamma^⌊epoch/step_size⌋); applied per step.
        step_size, gamma: the "step" schedule's period (in epochs) and factor.
        grad_clip_norm: clip the global gradient norm of the model to this value (None: off).
        weighting: a name from ``mtlkit.weighting.WEIGHTINGS``; weighting_kwargs its arguments.
        device: "auto" (CUDA, then MPS, then CPU), "cpu", "cuda", "cuda:1", "mps".
        amp: bf16 autocast for the forward pass: "auto" (on CUDA only), True (CUDA
            required), False.
        compile: wrap the model in ``torch.compile``.
        seed: seeds every generator when the trainer is created (0 .. 2**63 - 1).
        early_stopping: the epoch-history column to monitor, e.g. "valid/click/auc" or
            "loss/click" (None: off); early_stopping_mode "max", "min" or "auto" (from the
            metric's name); patience: epochs without improvement before stopping;
            restore_best: load the best epoch's weights (the model's and any auxiliary
            objective's, such as the adversary head) when training stops.
        record_gradients: ask the strategy for per-task gradient norms and cosines
            (diagnostics; costs one backward per task).
        log_every: steps between two history rows (and host syncs); 1 records every step.
        eval_batch_size: batch size for evaluation and prediction.
        quiet: no progress bars.
        init_output_biases: before training, set each task's output bias to its base rate in
            the training labels (logit of the positive rate, or the mean rating), so a raw
            1-5 rating scale does not swamp the shared layers in the first steps.
        adversary: train an adversary that predicts this protected attribute from the
            model's shared representation through a gradient-reversal layer (see
            :mod:`mtlkit.models.adversarial`): a batch key such as "is_bot", or "bot" /
            "gender"; None: off. adversary_strength: λ of the reversal (0: the adversary only
            measures). adversary_holdout_every: users with index % k == 0 never train the
            adversary; its AUC is measured on them ("valid/adversary/auc"), and so is the
            post-hoc probe of :meth:`~mtlkit.training.Trainer.probe_adversary`.
    """

    epochs: int = 5
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.0
    optimizer: str = "adam"
    scheduler: str = "none"
    step_size: int = 1
    gamma: float = 0.5
    grad_clip_norm: float | None = None
    weighting: str = "equal"
    weighting_kwargs: dict[str, Any] = field(default_factory=dict)
    device: str = "auto"
    amp: bool | str = "auto"
    compile: bool = False
    seed: int = 0
    early_stopping: str | None = None
    early_stopping_mode: str = "auto"
    patience: int = 3
    restore_best: bool = True
    record_gradients: bool = False
    log_every: int = 10
    eval_batch_size: int = 4096
    quiet: bool = False
    init_output_biases: bool = True
    adversary: str | None = None
    adversary_strength: float = 1.0
    adversary_holdout_every: int = 5

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "step_size", "patience", "log_every", "eval_batch_size"):
            setattr(self, name, check_int(name, getattr(self, name), low=1))
        self.seed = check_seed("seed", self.seed)
        self.lr = check_number("lr", self.lr, low=0, low_open=True)
        self.weight_decay = check_number("weight_decay", self.weight_decay, low=0)
        self.gamma = check_number("gamma", self.gamma, low=0)
        if self.grad_clip_norm is not None:
            self.grad_clip_norm = check_number("grad_clip_norm", self.grad_clip_norm, low=0, low_open=True)
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_choice("scheduler", self.scheduler, SCHEDULERS)
        check_str("weighting", self.weighting, what="a strategy name")
        if not isinstance(self.weighting_kwargs, Mapping):
            raise ValueError(f"weighting_kwargs must be a mapping, got {self.weighting_kwargs!r}")
        self.weighting_kwargs = dict(self.weighting_kwargs)
        check_choice("amp", self.amp, ("auto", True, False))
        check_choice("early_stopping_mode", self.early_stopping_mode, ("auto", "max", "min"))
        if self.early_stopping is not None:
            check_str("early_stopping", self.early_stopping, what="a history column name or None")
        for name in ("compile", "restore_best", "record_gradients", "quiet", "init_output_biases"):
            check_bool(name, getattr(self, name))
        if self.adversary is not None:
            check_str("adversary", self.adversary, what="an attribute name or None")
        self.adversary_strength = check_number("adversary_strength", self.adversary_strength, low=0)
        self.adversary_holdout_every = check_int("adversary_holdout_every", self.adversary_holdout_every, low=2)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values (for config.json and checkpoints)."""
        return to_jsonable(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TrainConfig:
        """Rebuild from :meth:`to_dict`; unknown keys raise ``ValueError`` naming them."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"config has unknown field(s) {unknown} for TrainConfig; fields are {sorted(known)}")
        return cls(**values)
