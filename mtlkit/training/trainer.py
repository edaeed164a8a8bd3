"""The trainer: one loop for every model, weighting strategy and device.

A training step of a multi-task model is

    predictions = model(batch)                               # {task: (B,)}
    L_t = masked mean of loss_t(prediction_t, label_t)        # over observed labels only
    strategy.backward({t: L_t}, shared parameters)            # fills .grad (weighted sum,
                                                              #  or gradient surgery)
    clip ‖∇‖ to grad_clip_norm; optimiser step; scheduler step

and everything else is bookkeeping around it, each concern in a room of its own:
:mod:`~mtlkit.training.history` (the rows of the run's history and the callbacks),
:mod:`~mtlkit.training.evaluation` (one forward pass feeds metrics and summaries),
:mod:`~mtlkit.training.early_stopping`, :mod:`~mtlkit.training.checkpoint` (exact resume),
:mod:`~mtlkit.training.distributed` (DDP) and :mod:`~mtlkit.training.auxiliary` (a second
objective beside the tasks, such as the gradient-reversal adversary of
:mod:`mtlkit.models.adversarial`).

Design choices a reader may want to change:

- The whole split lives on the device (it is moved once); a batch is an index gather
  (``index_select``) of every field, in an order drawn from a seeded ``torch.Generator``. No
  ``DataLoader``, no per-sample Python, no host-to-device copy per step.
- Per-step losses are summed on the device and read back every ``log_every`` steps only,
  so the GPU is not made to wait for the host each step.
- ``resume`` is exact: "2 epochs" and "1 epoch, save, resume, 1 more" end with identical
  weights (see :mod:`~mtlkit.training.checkpoint`).

Strategies that need per-task gradients (``requires_grads = True``: PCGrad, MGDA, CAGrad and
GradNorm) are refused under DDP with a clear error: they are nonlinear in the per-task
gradients, so computing them exactly would need every task's gradient all-reduced before
the surgery, which DDP's single all-reduce of the combined gradient does not give.
``record_gradients`` and auxiliary objectives (whose parameters DDP does not all-reduce) are
refused under DDP for the same reason.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from mtlkit.checks import check_int
from mtlkit.data.batch import LABEL_MASK, LABELS
from mtlkit.metrics import TASK_METRICS
from mtlkit.training import evaluation
from mtlkit.training.checkpoint import (
    CHECKPOINT_FORMAT,
    capture_rng,
    check_compatible,
    read_checkpoint,
    restore_rng,
)
from mtlkit.training.config import TrainConfig
from mtlkit.training.distributed import barrier, global_masked_means, setup_distributed
from mtlkit.training.early_stopping import EarlyStopping
from mtlkit.training.history import History, RunningMeans
from mtlkit.utils import atomic_torch_save, seed_everything, to_jsonable

if TYPE_CHECKING:
    from mtlkit.data.tensors import MultiTaskData, TensorSamples
    from mtlkit.training.auxiliary import AuxiliaryObjective

__all__ = ["Trainer"]

SPLIT_NAMES = ("train", "valid", "test")


class Trainer:
    """Train a multi-task model on :class:`~mtlkit.data.tensors.MultiTaskData`.

    Args:
        model: a model from :mod:`mtlkit.models` (``forward(batch) -> {task: (B,)}``,
            ``shared_parameters()``, ``last_shared_parameters()``).
        data: train/valid/test splits and their schema.
        config: a :class:`~mtlkit.training.TrainConfig` (defaults when None).
        callbacks: objects with any of ``on_train_begin``, ``on_step_end``,
            ``on_epoch_end``, ``on_train_end`` (see :class:`~mtlkit.training.Callback`).
        run_info: extra JSON-able facts stored with checkpoints and checked on resume,
            e.g. ``{"model": {"name": "mmoe"}, "data": {"name": "synthetic-funnel", ...}}``.

    The constructor seeds every generator with ``config.seed``, moves the model and the
    data to the device, and builds the weighting strategy, the auxiliary objective
    (``config.adversary``), the optimiser and the scheduler.

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
        from mtlkit.weighting import make_weighting

        config = TrainConfig() if config is None else config
        if not isinstance(config, TrainConfig):
            raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
        self.config = config
        self.dist, self.device = setup_distributed(config.device)
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
            model.init_output_biases(data.train[LABELS], data.train[LABEL_MASK])
        self.model = model.to(self.device)
        self.callbacks = list(callbacks)
        self.run_info = to_jsonable(dict(run_info or {}))

        # The run's context (task kinds for uncertainty weighting, the seed for RLW's and
        # PCGrad's draws) goes to every strategy; weighting_kwargs may override it.
        weighting_kwargs = {"task_kinds": self.task_kinds, "seed": config.seed, **config.weighting_kwargs}
        self.strategy = make_weighting(config.weighting, self.task_names, **weighting_kwargs).to(self.device)
        if self.dist.enabled:
            if getattr(self.strategy, "requires_grads", False):
                raise ValueError(
                    f"weighting {config.weighting!r} needs per-task gradients and is not supported under "
                    "distributed training; use a loss-weighting strategy (equal, static, uncertainty, dwa, rlw)"
                )
            if config.record_gradients:
                raise ValueError("record_gradients is not supported under distributed training")
        self.auxiliary: AuxiliaryObjective | None = self._build_auxiliary()

        self._train_module = self._wrap_model()
        self.optimizer = self._build_optimizer()
        self._steps_per_epoch = max(1, math.ceil(len(self.data.train) / config.batch_size))
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self._lr_factor)
        self._shuffle_generator = torch.Generator().manual_seed(config.seed)

        self._splits: dict[str, TensorSamples] = {}
        self.epoch = 0  # completed epochs
        self.global_step = 0  # completed optimiser steps
        self.history = History()
        self.stop_training = False  # set by a callback to stop after the current epoch
        self.stopped: str | None = None  # why training stopped before config.epochs (kept in checkpoints)
        self.finished = False
        self._validated_losses = False
        self.early_stopping: EarlyStopping | None = None
        if config.early_stopping is not None:
            self._check_monitor(config.early_stopping)
            self.early_stopping = EarlyStopping(config.early_stopping, config.early_stopping_mode, config.patience)

    # ------------------------------------------------------------------ building blocks
    @property
    def is_main_process(self) -> bool:
        """True on rank 0 (and in single-process runs): the process that writes files."""
        return self.dist.is_main

    @property
    def adversary(self) -> AuxiliaryObjective | None:
        """The gradient-reversal adversary of ``config.adversary`` (None when off)."""
        return self.auxiliary

    @property
    def best_value(self) -> float | None:
        """The best monitored value so far (None without early stopping or before an epoch)."""
        return None if self.early_stopping is None else self.early_stopping.best_value

    @property
    def best_epoch(self) -> int | None:
        """The epoch (1-based) of :attr:`best_value`."""
        return None if self.early_stopping is None else self.early_stopping.best_epoch

    def _modules(self) -> dict[str, nn.Module]:
        """The modules whose weights early stopping keeps: the model and the auxiliary objective."""
        modules: dict[str, nn.Module] = {"model": self.model}
        if self.auxiliary is not None:
            modules[self.auxiliary.name] = self.auxiliary
        return modules

    def _wrap_model(self) -> nn.Module:
        module: nn.Module = self.model
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            module = DistributedDataParallel(module, device_ids=ids)
        if self.config.compile:
            module = torch.compile(module)
        return module

    def _build_auxiliary(self) -> AuxiliaryObjective | None:
        """The auxiliary objective the config asks for: the adversary of ``config.adversary``."""
        config = self.config
        if config.adversary is None:
            return None
        if self.dist.enabled:
            raise ValueError("adversary is not supported under distributed training (its head is not all-reduced)")
        from mtlkit.models.adversarial import Adversary

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
        if self.auxiliary is not None:  # the auxiliary objective learns with the model
            params += list(self.auxiliary.parameters())
        # Learnable strategy parameters (e.g. uncertainty's log-variances) are trained too,
        # without weight decay: decaying a log-variance towards 0 has no meaning.
        strategy_params = [p for p in self.strategy.parameters() if p.requires_grad]
        groups: list[dict[str, Any]] = [{"params": params}]
        if strategy_params:
            groups.append({"params": strategy_params, "weight_decay": 0.0})
        cls = torch.optim.AdamW if self.config.optimizer == "adamw" else torch.optim.Adam
        return cls(groups, lr=self.config.lr, weight_decay=self.config.weight_decay)

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
        if name not in SPLIT_NAMES:
            raise ValueError(f"split must be 'train', 'valid' or 'test', got {name!r}")
        if name not in self._splits:
            self._splits[name] = getattr(self.data, name).to(self.device)
        return self._splits[name]

    def _samples(self, split: str | TensorSamples) -> TensorSamples:
        """A split by name, or a ``TensorSamples`` moved to the device."""
        return self.split(split) if isinstance(split, str) else split.to(self.device)

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

        A run that stopped early (early stopping, or a callback's ``stop_training``) records
        why in :attr:`stopped` and in its checkpoints; resuming it does not train further.

        Returns:
            the :class:`~mtlkit.training.History`.
        """
        target = self.config.epochs if epochs is None else check_int("epochs", epochs, low=1)
        if resume_from is not None:
            self.resume(resume_from)
        self.stop_training = False
        self._call("on_train_begin")
        while self.epoch < target and self.stopped is None:
            record = self._train_epoch(target)
            self.epoch += 1
            if len(self.data.valid):
                record.update(self._validation_record())
            self.strategy.end_epoch({t: record[f"loss/{t}"] for t in self.task_names})
            if self.early_stopping is not None and self.early_stopping.update(record, self.epoch, self._modules()):
                self.stopped = (f"early stopping: {self.early_stopping.monitor} did not improve for "
                                f"{self.early_stopping.patience} epoch(s) after epoch {self.best_epoch}")
            self.history.epoch_records.append(record)
            self._report_epoch(record)
            self._call("on_epoch_end", record)
            if self.stop_training and self.stopped is None:
                self.stopped = f"a callback stopped training after epoch {self.epoch}"
            # The checkpoint of this epoch records whether training is over and why, so a
            # resume after a crash honours the stop instead of training on.
            self.finished = self.epoch >= self.config.epochs or self.stopped is not None
            if checkpoint_path is not None:
                self.save_checkpoint(checkpoint_path)
        if self.finished and self.early_stopping is not None and self.config.restore_best:
            if self.early_stopping.restore(self._modules()) and checkpoint_path is not None:
                self.save_checkpoint(checkpoint_path)
        self._call("on_train_end")
        return self.history

    def _validation_record(self) -> dict[str, float]:
        """The epoch row's ``valid/<task>/<metric>`` and ``valid/<auxiliary>/<metric>`` columns."""
        record = {
            f"valid/{task}/{metric}": value
            for task, values in self.evaluate("valid").items()
            for metric, value in values.items()
        }
        if self.auxiliary is not None:
            for metric, value in self.auxiliary.evaluate(self, self.split("valid")).items():
                record[f"valid/{self.auxiliary.name}/{metric}"] = value
        return record

    def _call(self, hook: str, *args: Any) -> None:
        for callback in self.callbacks:
            method = getattr(callback, hook, None)
            if method is not None:
                method(self, *args)

    def _batch_indices(self, n: int) -> list[Tensor]:
        """This epoch's global batches (shuffled by the seeded generator); each rank shards them."""
        order = torch.randperm(n, generator=self._shuffle_generator).to(self.device)
        batches = list(torch.split(order, self.config.batch_size))
        return self.dist.usable_batches(batches) if self.dist.enabled else batches

    def _task_losses(self, outputs: Mapping[str, Tensor], batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """The masked mean loss of every task; under DDP the globally exact version."""
        from mtlkit.losses import task_loss

        labels, mask = batch[LABELS], batch[LABEL_MASK]
        validate = not self._validated_losses  # check labels on the first step only (one sync)
        losses = {
            task: task_loss(self.task_kinds[task], outputs[task].float(), labels[:, i], mask[:, i], validate=validate)
            for i, task in enumerate(self.task_names)
        }
        self._validated_losses = True
        return global_masked_means(losses, mask, self.dist)

    def _train_step(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        """One optimiser step; returns the step's values ``(T + 1 [+ 1],)`` — the task losses,
        the weighted total and the auxiliary loss — on the device, and the task weights."""
        with self._autocast():
            outputs = self._train_module(batch)
        losses = self._task_losses(outputs, batch)
        self.optimizer.zero_grad(set_to_none=True)
        values = []
        if self.auxiliary is not None:
            # First, so the strategy's backward (which may free the graph) comes last and its
            # gradients accumulate onto these.
            auxiliary_loss = self.auxiliary.loss(batch)
            auxiliary_loss.backward(retain_graph=True)
            values.append(auxiliary_loss.detach().reshape(1))
        weights = self.strategy.backward(
            losses,
            list(self.model.shared_parameters()),
            last_shared_parameters=list(self.model.last_shared_parameters()),
            diagnostics=self.config.record_gradients,
        )
        if self.config.grad_clip_norm is not None:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.global_step += 1
        weights = {t: float(weights[t]) for t in self.task_names}
        with torch.no_grad():
            step_losses = torch.stack([losses[t].detach() for t in self.task_names])  # (T,)
            total = sum(weights[t] * step_losses[j] for j, t in enumerate(self.task_names))
            return torch.cat([step_losses, total.reshape(1), *values]), weights

    def _train_epoch(self, target_epochs: int) -> dict[str, float]:
        train = self.split("train")
        self.model.train()
        self.strategy.train()
        batches = self._batch_indices(len(train))
        n_values = len(self.task_names) + 1 + (self.auxiliary is not None)
        epoch = RunningMeans(n_values, self.device)
        window = RunningMeans(n_values, self.device)

        bar = self._progress(len(batches), f"epoch {self.epoch + 1}/{target_epochs}")
        for i, global_rows in enumerate(batches):
            values, weights = self._train_step(train.gather(self.dist.shard(global_rows)))
            diagnostics = getattr(self.strategy, "last_diagnostics", None) or {}
            for running in (window, epoch):
                running.add(values, weights, diagnostics, len(global_rows))
            if self.global_step % self.config.log_every == 0 or i == len(batches) - 1:
                record = self._record(window)
                self.history.step_records.append(record)
                self._call("on_step_end", record)
                if bar is not None:
                    bar.set_postfix({t: f"{record[f'loss/{t}']:.4f}" for t in self.task_names}, refresh=False)
                window.reset()
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
        record = self._record(epoch)
        record["epoch_time_s"] = epoch.elapsed()
        return record

    def _record(self, running: RunningMeans) -> dict[str, float]:
        """A history row from the running means of a window or an epoch."""
        values, weights, diagnostics = running.means()
        n_tasks = len(self.task_names)
        record: dict[str, float] = {"epoch": self.epoch + 1, "step": self.global_step, "loss": values[n_tasks]}
        for j, t in enumerate(self.task_names):
            record[f"loss/{t}"] = values[j]
        if self.auxiliary is not None:
            record[f"loss/{self.auxiliary.name}"] = values[n_tasks + 1]
        for t in self.task_names:
            record[f"weight/{t}"] = weights.get(t, 0.0)
        record["lr"] = float(self.optimizer.param_groups[0]["lr"])
        record.update(diagnostics)
        record["samples_per_s"] = running.samples_per_second()
        return record

    def _report_epoch(self, record: Mapping[str, float]) -> None:
        """One line per epoch under the progress bars: train losses and the first metric per task."""
        if self.config.quiet or not self.is_main_process:
            return
        from tqdm.auto import tqdm

        parts = [f"loss/{t}={record[f'loss/{t}']:.4f}" for t in self.task_names]
        for t in self.task_names:
            key = f"valid/{t}/{TASK_METRICS[self.task_kinds[t]][0]}"
            if key in record:
                parts.append(f"{key}={record[key]:.4f}")
        tqdm.write(f"epoch {record['epoch']} ({record['epoch_time_s']:.1f} s): " + " ".join(parts))

    def _progress(self, total: int, desc: str) -> Any:
        if self.config.quiet or not self.is_main_process:
            return None
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True)

    def _check_monitor(self, monitor: str) -> None:
        names = {"loss"} | {f"loss/{t}" for t in self.task_names}
        names |= {f"valid/{t}/{m}" for t in self.task_names for m in TASK_METRICS[self.task_kinds[t]]}
        if monitor not in names:
            raise ValueError(f"early_stopping must be one of {sorted(names)}, got {monitor!r}")
        if monitor.startswith("valid/") and not len(self.data.valid):
            raise ValueError(f"early_stopping monitors {monitor!r} but the valid split is empty")

    # ------------------------------------------------------------------ evaluation
    def _outputs(self, samples: TensorSamples, batch_size: int | None) -> dict[str, Tensor]:
        return evaluation.predict_outputs(
            self.model, samples, self.task_names, batch_size=batch_size or self.config.eval_batch_size,
            autocast=self._autocast, context=self.dist,
        )  # fmt: skip

    @torch.no_grad()
    def predict(self, split: str | TensorSamples = "test", *, logits: bool = False,
                batch_size: int | None = None) -> dict[str, Tensor]:
        """Predictions for every sample of a split (or a ``TensorSamples``), on the CPU.

        Returns:
            {task: (N,) tensor}: probabilities for binary tasks (logits with ``logits=True``),
            values for regression tasks.
        """
        outputs = self._outputs(self._samples(split), batch_size)
        return {
            task: (torch.sigmoid(values) if self.task_kinds[task] == "binary" and not logits else values).cpu()
            for task, values in outputs.items()
        }

    def _evaluation_samples(self, split: str | TensorSamples) -> TensorSamples:
        samples = self._samples(split)
        if not len(samples):
            name = split if isinstance(split, str) else "sample set"
            raise ValueError(f"split must hold at least one sample, got an empty {name}")
        return samples

    def evaluate(self, split: str | TensorSamples = "valid", *, batch_size: int | None = None) -> dict[str, dict[str, float]]:
        """Per-task metrics on a split, over observed labels only (see
        :func:`mtlkit.training.evaluation.task_metrics`); a metric undefined on the split is NaN."""
        samples = self._evaluation_samples(split)
        return evaluation.task_metrics(self._outputs(samples, batch_size), samples, self.task_kinds)

    def evaluate_warm_cold(self, split: str | TensorSamples = "test", *,
                           batch_size: int | None = None) -> dict[str, evaluation.PartMetrics]:
        """Per-task metrics on the rows of items seen in training and of cold items, from one
        forward pass (:func:`mtlkit.training.evaluation.warm_cold_metrics`)."""
        samples = self._evaluation_samples(split)
        return evaluation.warm_cold_metrics(self._outputs(samples, batch_size), samples, self.task_kinds)

    def report(self, split: str | TensorSamples = "valid", *, batch_size: int | None = None) -> dict[str, Any]:
        """``{"tasks": per-task metrics, "summary": macro/micro averages}`` from one forward pass."""
        samples = self._evaluation_samples(split)
        return evaluation.report(self._outputs(samples, batch_size), samples, self.task_kinds)

    def summaries(self, split: str | TensorSamples = "valid", *, batch_size: int | None = None) -> dict[str, Any]:
        """Macro and micro averages across tasks of a split (see :mod:`mtlkit.summaries`)."""
        return self.report(split, batch_size=batch_size)["summary"]

    def _require_adversary(self) -> Any:
        if self.auxiliary is None:
            raise ValueError("adversary is None: set TrainConfig.adversary to train and evaluate one")
        return self.auxiliary

    def evaluate_adversary(self, split: str | TensorSamples = "valid", *,
                           batch_size: int | None = None) -> dict[str, float]:
        """The adversary head's AUC on the held-out users of a split
        (:meth:`mtlkit.models.adversarial.Adversary.evaluate`)."""
        return self._require_adversary().evaluate(self, self._samples(split), batch_size=batch_size)

    def probe_adversary(self, split: str | TensorSamples = "test", *, probe: str = "linear",
                        max_train_rows: int = 10_000, batch_size: int | None = None) -> dict[str, float]:
        """A post-hoc probe of the adversary's attribute on the frozen model
        (:meth:`mtlkit.models.adversarial.Adversary.probe`)."""
        return self._require_adversary().probe(self, self._samples(split), probe=probe,
                                               max_train_rows=max_train_rows, batch_size=batch_size)

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

    def _auxiliary_names(self) -> tuple[str, ...]:
        return () if self.auxiliary is None else (self.auxiliary.name,)

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly (only tensors and plain containers)."""
        # Without early stopping the checkpoint still holds the (empty) state, as format 1 does.
        stopping = self.early_stopping or EarlyStopping("loss", "min", self.config.patience)
        state = {
            "format": CHECKPOINT_FORMAT,
            "config": self.run_config(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "weighting": self.strategy.state_dict(),
            "rng": capture_rng(self._shuffle_generator),
            "epoch": self.epoch,
            "global_step": self.global_step,
            "history": self.history.state(),
            "early_stopping": stopping.state_dict(("model", *self._auxiliary_names())),
            "finished": self.finished,
            "stopped": self.stopped,
        }
        if self.auxiliary is not None:
            state[self.auxiliary.name] = self.auxiliary.state_dict()
        return state

    def save_checkpoint(self, path: str | os.PathLike) -> None:
        """Write :meth:`state_dict` to ``path`` atomically (rank 0 only; the others wait)."""
        if self.is_main_process:
            atomic_torch_save(path, self.state_dict())
        barrier(self.dist)

    def resume(self, path: str | os.PathLike) -> Trainer:
        """Load a checkpoint written by :meth:`save_checkpoint` and continue from it.

        Loads with ``torch.load(weights_only=True)``. A checkpoint of a different run
        (model class or config, schema, tasks, weighting, optimiser, parameter shapes)
        raises ``ValueError`` naming what differs.
        """
        state = read_checkpoint(path)
        check_compatible(state["config"], self.run_config(), state["model"], self.model.state_dict(), path)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.strategy.load_state_dict(state["weighting"])
        if self.auxiliary is not None:
            self.auxiliary.load_state_dict(state[self.auxiliary.name])
        restore_rng(state["rng"], self._shuffle_generator)
        self.epoch = int(state["epoch"])
        self.global_step = int(state["global_step"])
        self.history = History(state["history"]["steps"], state["history"]["epochs"])
        if self.early_stopping is not None:
            names = ("model", *self._auxiliary_names())
            self.early_stopping.load_state_dict(state["early_stopping"], names, self.device)
        self.finished = bool(state.get("finished", False))
        self.stopped = state.get("stopped")  # absent before it was recorded
        return self
