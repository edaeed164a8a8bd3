"""The trainer: one loop for every model, weighting strategy and device.

A training step of a multi-task model is

    predictions = model(batch)                               # {task: (B,)}
    L_t = masked mean of loss_t(prediction_t, label_t)        # over observed labels only
    strategy.backward({t: L_t}, shared parameters)            # fills .grad (weighted sum,
                                                              #  or gradient surgery)
    clip ‖∇‖ to grad_clip_norm; optimiser step; scheduler step

(with ``TrainConfig.adversary``, an adversary head first back-propagates its loss on the
model's shared representation through a gradient-reversal layer, and the strategy's
gradients accumulate onto it — see :mod:`mtlkit.models.adversarial`), and everything else
here is bookkeeping around it: the history of per-task losses and
weights, validation metrics each epoch, early stopping, callbacks for live plots, exact
checkpoints and distributed data parallelism.

Design choices a reader may want to change:

- The whole split lives on the device (it is moved once); a batch is an index gather
  (``index_select``) of every field, in an order drawn from a seeded ``torch.Generator``. No
  ``DataLoader``, no per-sample Python, no host-to-device copy per step.
- Per-step losses are summed on the device and read back every ``log_every`` steps only,
  so the GPU is not made to wait for the host each step.
- ``resume`` is exact: the checkpoint holds the model, optimiser, scheduler, weighting
  strategy, every random-number generator (torch CPU and CUDA, NumPy, Python, the shuffle
  generator) and the counters, so "2 epochs" and "1 epoch, save, resume, 1 more" end with
  identical weights.

Distributed data parallelism (``torchrun --nproc_per_node=N -m mtlkit train ...``)
-----------------------------------------------------------------------------------
Every rank holds the full data set and draws the *same* shuffled order; each global batch
of ``batch_size`` samples is split into N contiguous shards, one per rank. With masked task
losses, averaging the ranks' masked means is *not* the global masked mean (ranks observe
different numbers of labels). So each rank all-reduces its per-task loss sums and label
counts (one small all-reduce per step) and back-propagates

    L_t^(r) = N · (Σ_{i∈shard r} m_it l_it) / (Σ_{all ranks} Σ_i m_it),

whose gradient, averaged over ranks by DDP, is exactly the gradient of the global masked
mean. The value the weighting strategy sees is the global mean itself (the local term plus
a detached correction), so loss-dependent weights (uncertainty, DWA) are identical on
every rank. Hence N ranks with global batch B reproduce single-process training with batch
B (up to float rounding), provided the model has no batch-dependent layers and dropout is
off (with dropout the two runs draw different masks and agree only in distribution). A
last global batch with fewer samples than ranks is dropped (a rank would get none).

Strategies that need per-task gradients (``requires_grads = True``: PCGrad, MGDA, CAGrad and
GradNorm) are refused under DDP with a clear error: they are nonlinear in the per-task
gradients, so computing them exactly would need every task's gradient all-reduced before
the surgery, which DDP's single all-reduce of the combined gradient does not give.
``record_gradients`` is refused under DDP for the same reason.
Validation predictions are computed on shards and all-gathered, so AUC and gAUC are exact.
Only rank 0 writes files and shows progress bars.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import math
import os
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor, nn

from mtlkit.utils import atomic_torch_save, atomic_write_with, resolve_device, seed_everything, to_jsonable

if TYPE_CHECKING:
    import pandas as pd

    from mtlkit.data.samples import MultiTaskData, TensorSamples

__all__ = [
    "TrainConfig",
    "Trainer",
    "Callback",
    "History",
    "METRICS",
    "CHECKPOINT_FORMAT",
    "load_run",
]

CHECKPOINT_FORMAT = 1
OPTIMIZERS = ("adam", "adamw")
SCHEDULERS = ("none", "cosine", "step")
#: The validation metrics recorded for each task kind (keys of ``Trainer.evaluate``).
METRICS = {"binary": ("auc", "logloss", "gauc"), "regression": ("rmse", "mae")}
_MAXIMISE = {"auc", "gauc", "accuracy", "precision", "recall", "f1", "hr", "ndcg", "mrr"}


# --------------------------------------------------------------------------- config
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
        seed: seeds every generator when the trainer is created.
        early_stopping: the epoch-history column to monitor, e.g. "valid/click/auc" or
            "loss/click" (None: off); early_stopping_mode "max", "min" or "auto" (from the
            metric's name); patience: epochs without improvement before stopping;
            restore_best: load the best epoch's weights (the model's and the adversary
            head's) when training stops.
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
            post-hoc probe of :meth:`Trainer.probe_adversary`.
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
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {self.seed!r}")
        for name in ("lr", "weight_decay", "gamma"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
            setattr(self, name, float(value))
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}")
        if self.grad_clip_norm is not None:
            value = self.grad_clip_norm
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"grad_clip_norm must be a number > 0 or None, got {value!r}")
            self.grad_clip_norm = float(value)
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {list(OPTIMIZERS)}, got {self.optimizer!r}")
        if self.scheduler not in SCHEDULERS:
            raise ValueError(f"scheduler must be one of {list(SCHEDULERS)}, got {self.scheduler!r}")
        if not isinstance(self.weighting, str) or not self.weighting:
            raise ValueError(f"weighting must be a strategy name, got {self.weighting!r}")
        if not isinstance(self.weighting_kwargs, Mapping):
            raise ValueError(f"weighting_kwargs must be a mapping, got {self.weighting_kwargs!r}")
        self.weighting_kwargs = dict(self.weighting_kwargs)
        if self.amp not in ("auto", True, False):
            raise ValueError(f"amp must be 'auto', True or False, got {self.amp!r}")
        if self.early_stopping_mode not in ("auto", "max", "min"):
            raise ValueError(f"early_stopping_mode must be 'auto', 'max' or 'min', got {self.early_stopping_mode!r}")
        if self.early_stopping is not None and (not isinstance(self.early_stopping, str) or not self.early_stopping):
            raise ValueError(f"early_stopping must be a history column name or None, got {self.early_stopping!r}")
        for name in ("compile", "restore_best", "record_gradients", "quiet", "init_output_biases"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be a bool, got {getattr(self, name)!r}")
        if self.adversary is not None and (not isinstance(self.adversary, str) or not self.adversary):
            raise ValueError(f"adversary must be an attribute name or None, got {self.adversary!r}")
        value = self.adversary_strength
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise ValueError(f"adversary_strength must be a finite number >= 0, got {value!r}")
        self.adversary_strength = float(value)
        value = self.adversary_holdout_every
        if isinstance(value, bool) or not isinstance(value, int) or value < 2:
            raise ValueError(f"adversary_holdout_every must be an int >= 2, got {value!r}")

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


# --------------------------------------------------------------------------- callbacks
class Callback:
    """Hooks into :meth:`Trainer.fit`; override any of them (all are no-ops here).

    ``on_step_end`` runs whenever a step row is added to the history (every
    ``log_every`` steps and at the end of each epoch) with that row; ``on_epoch_end``
    with the epoch row (training losses and validation metrics). Set
    ``trainer.stop_training = True`` to stop after the current epoch.

    Any object with some of these methods works too (duck typing).
    """

    def on_train_begin(self, trainer: Trainer) -> None: ...

    def on_step_end(self, trainer: Trainer, record: dict[str, float]) -> None: ...

    def on_epoch_end(self, trainer: Trainer, record: dict[str, float]) -> None: ...

    def on_train_end(self, trainer: Trainer) -> None: ...


# --------------------------------------------------------------------------- history
class History:
    """The run's history: one row per logged step and one per epoch.

    Step rows: ``epoch``, ``step`` (optimiser steps so far), ``loss`` (Σ_t w_t L_t),
    ``loss/<task>``, ``weight/<task>`` (means over the steps since the previous row), ``lr``,
    ``samples_per_s``, and the strategy's diagnostics (``grad_norm/<task>``,
    ``grad_cos/<a>/<b>``) when ``record_gradients`` is on. Epoch rows: the same means over
    the epoch, ``epoch_time_s``, and ``valid/<task>/<metric>``.
    """

    def __init__(self, steps: Sequence[dict] = (), epochs: Sequence[dict] = ()) -> None:
        self.step_records: list[dict[str, float]] = [dict(r) for r in steps]
        self.epoch_records: list[dict[str, float]] = [dict(r) for r in epochs]

    @property
    def steps(self) -> pd.DataFrame:
        """Step rows as a DataFrame."""
        import pandas as pd

        return pd.DataFrame(self.step_records)

    @property
    def epochs(self) -> pd.DataFrame:
        """Epoch rows as a DataFrame."""
        import pandas as pd

        return pd.DataFrame(self.epoch_records)

    def to_csv(self, steps_path: str | os.PathLike, epochs_path: str | os.PathLike | None = None) -> None:
        """Write the step rows (and the epoch rows) as CSV, atomically."""
        atomic_write_with(steps_path, lambda f: self.steps.to_csv(f, index=False))
        if epochs_path is not None:
            atomic_write_with(epochs_path, lambda f: self.epochs.to_csv(f, index=False))

    def state(self) -> dict[str, list]:
        return {"steps": [dict(r) for r in self.step_records], "epochs": [dict(r) for r in self.epoch_records]}


# --------------------------------------------------------------------------- distributed
@dataclass(frozen=True)
class _Dist:
    """Where this process sits in a ``torchrun`` job (world_size 1: not distributed)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


_PROCESS_GROUP_OWNED = False


def _setup_distributed(device_name: str | torch.device) -> tuple[_Dist, torch.device]:
    """Read RANK / WORLD_SIZE (set by ``torchrun``) and join the process group once.

    The backend is NCCL on CUDA and Gloo on the CPU. Each rank uses ``cuda:LOCAL_RANK``.
    """
    global _PROCESS_GROUP_OWNED
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return _Dist(), resolve_device(device_name)
    import torch.distributed as dist

    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    device = resolve_device(device_name)
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    elif device.type != "cpu":
        raise ValueError(f"device must be 'cpu' or 'cuda' under torchrun, got {str(device)!r}")
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
        _PROCESS_GROUP_OWNED = True
    return _Dist(rank=dist.get_rank(), world_size=dist.get_world_size(), local_rank=local_rank), device


def shutdown_distributed() -> None:
    """Leave the process group if the trainer joined it (call once at the end of a script)."""
    global _PROCESS_GROUP_OWNED
    if _PROCESS_GROUP_OWNED:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
        _PROCESS_GROUP_OWNED = False


def _barrier(d: _Dist) -> None:
    if d.enabled:
        import torch.distributed as dist

        dist.barrier()


# --------------------------------------------------------------------------- the trainer
class Trainer:
    """Train a multi-task model on :class:`~mtlkit.data.samples.MultiTaskData`.

    Args:
        model: a model from :mod:`mtlkit.models` (``forward(batch) -> {task: (B,)}``,
            ``shared_parameters()``, ``last_shared_parameters()``).
        data: train/valid/test splits and their schema.
        config: a :class:`TrainConfig` (defaults when None).
        callbacks: objects with any of ``on_train_begin``, ``on_step_end``,
            ``on_epoch_end``, ``on_train_end`` (see :class:`Callback`).
        run_info: extra JSON-able facts stored with checkpoints and checked on resume,
            e.g. ``{"model": {"name": "mmoe"}, "data": {"name": "synthetic-funnel", ...}}``.

    The constructor seeds every generator with ``config.seed``, moves the model and the
    data to the device, and builds the weighting strategy, optimiser and scheduler.

    Example::

        data = load_dataset("synthetic-funnel")
        model = build_model("mmoe", data.schema)
        trainer = Trainer(model, data, TrainConfig(epochs=3))
        trainer.fit()
        trainer.evaluate("test")      # {"click": {"auc": ..., ...}, ...}
        trainer.history.epochs        # DataFrame
    """

    def __init__(
        self,
        model: nn.Module,
        data: MultiTaskData,
        config: TrainConfig | None = None,
        callbacks: Iterable[Any] = (),
        *,
        run_info: Mapping[str, Any] | None = None,
    ) -> None:
        from mtlkit.weighting import WEIGHTINGS, make_weighting

        config = TrainConfig() if config is None else config
        if not isinstance(config, TrainConfig):
            raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
        self.config = config
        self.dist, self.device = _setup_distributed(config.device)
        self.amp = self.device.type == "cuda" if config.amp == "auto" else bool(config.amp)
        if self.amp and self.device.type != "cuda":
            raise ValueError(f"amp (bf16 autocast) needs a CUDA device, got device {str(self.device)!r}")
        seed_everything(config.seed)

        self.data = data
        self.schema = data.schema
        self.task_names: tuple[str, ...] = tuple(self.schema.task_names)
        self.task_kinds: dict[str, str] = dict(self.schema.task_kinds)
        if config.init_output_biases and hasattr(model, "init_output_biases"):
            # Start every task at its base rate (a resumed run overwrites this with its weights).
            model.init_output_biases(data.train["labels"], data.train["label_mask"])
        self.model = model.to(self.device)
        self.callbacks = list(callbacks)
        self.run_info = to_jsonable(dict(run_info or {}))

        weighting_kwargs = dict(config.weighting_kwargs)
        strategy_class = WEIGHTINGS.get(config.weighting)
        if strategy_class is not None and "task_kinds" in inspect.signature(strategy_class).parameters:
            # Strategies whose formula depends on the task kind (uncertainty: L/σ² for
            # classification, L/(2σ²) for regression) get them from the schema by default.
            weighting_kwargs.setdefault("task_kinds", self.task_kinds)
        if strategy_class is not None and "seed" in inspect.signature(strategy_class).parameters:
            # Strategies that draw at random (RLW's weights, PCGrad's task orders) follow the run's seed.
            weighting_kwargs.setdefault("seed", config.seed)
        self.strategy = make_weighting(config.weighting, self.task_names, **weighting_kwargs).to(self.device)
        if self.dist.enabled:
            if getattr(self.strategy, "requires_grads", False):
                raise ValueError(
                    f"weighting {config.weighting!r} needs per-task gradients and is not supported under "
                    "distributed training; use a loss-weighting strategy (equal, static, uncertainty, dwa, rlw)"
                )
            if config.record_gradients:
                raise ValueError("record_gradients is not supported under distributed training")
        self.adversary = self._build_adversary()

        self._train_module = self._wrap_model()
        self.optimizer = self._build_optimizer()
        self._steps_per_epoch = self._count_steps_per_epoch()
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda step: self._lr_factor(step))
        self._shuffle_generator = torch.Generator().manual_seed(config.seed)

        self._splits: dict[str, TensorSamples] = {}
        self.epoch = 0  # completed epochs
        self.global_step = 0  # completed optimiser steps
        self.history = History()
        self.stop_training = False
        self.best_value: float | None = None
        self.best_epoch: int | None = None
        self._best_state: dict[str, Tensor] | None = None
        self._best_adversary_state: dict[str, Tensor] | None = None  # the head of the best epoch
        self._bad_epochs = 0
        self.finished = False
        self._validated_losses = False
        if config.early_stopping is not None:
            self._check_monitor(config.early_stopping)

    # ------------------------------------------------------------------ building blocks
    @property
    def is_main_process(self) -> bool:
        """True on rank 0 (and in single-process runs): the process that writes files."""
        return self.dist.is_main

    def _wrap_model(self) -> nn.Module:
        module: nn.Module = self.model
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            module = DistributedDataParallel(module, device_ids=ids)
        if self.config.compile:
            module = torch.compile(module)
        return module

    def _build_adversary(self) -> nn.Module | None:
        """The gradient-reversal adversary of ``config.adversary`` (None when off)."""
        config = self.config
        if config.adversary is None:
            return None
        from mtlkit.models.adversarial import Adversary

        if self.dist.enabled:
            raise ValueError("adversary is not supported under distributed training (its head is not all-reduced)")
        adversary = Adversary(self.model, config.adversary, strength=config.adversary_strength,
                              holdout_every=config.adversary_holdout_every)
        if adversary.key not in self.data.train.keys():
            adversary.remove()
            raise ValueError(
                f"adversary must name an attribute the batches carry, got {config.adversary!r} "
                f"(batch key {adversary.key!r} is not in the data; keys: {sorted(self.data.train.keys())})"
            )
        return adversary.to(self.device)

    def _build_optimizer(self) -> torch.optim.Optimizer:
        params = [p for p in self.model.parameters() if p.requires_grad]
        if self.adversary is not None:  # the adversary head learns with the model
            params += list(self.adversary.parameters())
        # Learnable strategy parameters (e.g. uncertainty's log-variances) are trained too,
        # without weight decay: decaying a log-variance towards 0 has no meaning.
        strategy_params = [p for p in self.strategy.parameters() if p.requires_grad]
        groups: list[dict[str, Any]] = [{"params": params}]
        if strategy_params:
            groups.append({"params": strategy_params, "weight_decay": 0.0})
        cls = torch.optim.AdamW if self.config.optimizer == "adamw" else torch.optim.Adam
        return cls(groups, lr=self.config.lr, weight_decay=self.config.weight_decay)

    def _count_steps_per_epoch(self) -> int:
        return max(1, math.ceil(len(self.data.train) / self.config.batch_size))

    def _lr_factor(self, step: int) -> float:
        """Multiplier of the base learning rate after ``step`` optimiser steps."""
        config = self.config
        if config.scheduler == "cosine":
            total = config.epochs * self._steps_per_epoch
            return 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total))
        if config.scheduler == "step":
            return config.gamma ** (step // (config.step_size * self._steps_per_epoch))
        return 1.0

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.amp:
            return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def split(self, name: str) -> TensorSamples:
        """The split ``name`` ("train", "valid", "test") on the trainer's device (moved once)."""
        if name not in ("train", "valid", "test"):
            raise ValueError(f"split must be 'train', 'valid' or 'test', got {name!r}")
        if name not in self._splits:
            self._splits[name] = getattr(self.data, name).to(self.device)
        return self._splits[name]

    # ------------------------------------------------------------------ training
    def fit(self, *, epochs: int | None = None, resume_from: str | os.PathLike | None = None,
            checkpoint_path: str | os.PathLike | None = None) -> History:
        """Train until ``epochs`` epochs are complete in total (default ``config.epochs``).

        Args:
            epochs: stop once this many epochs are done (counting resumed ones), e.g. train
                the first epoch of a 2-epoch schedule with ``epochs=1``. The learning-rate
                schedule always spans ``config.epochs``.
            resume_from: a checkpoint to continue from (see :meth:`resume`).
            checkpoint_path: save a checkpoint there after every epoch (rank 0 only).

        Returns:
            the :class:`History`.
        """
        target = self.config.epochs if epochs is None else epochs
        if isinstance(target, bool) or not isinstance(target, int) or target <= 0:
            raise ValueError(f"epochs must be a positive int, got {epochs!r}")
        if resume_from is not None:
            self.resume(resume_from)
        monitor = self.config.early_stopping
        self.stop_training = False
        self._call("on_train_begin")
        while self.epoch < target and not self.stop_training:
            record = self._train_epoch(target)
            self.epoch += 1
            if len(self.data.valid):
                for task, values in self.evaluate("valid").items():
                    for metric, value in values.items():
                        record[f"valid/{task}/{metric}"] = value
                if self.adversary is not None:
                    for metric, value in self.evaluate_adversary("valid").items():
                        record[f"valid/adversary/{metric}"] = value
            self.strategy.end_epoch({t: record[f"loss/{t}"] for t in self.task_names})
            if monitor is not None:
                self._early_stopping_update(record)
            self.history.epoch_records.append(record)
            self._report_epoch(record)
            self._call("on_epoch_end", record)
            if self.epoch >= self.config.epochs:
                self.finished = True
            if checkpoint_path is not None:
                self.save_checkpoint(checkpoint_path)
        if self.stop_training:
            self.finished = True
        if self.finished and monitor is not None and self.config.restore_best and self._best_state is not None:
            self.model.load_state_dict(self._best_state)
            if self._best_adversary_state is not None:
                self.adversary.load_state_dict(self._best_adversary_state)
            if checkpoint_path is not None:
                self.save_checkpoint(checkpoint_path)
        self._call("on_train_end")
        return self.history

    def _call(self, hook: str, *args: Any) -> None:
        for callback in self.callbacks:
            method = getattr(callback, hook, None)
            if method is not None:
                method(self, *args)

    def _batch_indices(self, n: int) -> list[Tensor]:
        """This epoch's global batches (shuffled by the seeded generator), as this rank's shard."""
        order = torch.randperm(n, generator=self._shuffle_generator).to(self.device)
        batches = list(torch.split(order, self.config.batch_size))
        if self.dist.enabled:
            # Each rank takes its contiguous part of the same global batch; a last batch with
            # fewer samples than ranks is dropped (a rank would otherwise get none).
            batches = [b for b in batches if len(b) >= self.dist.world_size]
        return batches

    def _shard(self, batch: Tensor) -> Tensor:
        if not self.dist.enabled:
            return batch
        return torch.tensor_split(batch, self.dist.world_size)[self.dist.rank]

    def _task_losses(self, outputs: Mapping[str, Tensor], batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """The masked mean loss of every task; under DDP the globally exact version (see module doc)."""
        from mtlkit.losses import task_loss

        labels, mask = batch["labels"], batch["label_mask"]
        validate = not self._validated_losses  # check labels on the first step only (one sync)
        losses = {
            task: task_loss(self.task_kinds[task], outputs[task].float(), labels[:, i], mask[:, i], validate=validate)
            for i, task in enumerate(self.task_names)
        }
        self._validated_losses = True
        if not self.dist.enabled:
            return losses
        import torch.distributed as dist

        counts = mask.sum(dim=0).to(torch.float32)  # (T,) local observed labels
        sums = torch.stack([losses[t] for t in self.task_names]) * counts  # (T,) local loss sums
        stats = torch.cat([sums.detach(), counts])
        dist.all_reduce(stats)
        total_counts = stats[len(self.task_names):].clamp(min=1)
        local = sums * self.dist.world_size / total_counts  # its rank-average is the global mean's gradient
        value = stats[: len(self.task_names)] / total_counts  # the global masked mean
        exact = local + (value - local).detach()
        return {task: exact[i] for i, task in enumerate(self.task_names)}

    def _train_epoch(self, target_epochs: int) -> dict[str, float]:
        config = self.config
        train = self.split("train")
        self.model.train()
        self.strategy.train()
        batches = self._batch_indices(len(train))
        n_tasks = len(self.task_names)
        shared = list(self.model.shared_parameters())
        last_shared = list(self.model.last_shared_parameters())

        n_values = n_tasks + 1 + (self.adversary is not None)  # per-task losses, total, adversary
        epoch_sum = torch.zeros(n_values, device=self.device)
        window_sum = torch.zeros(n_values, device=self.device)
        epoch_weights = dict.fromkeys(self.task_names, 0.0)
        window_weights = dict.fromkeys(self.task_names, 0.0)
        epoch_diag: dict[str, float] = {}
        window_diag: dict[str, float] = {}
        window_steps = window_samples = 0
        epoch_samples = 0
        epoch_start = window_start = time.perf_counter()
        last_record: dict[str, float] = {}

        bar = self._progress(len(batches), f"epoch {self.epoch + 1}/{target_epochs}")
        for i, global_idx in enumerate(batches):
            idx = self._shard(global_idx)
            batch = train.gather(idx)
            with self._autocast():
                outputs = self._train_module(batch)
            losses = self._task_losses(outputs, batch)
            self.optimizer.zero_grad(set_to_none=True)
            if self.adversary is not None:
                # First, so the strategy's backward (which may free the graph) comes last; its
                # gradients accumulate onto these. The reversal layer hands the encoder −λ·∇.
                adversary_loss = self.adversary.loss(batch)
                adversary_loss.backward(retain_graph=True)
            weights = self.strategy.backward(
                losses,
                shared,
                last_shared_parameters=last_shared,
                diagnostics=config.record_gradients,
            )
            if config.grad_clip_norm is not None:
                nn.utils.clip_grad_norm_(self.model.parameters(), config.grad_clip_norm)
            self.optimizer.step()
            self.scheduler.step()
            self.global_step += 1

            with torch.no_grad():
                step_losses = torch.stack([losses[t].detach() for t in self.task_names])
                total = sum(float(weights[t]) * step_losses[j] for j, t in enumerate(self.task_names))
                step_values = torch.cat([step_losses, total.reshape(1)])
                if self.adversary is not None:
                    step_values = torch.cat([step_values, adversary_loss.detach().reshape(1)])
                window_sum += step_values
                epoch_sum += step_values
            for t in self.task_names:
                window_weights[t] += float(weights[t])
                epoch_weights[t] += float(weights[t])
            for key, value in (getattr(self.strategy, "last_diagnostics", None) or {}).items():
                window_diag[key] = window_diag.get(key, 0.0) + float(value)
                epoch_diag[key] = epoch_diag.get(key, 0.0) + float(value)
            window_steps += 1
            window_samples += len(global_idx)
            epoch_samples += len(global_idx)

            if self.global_step % config.log_every == 0 or i == len(batches) - 1:
                values = (window_sum / window_steps).tolist()  # the host sync, every log_every steps
                now = time.perf_counter()
                last_record = self._record(values, window_weights, window_diag, window_steps)
                last_record["samples_per_s"] = window_samples / max(now - window_start, 1e-9)
                self.history.step_records.append(last_record)
                self._call("on_step_end", last_record)
                if bar is not None:
                    bar.set_postfix({t: f"{last_record[f'loss/{t}']:.4f}" for t in self.task_names}, refresh=False)
                window_sum.zero_()
                window_weights = dict.fromkeys(self.task_names, 0.0)
                window_diag = {}
                window_steps = window_samples = 0
                window_start = now
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()

        n_steps = max(len(batches), 1)
        elapsed = time.perf_counter() - epoch_start
        record = self._record((epoch_sum / n_steps).tolist(), epoch_weights, epoch_diag, n_steps)
        record["samples_per_s"] = epoch_samples / max(elapsed, 1e-9)
        record["epoch_time_s"] = elapsed
        record["epoch"] = self.epoch + 1
        return record

    def _record(self, values: list[float], weights: Mapping[str, float], diag: Mapping[str, float],
                n_steps: int) -> dict[str, float]:
        n_tasks = len(self.task_names)
        record: dict[str, float] = {"epoch": self.epoch + 1, "step": self.global_step, "loss": values[n_tasks]}
        for j, t in enumerate(self.task_names):
            record[f"loss/{t}"] = values[j]
        if self.adversary is not None:
            record["loss/adversary"] = values[n_tasks + 1]
        for t in self.task_names:
            record[f"weight/{t}"] = weights[t] / n_steps
        record["lr"] = float(self.optimizer.param_groups[0]["lr"])
        for key, value in diag.items():
            record[key] = value / n_steps
        return record

    def _report_epoch(self, record: Mapping[str, float]) -> None:
        """One line per epoch under the progress bars: train losses and the first metric per task."""
        if self.config.quiet or not self.is_main_process:
            return
        from tqdm.auto import tqdm

        parts = [f"loss/{t}={record[f'loss/{t}']:.4f}" for t in self.task_names]
        for t in self.task_names:
            key = f"valid/{t}/{METRICS[self.task_kinds[t]][0]}"
            if key in record:
                parts.append(f"{key}={record[key]:.4f}")
        tqdm.write(f"epoch {record['epoch']} ({record['epoch_time_s']:.1f} s): " + " ".join(parts))

    def _progress(self, total: int, desc: str) -> Any:
        if self.config.quiet or not self.is_main_process:
            return None
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True)

    # ------------------------------------------------------------------ early stopping
    def _monitor_mode(self, monitor: str) -> str:
        if self.config.early_stopping_mode != "auto":
            return self.config.early_stopping_mode
        return "max" if monitor.rsplit("/", 1)[-1] in _MAXIMISE else "min"

    def _check_monitor(self, monitor: str) -> None:
        names = {"loss"} | {f"loss/{t}" for t in self.task_names}
        names |= {f"valid/{t}/{m}" for t in self.task_names for m in METRICS[self.task_kinds[t]]}
        if monitor not in names:
            raise ValueError(f"early_stopping must be one of {sorted(names)}, got {monitor!r}")
        if monitor.startswith("valid/") and not len(self.data.valid):
            raise ValueError(f"early_stopping monitors {monitor!r} but the valid split is empty")

    def _early_stopping_update(self, record: Mapping[str, float]) -> None:
        monitor = self.config.early_stopping
        value = float(record[monitor])
        better = (
            self.best_value is None
            or (not math.isnan(value) and math.isnan(self.best_value))
            or (value > self.best_value if self._monitor_mode(monitor) == "max" else value < self.best_value)
        )
        if better:
            self.best_value, self.best_epoch, self._bad_epochs = value, self.epoch, 0
            self._best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            if self.adversary is not None:  # the head trained against this encoder, not a later one
                self._best_adversary_state = {k: v.detach().clone() for k, v in self.adversary.state_dict().items()}
        else:
            self._bad_epochs += 1
            if self._bad_epochs >= self.config.patience:
                self.stop_training = True

    # ------------------------------------------------------------------ evaluation
    @torch.no_grad()
    def predict(self, split: str | TensorSamples = "test", *, logits: bool = False,
                batch_size: int | None = None) -> dict[str, Tensor]:
        """Predictions for every sample of a split (or a ``TensorSamples``), on the CPU.

        Returns:
            {task: (N,) tensor}: probabilities for binary tasks (logits with ``logits=True``),
            values for regression tasks.
        """
        samples = self.split(split) if isinstance(split, str) else split.to(self.device)
        outputs = self._predict_on_device(samples, batch_size or self.config.eval_batch_size)
        result = {}
        for task, values in outputs.items():
            if self.task_kinds[task] == "binary" and not logits:
                values = torch.sigmoid(values)
            result[task] = values.cpu()
        return result

    def _predict_on_device(self, samples: TensorSamples, batch_size: int) -> dict[str, Tensor]:
        """Raw model outputs (logits / values) for all samples, float32 on the device.

        Under DDP each rank predicts a contiguous shard and the shards are all-gathered,
        so every rank ends with the full predictions in the original order.
        """
        n = len(samples)
        index = torch.arange(n, device=self.device)
        shards = torch.tensor_split(index, self.dist.world_size) if self.dist.enabled else (index,)
        mine = shards[self.dist.rank]
        was_training = self.model.training
        self.model.eval()
        parts: dict[str, list[Tensor]] = {t: [] for t in self.task_names}
        try:
            for idx in torch.split(mine, batch_size):
                batch = samples.gather(idx)
                with self._autocast():
                    outputs = self.model(batch)
                for t in self.task_names:
                    parts[t].append(outputs[t].float())
        finally:
            self.model.train(was_training)
        local = {
            t: torch.cat(parts[t]) if parts[t] else torch.zeros(0, device=self.device) for t in self.task_names
        }
        if not self.dist.enabled:
            return local
        return {t: self._all_gather(local[t], [len(s) for s in shards]) for t in self.task_names}

    def _all_gather(self, values: Tensor, sizes: list[int]) -> Tensor:
        import torch.distributed as dist

        width = max(sizes)
        padded = torch.zeros(width, dtype=values.dtype, device=values.device)
        padded[: len(values)] = values
        gathered = [torch.empty_like(padded) for _ in sizes]
        dist.all_gather(gathered, padded)
        return torch.cat([g[:size] for g, size in zip(gathered, sizes)])

    def evaluate(self, split: str | TensorSamples = "valid", *, batch_size: int | None = None) -> dict[str, dict[str, float]]:
        """Per-task metrics on a split, over observed labels only.

        Binary tasks: ``auc``, ``logloss`` and ``gauc`` (AUC per user, weighted by the
        user's samples; Zhou et al., KDD 2018); regression tasks: ``rmse`` and ``mae``.
        A metric undefined on this split (e.g. AUC with one class) is NaN.
        Predictions stay on the device until the metric computation (one transfer per task).
        """
        from mtlkit.metrics import make_accumulator

        samples = self.split(split) if isinstance(split, str) else split.to(self.device)
        if not len(samples):
            raise ValueError(f"split must hold at least one sample, got an empty {split if isinstance(split, str) else 'sample set'}")
        outputs = self._predict_on_device(samples, batch_size or self.config.eval_batch_size)
        labels, mask, users = samples["labels"], samples["label_mask"], samples["user"]
        result: dict[str, dict[str, float]] = {}
        for i, task in enumerate(self.task_names):
            kind = self.task_kinds[task]
            if kind == "binary":
                accumulator = make_accumulator(kind, from_logits=True)
                accumulator.update(outputs[task], labels[:, i], mask[:, i], groups=users)
            else:
                accumulator = make_accumulator(kind)
                accumulator.update(outputs[task], labels[:, i], mask[:, i])
            result[task] = _compute_metrics(accumulator, kind, outputs[task], labels[:, i], mask[:, i], users)
        return result

    def summaries(self, split: str | TensorSamples = "valid", *, batch_size: int | None = None,
                  task_metrics: Mapping[str, Mapping[str, float]] | None = None) -> dict[str, Any]:
        """Macro and micro averages across tasks of a split (see :mod:`mtlkit.summaries`).

        ``task_metrics`` (``evaluate(split)``'s result) is computed when not given.
        """
        from mtlkit.summaries import summarize

        samples = self.split(split) if isinstance(split, str) else split.to(self.device)
        if task_metrics is None:
            task_metrics = self.evaluate(samples, batch_size=batch_size)
        outputs = self._predict_on_device(samples, batch_size or self.config.eval_batch_size)
        return summarize(task_metrics, self.task_kinds, outputs, samples["labels"], samples["label_mask"])

    @torch.no_grad()
    def _representations(self, samples: TensorSamples, rows: Tensor, batch_size: int) -> Tensor:
        """The shared representation (the adversary head's input) of ``rows`` of ``samples``:
        float32 ``(len(rows), out_dim)`` on the device, the model in eval mode."""
        was_training = self.model.training
        self.model.eval()
        parts = []
        try:
            for idx in torch.split(rows, batch_size):
                with self._autocast():
                    self.model(samples.gather(idx))
                parts.append(self.adversary.representation.float())
        finally:
            self.model.train(was_training)
        return torch.cat(parts)

    def _heldout_rows(self, samples: TensorSamples) -> Tensor:
        """Indices ``(n,)`` of the rows of ``samples`` whose users never trained the adversary."""
        from mtlkit.models.adversarial import heldout_users

        if self.adversary is None:
            raise ValueError("adversary is None: set TrainConfig.adversary to train and evaluate one")
        return torch.nonzero(heldout_users(samples["user"], self.adversary.holdout_every)).squeeze(1)

    @torch.no_grad()
    def evaluate_adversary(self, split: str | TensorSamples = "valid", *,
                           batch_size: int | None = None) -> dict[str, float]:
        """How well the adversary recovers its attribute for the *held-out* users of a split.

        Returns ``{"auc", "logloss", "n_users", "n_rows"}`` over the rows of users the adversary
        never trained on (0.5 AUC: the head cannot recover it; NaN when those rows hold one
        class). Below 0.5 means the encoder flipped the signal faster than the head followed:
        the attribute is still there — :meth:`probe_adversary` is the honest measure.
        """
        from mtlkit import metrics

        samples = self.split(split) if isinstance(split, str) else split.to(self.device)
        rows = self._heldout_rows(samples)
        result = {"auc": math.nan, "logloss": math.nan, "n_users": 0, "n_rows": int(len(rows))}
        if not len(rows):
            return result
        representations = self._representations(samples, rows, batch_size or self.config.eval_batch_size)
        logits = self.adversary.head(representations).cpu()
        target = samples[self.adversary.key][rows].float().cpu()
        result["n_users"] = int(torch.unique(samples["user"][rows]).numel())
        result["logloss"] = float(metrics.log_loss(target, torch.sigmoid(logits)))
        with contextlib.suppress(ValueError):  # one class only: the AUC is undefined
            result["auc"] = float(metrics.roc_auc(target, logits))
        return result

    def probe_adversary(self, split: str | TensorSamples = "test", *, probe: str = "linear",
                        max_train_rows: int = 10_000, batch_size: int | None = None) -> dict[str, float]:
        """A post-hoc probe of the adversary's attribute on the frozen model (Elazar & Goldberg, EMNLP 2018).

        Fits a fresh classifier (:func:`mtlkit.models.adversarial.probe_auc`, ``probe`` "linear"
        or "mlp") on the shared representations of training-split rows of the users the
        adversary trained on (at most ``max_train_rows``, a seeded sample), and scores it on
        the rows of the held-out users of ``split`` — the rows :meth:`evaluate_adversary`
        scores. Unlike the adversary head, the probe never chased a moving encoder, so its AUC
        says what the representation still gives away (0.5: nothing, to this probe).

        Returns:
            ``{"auc", "n_users", "n_rows", "n_train_rows"}``.
        """
        from mtlkit.models.adversarial import heldout_users, probe_auc

        if isinstance(max_train_rows, bool) or not isinstance(max_train_rows, int) or max_train_rows <= 0:
            raise ValueError(f"max_train_rows must be a positive int, got {max_train_rows!r}")
        samples = self.split(split) if isinstance(split, str) else split.to(self.device)
        rows = self._heldout_rows(samples)
        train = self.split("train")
        fit_rows = torch.nonzero(~heldout_users(train["user"], self.adversary.holdout_every)).squeeze(1)
        if len(fit_rows) > max_train_rows:
            sample = torch.randperm(len(fit_rows), generator=torch.Generator().manual_seed(self.config.seed))
            fit_rows = fit_rows[sample[:max_train_rows].sort().values.to(self.device)]
        result = {"auc": math.nan, "n_users": 0, "n_rows": len(rows), "n_train_rows": len(fit_rows)}
        if not len(rows):
            return result
        batch_size = batch_size or self.config.eval_batch_size
        key = self.adversary.key
        result["n_users"] = int(torch.unique(samples["user"][rows]).numel())
        result["auc"] = probe_auc(
            self._representations(train, fit_rows, batch_size).cpu().numpy(), train[key][fit_rows].cpu().numpy(),
            self._representations(samples, rows, batch_size).cpu().numpy(), samples[key][rows].cpu().numpy(),
            probe=probe, seed=self.config.seed,
        )  # fmt: skip
        return result

    # ------------------------------------------------------------------ checkpoints
    def run_config(self) -> dict[str, Any]:
        """What identifies this run: train config, model class and config, schema, run_info."""
        model_config = getattr(self.model, "config", None)
        model_info = dict(self.run_info.get("model", {}))
        model_info.setdefault("class", type(self.model).__name__)
        if dataclasses.is_dataclass(model_config):
            model_info.setdefault("config", to_jsonable(dataclasses.asdict(model_config)))
        config = {key: value for key, value in self.run_info.items() if key != "model"}
        config.update({
            "train": self.config.to_dict(),
            "model": to_jsonable(model_info),
            "schema": to_jsonable(self.schema.to_dict()),
        })
        return config

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly (only tensors and plain containers)."""
        np_state = np.random.get_state()
        python_state = random.getstate()
        rng = {
            "torch": torch.get_rng_state(),
            "numpy": {
                "kind": str(np_state[0]),
                "keys": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)),
                "pos": int(np_state[2]),
                "has_gauss": int(np_state[3]),
                "cached_gaussian": float(np_state[4]),
            },
            "python": [int(python_state[0]), list(python_state[1]), python_state[2]],
            "shuffle": self._shuffle_generator.get_state(),
        }
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        return {
            "format": CHECKPOINT_FORMAT,
            "config": self.run_config(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "weighting": self.strategy.state_dict(),
            "rng": rng,
            "epoch": self.epoch,
            "global_step": self.global_step,
            "history": self.history.state(),
            "early_stopping": {
                "best_value": self.best_value,
                "best_epoch": self.best_epoch,
                "bad_epochs": self._bad_epochs,
                "best_state": self._best_state,
                "best_adversary_state": self._best_adversary_state,
            },
            "finished": self.finished,
            **({"adversary": self.adversary.state_dict()} if self.adversary is not None else {}),
        }

    def save_checkpoint(self, path: str | os.PathLike) -> None:
        """Write :meth:`state_dict` to ``path`` atomically (rank 0 only; the others wait)."""
        if self.is_main_process:
            atomic_torch_save(path, self.state_dict())
        _barrier(self.dist)

    def resume(self, path: str | os.PathLike) -> Trainer:
        """Load a checkpoint written by :meth:`save_checkpoint` and continue from it.

        Loads with ``torch.load(weights_only=True)``. A checkpoint of a different run
        (model class or config, schema, tasks, weighting, optimiser, parameter shapes)
        raises ``ValueError`` naming what differs.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
        state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"checkpoint {str(path)!r} is not an mtlkit checkpoint of format {CHECKPOINT_FORMAT}")
        self._check_compatible(state, path)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.strategy.load_state_dict(state["weighting"])
        if self.adversary is not None:
            self.adversary.load_state_dict(state["adversary"])
        rng = state["rng"]
        torch.set_rng_state(rng["torch"])
        if "cuda" in rng and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
        np_rng = rng["numpy"]
        np.random.set_state((np_rng["kind"], np_rng["keys"].numpy().astype(np.uint32), np_rng["pos"],
                             np_rng["has_gauss"], np_rng["cached_gaussian"]))
        version, internal, gauss = rng["python"]
        random.setstate((version, tuple(internal), gauss))
        self._shuffle_generator.set_state(rng["shuffle"])
        self.epoch = int(state["epoch"])
        self.global_step = int(state["global_step"])
        self.history = History(state["history"]["steps"], state["history"]["epochs"])
        stopping = state["early_stopping"]
        self.best_value, self.best_epoch = stopping["best_value"], stopping["best_epoch"]
        self._bad_epochs = int(stopping["bad_epochs"])
        self._best_state = stopping["best_state"]
        if self._best_state is not None:
            self._best_state = {k: v.to(self.device) for k, v in self._best_state.items()}
        self._best_adversary_state = stopping.get("best_adversary_state")  # absent in older checkpoints
        if self._best_adversary_state is not None:
            self._best_adversary_state = {k: v.to(self.device) for k, v in self._best_adversary_state.items()}
        self.finished = bool(state.get("finished", False))
        return self

    def _check_compatible(self, state: Mapping[str, Any], path: Path) -> None:
        saved, here = state["config"], self.run_config()

        def differ(what: str, old: Any, new: Any) -> ValueError:
            return ValueError(
                f"checkpoint {str(path)!r} was written by a different run: {what} is {old!r} in the "
                f"checkpoint but {new!r} here"
            )

        for key in ("class", "name", "config"):
            old, new = saved["model"].get(key), here["model"].get(key)
            if old is not None and new is not None and old != new:
                if key == "config" and isinstance(old, dict) and isinstance(new, dict):
                    for field_name in sorted(set(old) | set(new)):
                        if old.get(field_name) != new.get(field_name):
                            raise differ(f"model config field {field_name!r}", old.get(field_name), new.get(field_name))
                raise differ(f"model {key}", old, new)
        old_schema, new_schema = saved["schema"], here["schema"]
        for key in sorted(set(old_schema) | set(new_schema)):
            if old_schema.get(key) != new_schema.get(key):
                raise differ(f"schema field {key!r}", old_schema.get(key), new_schema.get(key))
        for key in ("weighting", "weighting_kwargs", "optimizer", "scheduler", "adversary"):
            old, new = saved["train"].get(key), here["train"].get(key)
            if old != new:
                raise differ(f"train config {key!r}", old, new)
        ours = self.model.state_dict()
        theirs = state["model"]
        for name in sorted(set(ours) | set(theirs)):
            if name not in ours or name not in theirs:
                where = "only in the checkpoint" if name in theirs else "only in this model"
                raise ValueError(f"checkpoint {str(path)!r} was written by a different run: model parameter {name!r} is {where}")
            if ours[name].shape != theirs[name].shape:
                raise differ(f"the shape of model parameter {name!r}", tuple(theirs[name].shape), tuple(ours[name].shape))


def _compute_metrics(accumulator: Any, kind: str, pred: Tensor, target: Tensor, mask: Tensor,
                     users: Tensor) -> dict[str, float]:
    """The task's metrics from its accumulator; undefined ones (e.g. AUC of one class) are NaN."""
    names = METRICS[kind]
    try:
        values = accumulator.compute()
        return {name: float(values[name]) for name in names}
    except ValueError:
        pass
    # Some metric is undefined on this split: compute each one alone, NaN where undefined.
    from mtlkit import metrics

    observed = mask.bool()
    if not bool(observed.any()):
        return dict.fromkeys(names, float("nan"))
    y = target[observed]
    p = pred[observed]
    functions: dict[str, Callable[[], float]]
    if kind == "binary":
        prob = torch.sigmoid(p)
        functions = {
            "auc": lambda: metrics.roc_auc(y, p),
            "logloss": lambda: metrics.log_loss(y, prob),
            "gauc": lambda: metrics.group_auc(y, p, users[observed]),
        }
    else:
        functions = {"rmse": lambda: metrics.rmse(y, p), "mae": lambda: metrics.mae(y, p)}
    result = {}
    for name in names:
        try:
            result[name] = float(functions[name]())
        except ValueError:
            result[name] = float("nan")
    return result


# --------------------------------------------------------------------------- runs on disk
def load_run(run_dir: str | os.PathLike, *, device: str = "auto", quiet: bool = True) -> Trainer:
    """Rebuild a finished run from its folder (``config.json`` + ``checkpoint.pt``).

    The data set is rebuilt from the recorded loader arguments, the model from its name and
    config, and the trainer state (weights, history) from the checkpoint. Returns the
    :class:`Trainer`, ready for ``evaluate``, ``predict`` or ``fit`` (more epochs).
    """
    from mtlkit.data import load_dataset
    from mtlkit.models import build_model
    from mtlkit.utils import read_json

    run_dir = Path(run_dir)
    config_path, checkpoint_path = run_dir / "config.json", run_dir / "checkpoint.pt"
    for path in (config_path, checkpoint_path):
        if not path.is_file():
            raise FileNotFoundError(f"run folder {str(run_dir)!r} has no {path.name} (is it a finished `mtlkit train` run?)")
    config = read_json(config_path)
    data_info = dict(config["data"])
    data = load_dataset(data_info.pop("name"), **data_info)
    model_info = config["model"]
    model = build_model(model_info["name"], data.schema, **model_info.get("config", {}))
    train_config = TrainConfig.from_dict({**config["train"], "device": device, "quiet": quiet})
    run_info = {key: config[key] for key in ("data", "model")}
    trainer = Trainer(model, data, train_config, run_info=run_info)
    trainer.resume(checkpoint_path)
    return trainer
