"""When does sharing help? The transfer experiment on the synthetic funnel, with known truth.

A multi-task model shares parameters between a *dense* task (click: a label on every
impression) and a *sparse* one (purchase, click AND buy: a few percent positive). Sharing can
help the sparse task — the click data trains the shared layers it also uses — or hurt it, when
the tasks want different things (negative transfer). The MMoE paper varies task relatedness
(Ma et al., KDD 2018, §3.2) and the literature expects, in short: sharing helps the sparse task
most when its labels are scarce and the tasks related, hurts when they are unrelated or opposed,
and gated experts (MMoE, PLE; Tang et al., RecSys 2020) lose less than a shared bottom there.

The funnel has both knobs: ``task_relatedness`` ρ, the correlation of each user's click and
purchase affinities, and :func:`~mtlkit.data.datasets.keep_labels_of_users`, which keeps the
purchase labels of a fraction of the users only (in training and validation; the test split
scores everyone). One *cell* of the experiment (:func:`run_cell`) draws a world from a seed,
trains every model on it with the same budget and validation-based early stopping, and scores
the test split — beside the achievable bound (:mod:`mtlkit.stats`) on the same rows. Models are
compared with the single-task baseline *paired by seed* (:func:`mtlkit.stats.paired_comparison`).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from mtlkit.data import columns as C
from mtlkit.stats import PairedComparison, bound_metrics, paired_comparison, trivial_metrics

__all__ = [
    "DEMO_MODELS",
    "DEMO_SETTINGS",
    "DENSE_TASK",
    "MODELS",
    "SPARSE_TASK",
    "TransferSetting",
    "compare_with_single",
    "report_lines",
    "run_cell",
    "run_cells",
]

DENSE_TASK, SPARSE_TASK = C.CLICK, C.PURCHASE
MODELS = ("single", "shared-bottom", "mmoe", "ple")
#: One budget for every model: small towers over a small encoder, experts of one width.
MODEL_SIZES: dict[str, dict[str, Any]] = {
    "single": {"bottom_hidden": [32]},
    "shared-bottom": {"bottom_hidden": [32]},
    "mmoe": {"n_experts": 4, "expert_hidden": [32]},
    "ple": {"n_levels": 1, "n_shared_experts": 2, "n_task_experts": 1, "expert_hidden": [32]},
}
ENCODER = {"embedding_dim": 8, "d_model": 16, "d_ff": 32, "tower_hidden": [16]}


@dataclass(frozen=True)
class TransferSetting:
    """One cell of the grid and its training budget.

    Attributes:
        relatedness: ρ, the funnel's ``task_relatedness``.
        label_fraction: the share of users whose purchase labels are observed.
        world: extra :func:`~mtlkit.data.synthetic.make_recsys_funnel` arguments (sizes).
        seq_len: behaviour-sequence length.
        epochs: at most this many epochs; the epoch with the best validation purchase AUC is
            kept (early stopping with ``patience``).
        batch_size, lr: Adam's batch and learning rate.
        sparse_task: the task whose labels are made scarce: "purchase" (click AND buy over every
            impression: the CTCVR, which contains the click) or "conversion" (buy given click,
            labelled on clicked impressions only: the CVR, related to the click only through ρ).
    """

    relatedness: float
    label_fraction: float
    world: Mapping[str, Any] = field(default_factory=dict)
    seq_len: int = 10
    epochs: int = 8
    patience: int = 2
    batch_size: int = 1024
    lr: float = 1e-2
    sparse_task: str = SPARSE_TASK


def run_cell(setting: TransferSetting, seed: int, models: Sequence[str] = MODELS, *,
             device: str = "cpu") -> dict[str, Any]:
    """Train ``models`` on one world (``seed``) of ``setting``; score the test split.

    Returns:
        ``{"seed", "setting", "bound": {task: {"auc", "logloss"}}, "trivial": ...,
        "models": {model: {"parameters", "epochs", "best_epoch", "seconds",
        "test": {task: {"auc", "logloss"}}}}}``.
    """
    from mtlkit.data import load_dataset
    from mtlkit.data.datasets import keep_labels_of_users
    from mtlkit.models import build_model
    from mtlkit.training import Trainer, TrainConfig

    sparse = setting.sparse_task
    data = load_dataset("synthetic-funnel", seed=seed, seq_len=setting.seq_len, tasks=(DENSE_TASK, sparse),
                        task_relatedness=setting.relatedness, **dict(setting.world))
    if setting.label_fraction < 1.0:
        data = keep_labels_of_users(data, sparse, setting.label_fraction, seed=seed)
    result: dict[str, Any] = {
        "seed": seed,
        "setting": asdict(setting),
        "bound": bound_metrics(data.test, data.schema.task_names),
        "trivial": trivial_metrics(data.train, data.test, data.schema.task_kinds),
        "models": {},
    }
    config = TrainConfig(epochs=setting.epochs, batch_size=setting.batch_size, lr=setting.lr, device=device,
                         seed=seed, quiet=True, early_stopping=f"valid/{sparse}/auc", patience=setting.patience)
    for name in models:
        torch.manual_seed(seed)
        model = build_model(name, data.schema, **ENCODER, **MODEL_SIZES[name])
        trainer = Trainer(model, data, config)
        started = time.perf_counter()
        trainer.fit()
        test = trainer.evaluate("test")
        result["models"][name] = {
            "parameters": model.num_parameters(),
            "epochs": trainer.epoch,
            "best_epoch": trainer.best_epoch,
            "seconds": round(time.perf_counter() - started, 2),
            "test": {task: {"auc": test[task]["auc"], "logloss": test[task]["logloss"]} for task in test},
        }
    return result


def compare_with_single(cells: Iterable[Mapping[str, Any]], task: str, metric: str = "auc"
                        ) -> dict[str, PairedComparison]:
    """Each shared model minus the single-task baseline on ``task``'s ``metric``, paired by seed,
    over ``cells`` (the results of :func:`run_cell` for one setting and several seeds)."""
    cells = sorted(cells, key=lambda c: c["seed"])
    higher = metric == "auc"
    single = [c["models"]["single"]["test"][task][metric] for c in cells]
    shared = [name for name in cells[0]["models"] if name != "single"]
    return {
        name: paired_comparison([c["models"][name]["test"][task][metric] for c in cells], single,
                                higher_is_better=higher)
        for name in shared
    }


def run_cells(settings: Sequence[TransferSetting], seeds: Sequence[int], models: Sequence[str] = MODELS, *,
              jobs: int = 1, device: str = "cpu") -> list[dict[str, Any]]:
    """:func:`run_cell` for every setting and seed, in ``jobs`` worker processes (one torch thread
    each, started fresh with ``spawn``; a worker's result does not depend on which one ran it)."""
    tasks = [(setting, seed, tuple(models), device) for setting in settings for seed in seeds]
    if jobs <= 1:
        return [run_cell(setting, seed, models, device=device) for setting, seed, models, device in tasks]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        return list(pool.map(_run_one_thread, tasks))


def _run_one_thread(task: tuple[TransferSetting, int, tuple[str, ...], str]) -> dict[str, Any]:
    setting, seed, models, device = task
    torch.set_num_threads(1)
    return run_cell(setting, seed, models, device=device)


def report_lines(cells: Sequence[Mapping[str, Any]], task: str = SPARSE_TASK) -> list[str]:
    """A plain-text report of one setting's cells: each model's test AUC on ``task`` (mean ± std
    over seeds) beside the bound and the share of the gap closed, then each shared model's paired
    gain over the single-task one with its verdict."""
    from mtlkit.stats import gap_closed

    names = list(cells[0]["models"])
    bound = statistics.fmean(c["bound"][task]["auc"] for c in cells)
    lines = [f"  {'model':<14} {task + ' AUC':>16}  {'bound':>6}  {'gap closed':>10}"]
    for name in names:
        values = [c["models"][name]["test"][task]["auc"] for c in cells]
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        closed = statistics.fmean(gap_closed(v, 0.5, c["bound"][task]["auc"]) for v, c in zip(values, cells))
        lines.append(f"  {name:<14} {statistics.fmean(values):>8.4f} ± {spread:.4f}  {bound:>6.4f}  {closed:>10.0%}")
    for name, comparison in compare_with_single(cells, task).items():
        lines.append(f"  {name} − single: {comparison}")
    return lines


#: The demo's models and settings (``python -m mtlkit demo``), chosen from the full grid
#: (``benchmarks/results/transfer-cpu.md``): with related tasks and purchase labels for 30 % of
#: the users every shared model beat the single-task one on all 5 seeds; with every label the
#: same models were within noise of it.
DEMO_MODELS = ("single", "shared-bottom", "mmoe")
DEMO_SETTINGS = {
    "related tasks, scarce purchase labels": TransferSetting(relatedness=0.9, label_fraction=0.3),
    "related tasks, every purchase label": TransferSetting(relatedness=0.9, label_fraction=1.0),
}
