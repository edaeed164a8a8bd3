"""Run folders: :func:`train_run` writes one, :func:`load_run` reads it back.

A run folder holds everything needed to inspect, evaluate or continue a training run:

======================  ============================================================
file                    what it holds
======================  ============================================================
``config.json``         the data set's loader arguments, the model's name, class and
                        config, the training config, the schema (``Trainer.run_config()``)
``checkpoint.pt``       the trainer state (:mod:`mtlkit.training.checkpoint`), loaded
                        with ``torch.load(weights_only=True)``
``metrics.json``        per split: per-task metrics, the macro/micro averages across
                        tasks and, with an adversary, its held-out AUC and a probe's AUC
``history.csv``         one row per logged step
``history_epochs.csv``  one row per epoch
======================  ============================================================

Work is never lost, and the folder is one consistent run at every moment:

* every file is written atomically (temporary file + rename), by rank 0 only under DDP, and
  temporary files that an interrupted write left behind are removed when a run starts;
* ``config.json`` is written before the first checkpoint and describes what every
  checkpoint in the folder was trained with; ``metrics.json`` and the histories are
  written when training ends, so a folder without ``metrics.json`` is a *partial* run
  (:func:`run_status` says which epoch it reached);
* a folder that holds another run is refused, unless the caller resumes it (the settings
  must match: :func:`~mtlkit.training.checkpoint.check_compatible`) or asks to overwrite
  it — then the old run is moved aside in one rename before the new one starts, so a crash
  never leaves a new ``config.json`` beside an old checkpoint.

The command line (``python -m mtlkit train``), the benchmarks and the notebooks all write
runs through :func:`train_run`, so a run folder looks the same whoever made it.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mtlkit.training import Trainer, TrainConfig

__all__ = [
    "CHECKPOINT_FILE",
    "CONFIG_FILE",
    "EPOCH_HISTORY_FILE",
    "METRICS_FILE",
    "RUN_FILES",
    "STEP_HISTORY_FILE",
    "RunExistsError",
    "RunInterrupted",
    "load_run",
    "read_run_config",
    "run_status",
    "split_metrics",
    "train_run",
]

CONFIG_FILE = "config.json"
CHECKPOINT_FILE = "checkpoint.pt"
METRICS_FILE = "metrics.json"
STEP_HISTORY_FILE = "history.csv"
EPOCH_HISTORY_FILE = "history_epochs.csv"
RUN_FILES = (CONFIG_FILE, CHECKPOINT_FILE, METRICS_FILE, STEP_HISTORY_FILE, EPOCH_HISTORY_FILE)
#: Keys config.json must have (dotted: nested) for a run to be rebuilt.
REQUIRED_CONFIG_KEYS = ("data", "data.name", "model", "model.name", "train", "schema")
#: Loader arguments that earlier versions recorded for every data set, also where the data set
#: ignores them (census-income, MovieLens); dropped on loading when the data set takes no such
#: argument, so those run folders still load.
LEGACY_DATA_KEYS = ("seed", "size")


class RunExistsError(ValueError):
    """The output folder already holds a run (refused, so it is never overwritten by accident)."""


class RunInterrupted(KeyboardInterrupt):
    """Training was interrupted (Ctrl-C); the last checkpoint is intact. A ``KeyboardInterrupt``
    that says where, so code that stops on Ctrl-C still stops.

    Attributes: ``folder``, ``epoch`` (the epoch in progress, 1-based), ``step`` (optimiser
    steps done).
    """

    def __init__(self, folder: Path, epoch: int, step: int) -> None:
        super().__init__(f"interrupted at epoch {epoch} step {step}; continue with --resume (run folder {folder}; "
                         "its last checkpoint is intact)")
        self.folder, self.epoch, self.step = folder, epoch, step


# --------------------------------------------------------------------------- reading a run
def read_run_config(run_dir: str | os.PathLike) -> dict[str, Any]:
    """``config.json`` of a run folder, checked: one clear ``ValueError`` naming the file when
    it is empty, truncated, not a JSON object, or lacks what a run needs."""
    from mtlkit.utils import read_json

    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"run folder {str(run_dir)!r} has no {CONFIG_FILE} (is it an `mtlkit train` run?)")
    if path.stat().st_size == 0:
        raise ValueError(f"{path} is empty; the run's settings are lost (train it again with --overwrite)")
    try:
        config = read_json(path)
    except ValueError as error:  # json.JSONDecodeError, UnicodeDecodeError
        raise ValueError(f"{path} is not valid JSON ({error}); it is truncated or was edited by hand") from None
    if not isinstance(config, dict):
        raise ValueError(f"{path} must hold a JSON object, got a {type(config).__name__}")
    for key in REQUIRED_CONFIG_KEYS:
        value: Any = config
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if value is None or (key != "data.name" and key != "model.name" and not isinstance(value, dict)):
            raise ValueError(f"{path} lacks {key!r} (or it is not an object); it is not a complete mtlkit run config")
    return config


def run_status(run_dir: str | os.PathLike) -> dict[str, Any]:
    """What a run folder holds: ``{"finished", "epoch", "epochs", "stopped"}`` from its checkpoint
    (``epoch`` 0 when there is no checkpoint yet)."""
    from mtlkit.training.checkpoint import read_checkpoint

    run_dir = Path(run_dir)
    config = read_run_config(run_dir)
    epochs = int(config["train"].get("epochs", 0))
    checkpoint = run_dir / CHECKPOINT_FILE
    if not checkpoint.is_file():
        return {"finished": False, "epoch": 0, "epochs": epochs, "stopped": None}
    state = read_checkpoint(checkpoint)
    return {"finished": bool(state.get("finished")), "epoch": int(state["epoch"]), "epochs": epochs,
            "stopped": state.get("stopped")}


def _data_arguments(data_info: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """(name, load_dataset keyword arguments) of a recorded ``config.json`` ``data`` entry."""
    from mtlkit.data.datasets import dataset_parameters

    kwargs = dict(data_info)
    name = kwargs.pop("name")
    takes = dataset_parameters(name)
    for key in LEGACY_DATA_KEYS:
        if key in kwargs and key not in takes:
            del kwargs[key]
    return name, kwargs


def load_run(run_dir: str | os.PathLike, *, device: str = "auto", quiet: bool = True) -> Trainer:
    """Rebuild a run from its folder (``config.json`` + ``checkpoint.pt``).

    The data set is rebuilt from the recorded loader arguments, the model from its name and
    config, and the trainer state (weights, history) from the checkpoint. Returns the
    :class:`~mtlkit.training.Trainer`, ready for ``evaluate``, ``predict`` or ``fit``; its
    ``finished`` is False for a partial run (see :func:`run_status`).
    """
    from mtlkit.data import load_dataset
    from mtlkit.models import build_model

    run_dir = Path(run_dir)
    config = read_run_config(run_dir)
    checkpoint_path = run_dir / CHECKPOINT_FILE
    if not checkpoint_path.is_file():
        raise FileNotFoundError(
            f"run folder {str(run_dir)!r} has no {CHECKPOINT_FILE}: the run was interrupted before its first "
            "epoch ended (continue it with `mtlkit train ... --resume`)"
        )
    name, data_kwargs = _data_arguments(config["data"])
    data = load_dataset(name, **data_kwargs)
    model_info = config["model"]
    model = build_model(model_info["name"], data.schema, **model_info.get("config", {}))
    train_config = TrainConfig.from_dict({**config["train"], "device": device, "quiet": quiet})
    run_info = {key: config[key] for key in ("data", "model")}
    trainer = Trainer(model, data, train_config, run_info=run_info)
    trainer.resume(checkpoint_path)
    return trainer


# --------------------------------------------------------------------------- writing a run
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


def _holds_run(folder: Path) -> bool:
    return folder.is_dir() and any((folder / name).exists() for name in RUN_FILES)


def _describe(folder: Path) -> str:
    """A few words on the run a folder holds, for the refusal message."""
    try:
        status = run_status(folder)
    except (OSError, ValueError):
        return "a run whose files are damaged"
    if status["finished"]:
        return f"a finished run ({status['epoch']} epochs)"
    return f"a partial run (epoch {status['epoch']} of {status['epochs']})"


def _replace_folder(folder: Path) -> None:
    """Move the run in ``folder`` aside in one rename, then delete it: the folder is never a
    mix of two runs, even if the process is killed in between."""
    aside = folder.with_name(f".{folder.name}.replaced-{uuid.uuid4().hex[:8]}")
    os.replace(folder, aside)
    folder.mkdir()
    shutil.rmtree(aside, ignore_errors=True)


def _check_resumable(config: Mapping[str, Any], data_kwargs: Mapping[str, Any], model_name: str, path: Path) -> None:
    """Refuse --resume when the data set or the model name differ from the recorded run (the
    checkpoint check compares the model config, schema and training settings)."""
    recorded = dict(config["data"])
    if recorded.get("name") == data_kwargs.get("name"):
        recorded = {"name": recorded["name"], **_data_arguments(recorded)[1]}
    differences = [
        f"data {key} is {recorded.get(key)!r} in the run but {data_kwargs.get(key)!r} here"
        for key in sorted(set(recorded) | set(data_kwargs))
        if recorded.get(key) != data_kwargs.get(key)
    ]
    if config["model"].get("name") != model_name:
        differences.append(f"model is {config['model'].get('name')!r} in the run but {model_name!r} here")
    if differences:
        raise ValueError(f"cannot resume {path}: " + "; ".join(differences))


def train_run(
    data_kwargs: dict[str, Any],
    model_name: str,
    model_kwargs: dict[str, Any],
    config: TrainConfig,
    out: str | os.PathLike,
    *,
    resume: bool = False,
    overwrite: bool = False,
    data: Any = None,
) -> tuple[Trainer, dict[str, Any]]:
    """Train one model and write its run folder ``out``; returns ``(trainer, metrics)``.

    Args:
        data_kwargs: :func:`~mtlkit.data.load_dataset` arguments, ``name`` included (recorded
            in ``config.json`` so :func:`load_run` can rebuild the data).
        model_name, model_kwargs: :func:`~mtlkit.models.build_model`'s name and config fields.
        config: the training config.
        out: the run folder (created).
        resume: continue the run in ``out`` from its checkpoint (settings must match; only
            the device, progress output and, unless the schedule spans them, the number of
            epochs may change — a change of epochs is recorded in ``config.json``).
        overwrite: replace a run that ``out`` already holds (otherwise refused).
        data: the data set already built from ``data_kwargs`` (saves building it twice).

    Returns:
        the trainer and ``metrics`` = ``{"run": {...}, "valid": split_metrics, "test": ...}``.

    Raises:
        RunExistsError: ``out`` holds a run and neither ``resume`` nor ``overwrite`` is set.
        RunInterrupted: Ctrl-C during training (the last checkpoint is intact).
    """
    import mtlkit
    from mtlkit.data import load_dataset
    from mtlkit.models import build_model
    from mtlkit.training.distributed import barrier
    from mtlkit.utils import remove_temporary_files, seed_everything, write_json

    out = Path(out)
    resuming = resume and (out / CHECKPOINT_FILE).is_file()
    previous = read_run_config(out) if resuming else None
    if previous is not None:
        _check_resumable(previous, data_kwargs, model_name, out)
    elif _holds_run(out):
        # --resume of a run killed before its first checkpoint has only config.json to lose.
        nothing_trained = {name for name in RUN_FILES if (out / name).exists()} == {CONFIG_FILE}
        if not (overwrite or (resume and nothing_trained)):
            raise RunExistsError(
                f"--out {out} already holds {_describe(out)}; continue it with --resume, replace it with "
                "--overwrite, or choose another folder"
            )
    if data is None:
        kwargs = dict(data_kwargs)
        data = load_dataset(kwargs.pop("name"), **kwargs)
    seed_everything(config.seed)  # the model's initial weights depend on the seed too
    model = build_model(model_name, data.schema, **model_kwargs)
    trainer = Trainer(model, data, config, run_info={"data": data_kwargs, "model": {"name": model_name}})
    checkpoint = out / CHECKPOINT_FILE
    if resuming:
        trainer.resume(checkpoint)  # refuses a checkpoint trained with other settings
    run_config = {
        **trainer.run_config(),
        "distributed": {"world_size": trainer.dist.world_size},
        "mtlkit_version": mtlkit.__version__,
    }
    if previous is not None:
        run_config["resumes"] = list(previous.get("resumes", []))
        old_epochs = previous["train"].get("epochs")
        if old_epochs != config.epochs:
            run_config["resumes"].append({"at_epoch": trainer.epoch, "epochs": [old_epochs, config.epochs]})
    if trainer.is_main_process:
        if _holds_run(out) and not resuming:
            _replace_folder(out)  # --overwrite, or --resume of a run with nothing trained yet
        out.mkdir(parents=True, exist_ok=True)
        remove_temporary_files(out)
        write_json(out / CONFIG_FILE, run_config)  # before the first checkpoint: it describes them all
    barrier(trainer.dist)
    started = time.perf_counter()
    try:
        trainer.fit(checkpoint_path=checkpoint)
    except KeyboardInterrupt:
        raise RunInterrupted(out, trainer.epoch + 1, trainer.global_step) from None
    train_seconds = time.perf_counter() - started
    metrics: dict[str, Any] = {
        "run": {
            "data": data_kwargs["name"],
            "model": model_name,
            "weighting": config.weighting,
            "epochs": trainer.epoch,
            "best_epoch": trainer.best_epoch,
            "stopped": trainer.stopped,
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
        trainer.history.to_csv(out / STEP_HISTORY_FILE, out / EPOCH_HISTORY_FILE)
        write_json(out / METRICS_FILE, metrics)  # last: its presence marks a finished run
    return trainer, metrics
