"""Run folders: :func:`train_run` writes one, :func:`load_run` reads it back.

A run folder holds everything needed to inspect, evaluate or continue a training run:

====================  ==============================================================
file                  what it holds
====================  ==============================================================
``config.json``       the data set's loader arguments, the model's name, class and config,
                      the training config, the schema (``Trainer.run_config()``)
``checkpoint.pt``     the trainer state (:mod:`mtlkit.training.checkpoint`), loaded with
                      ``torch.load(weights_only=True)``
``metrics.json``      per split: per-task metrics, the macro/micro averages across tasks
                      and, with an adversary, its held-out AUC and a linear probe's AUC
``history.csv``       one row per logged step
``history_epochs.csv``  one row per epoch
====================  ==============================================================

Every file is written atomically (temporary file + rename), by rank 0 only under DDP. The
command line (``python -m mtlkit train``), the benchmarks and the notebooks all write runs
through :func:`train_run`, so a run folder looks the same whoever made it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from mtlkit.training import Trainer, TrainConfig

__all__ = [
    "CHECKPOINT_FILE",
    "CONFIG_FILE",
    "EPOCH_HISTORY_FILE",
    "METRICS_FILE",
    "STEP_HISTORY_FILE",
    "load_run",
    "split_metrics",
    "train_run",
]

CONFIG_FILE = "config.json"
CHECKPOINT_FILE = "checkpoint.pt"
METRICS_FILE = "metrics.json"
STEP_HISTORY_FILE = "history.csv"
EPOCH_HISTORY_FILE = "history_epochs.csv"


def split_metrics(trainer: Trainer, split: str) -> dict[str, Any]:
    """A split's entry of ``metrics.json``: ``{"tasks", "summary"}`` from one forward pass,
    and with an adversary ``"adversary"``: its head's metrics on the held-out users and a
    fresh linear probe's AUC (:meth:`mtlkit.models.adversarial.Adversary.probe`), which
    measures what the frozen representation still gives away when the head — chasing a
    moving encoder — under-states it (Elazar & Goldberg, EMNLP 2018)."""
    result = trainer.report(split)  # every rank takes part (all-gather)
    if trainer.adversary is not None:
        result["adversary"] = {
            **trainer.evaluate_adversary(split),
            "linear_probe_auc": trainer.probe_adversary(split, probe="linear")["auc"],
        }
    return result


def train_run(
    data_kwargs: dict[str, Any],
    model_name: str,
    model_kwargs: dict[str, Any],
    config: TrainConfig,
    out: str | os.PathLike,
    *,
    resume: bool = False,
    data: Any = None,
) -> tuple[Trainer, dict[str, Any]]:
    """Train one model and write its run folder ``out``; returns ``(trainer, metrics)``.

    Args:
        data_kwargs: :func:`~mtlkit.data.load_dataset` arguments, ``name`` included (recorded
            in ``config.json`` so :func:`load_run` can rebuild the data).
        model_name, model_kwargs: :func:`~mtlkit.models.build_model`'s name and config fields.
        config: the training config.
        out: the run folder (created).
        resume: continue from ``out/checkpoint.pt`` when it exists.
        data: the data set already built from ``data_kwargs`` (saves building it twice).

    Returns:
        the trainer and ``metrics`` = ``{"run": {...}, "valid": split_metrics, "test": ...}``.
    """
    import mtlkit
    from mtlkit.data import load_dataset
    from mtlkit.models import build_model
    from mtlkit.utils import seed_everything, write_json

    out = Path(out)
    if data is None:
        kwargs = dict(data_kwargs)
        data = load_dataset(kwargs.pop("name"), **kwargs)
    seed_everything(config.seed)  # the model's initial weights depend on the seed too
    model = build_model(model_name, data.schema, **model_kwargs)
    trainer = Trainer(model, data, config, run_info={"data": data_kwargs, "model": {"name": model_name}})
    checkpoint = out / CHECKPOINT_FILE
    if resume and checkpoint.is_file():
        trainer.resume(checkpoint)
    run_config = {
        **trainer.run_config(),
        "distributed": {"world_size": trainer.dist.world_size},
        "mtlkit_version": mtlkit.__version__,
    }
    if trainer.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / CONFIG_FILE, run_config)
    started = time.perf_counter()
    trainer.fit(checkpoint_path=checkpoint)
    train_seconds = time.perf_counter() - started
    metrics: dict[str, Any] = {
        "run": {
            "data": data_kwargs["name"],
            "model": model_name,
            "weighting": config.weighting,
            "epochs": trainer.epoch,
            "best_epoch": trainer.best_epoch,
            "train_seconds": round(train_seconds, 3),
            "parameters": sum(p.numel() for p in trainer.model.parameters() if p.requires_grad),
        }
    }
    if config.adversary is not None:
        metrics["run"]["adversary"] = {"attribute": config.adversary, "strength": config.adversary_strength}
    for split in ("valid", "test"):
        if len(getattr(data, split)):
            metrics[split] = split_metrics(trainer, split)
    if trainer.is_main_process:
        write_json(out / METRICS_FILE, metrics)
        trainer.history.to_csv(out / STEP_HISTORY_FILE, out / EPOCH_HISTORY_FILE)
    return trainer, metrics


def load_run(run_dir: str | os.PathLike, *, device: str = "auto", quiet: bool = True) -> Trainer:
    """Rebuild a finished run from its folder (``config.json`` + ``checkpoint.pt``).

    The data set is rebuilt from the recorded loader arguments, the model from its name and
    config, and the trainer state (weights, history) from the checkpoint. Returns the
    :class:`~mtlkit.training.Trainer`, ready for ``evaluate``, ``predict`` or ``fit`` (more epochs).
    """
    from mtlkit.data import load_dataset
    from mtlkit.models import build_model
    from mtlkit.utils import read_json

    run_dir = Path(run_dir)
    config_path, checkpoint_path = run_dir / CONFIG_FILE, run_dir / CHECKPOINT_FILE
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
