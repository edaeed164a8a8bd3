"""Compare every multi-task model with SingleTask, per task, on one data set.

For each seed the data set is built once (``load_dataset(name, seed=s)``) and every model of
``--models`` is trained on it with the kit's :class:`~mtlkit.training.Trainer` and its default
model config (equal task weighting, Adam). The epoch is selected on validation only: the
trainer monitors the first task's validation AUC, keeps the best epoch's weights and restores
them (``early_stopping`` with ``restore_best``; patience = epochs, so every epoch is seen).
Each model's per-task **validation** and **test** metrics (AUC and gAUC for binary tasks, RMSE
for regression tasks) are reported as mean ± std over seeds beside SingleTask's, with
Δ = model − single; ``*`` marks |Δ| > 2 × the larger of the two standard deviations.

Data sets:

* ``synthetic-funnel`` (quick world, temporal split): tasks click, purchase (click AND purchase
  over all impressions, i.e. CTCVR) and rating (observed on purchases).
* ``movielens-100k`` / ``movielens-1m``: tasks click (rated vs. one sampled unseen movie), like
  (rating >= 4) and rating, each user's last rating held out for test and the one before it
  for validation (leave-last-out). Regression tasks are also scored by two closed-form
  baselines fitted on the training ratings, so the RMSE can be calibrated: the global mean
  and the damped user/item bias model r̂ = μ + b_u + b_i (Koren, "Factor in the Neighbors",
  TKDD 2010, §2.1), its damping λ chosen on validation. Published ML-100K / ML-1M RMSE figures
  are quoted beside them for context only: the protocols differ.

A model that cannot be built for the data set's tasks is reported as not applicable, with the
reason. ESMM (Ma et al., SIGIR 2018) needs a CTCVR task (click AND conversion, labelled on every
impression) next to the CTR task: the funnel's ``purchase`` is one, so there ESMM sits in the
main table. MovieLens's ``like`` is labelled on rated rows only (the post-click space, a CVR
label), so for MovieLens (:data:`ESMM_TASKS`) ESMM gets its own comparison: the data are rebuilt
from the same seed with tasks (click, click_like, rating), where ``click_like`` = watched AND
liked over every row (0 on sampled negatives), ESMM is built with ``ctcvr_task="click_like"``
and compared with a SingleTask trained on that same task set; its pCVR tower, an estimate of
p(like | watched), is also scored by AUC against the default data's ``like`` labels on the same
split rows, beside the main table's SingleTask ``like`` tower when that ran too. With
``--models esmm`` only that comparison runs. The ``lm`` model (a pretrained language model
over text) is left out: it needs a model download and is compared in its own notebook.

    python benchmarks/compare_models.py --data movielens-100k --threads 1
    python benchmarks/compare_models.py --data movielens-100k --models esmm --threads 1   # ESMM only
    python benchmarks/compare_models.py --data synthetic-funnel --threads 1
    python benchmarks/compare_models.py --quick --data synthetic-funnel   # smoke test, prints only

``--root`` (MovieLens): the folder holding ``ml-100k/`` (or ``ml-1m/``); default ``../shared/data``
beside the checkout when it holds the files, else the cache (downloaded from GroupLens).
"""

from __future__ import annotations

import math
import statistics
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from _common import SHARED_DATA, fit_and_test, header, mean_std, n_parameters, parse_reproduction_args, reproduction_parser, write_report  # noqa: I001
from mtlkit.data import columns as C
from mtlkit.data import load_dataset
from mtlkit.metrics import higher_is_better, roc_auc

DATA_SETS = ("synthetic-funnel", "movielens-100k", "movielens-1m")
TITLES = {"synthetic-funnel": "the synthetic funnel", "movielens-100k": "MovieLens-100K", "movielens-1m": "MovieLens-1M"}
MODELS = ("single", "shared-bottom", "mmoe", "ple", "esmm")
DEFAULT_EPOCHS = {"synthetic-funnel": 3, "movielens-100k": 3, "movielens-1m": 1}
QUICK_WORLD = {"n_users": 150, "n_items": 80}  # synthetic-funnel with --quick
QUICK_TRAIN_ROWS = 3_000
REPORTED = {"binary": ("auc", "gauc"), "regression": ("rmse",)}  # of mtlkit.metrics.TASK_METRICS
LABELS = {"auc": "AUC", "gauc": "gAUC", "rmse": "RMSE"}
GAUC_NOTE = "gAUC needs both classes within a user; each user has one labelled row there"
MARK = "\\*"  # a Markdown-escaped "*": the difference is beyond noise
BIAS_DAMPING = (0.0, 1.0, 3.0, 10.0, 25.0, 50.0)  # λ grid of the bias baseline (chosen on valid)

CLAIMS = [
    (
        "(MMoE; Ma et al., KDD 2018, §5–6, paraphrased) gating shared experts per task "
        "(MMoE) trains more easily and predicts better than a shared bottom, and the gain grows "
        "as the tasks become less related"
    ),
    (
        "(PLE; Tang et al., RecSys 2020, §1 and §5, paraphrased) shared-expert models show a "
        "\"seesaw\" — one task improves while another degrades against single-task models; PLE's "
        "task-specific plus shared experts improve every task at once over the single-task baseline"
    ),
    (
        "(ESMM; Ma et al., SIGIR 2018, §2–3, paraphrased) modelling pCTCVR = pCTR × pCVR over all "
        "impressions, with a shared embedding, improves CVR and CTCVR over models trained apart"
    ),
]


class EsmmTasks(NamedTuple):
    """ESMM's task set on a data set whose default tasks hold no entire-space CTCVR task."""

    tasks: tuple[str, ...]  # the tasks ESMM and its SingleTask reference are trained on
    ctr_task: str
    ctcvr_task: str  # observed on every row: ctr_task AND cvr_task
    cvr_task: str  # the default data's conditional (post-click) task that pCVR estimates


# MovieLens: click = watched, like = liked given watched (rated rows only), click_like = watched
# AND liked over every row (0 on sampled negatives). The funnel needs none: its purchase is CTCVR.
ESMM_TASKS = dict.fromkeys(
    ("movielens-100k", "movielens-1m"),
    EsmmTasks((C.CLICK, C.CLICK_LIKE, C.RATING_TASK), ctr_task=C.CLICK, ctcvr_task=C.CLICK_LIKE, cvr_task=C.LIKE),
)
# Published rating-prediction RMSE under random 5-fold cross-validation, default parameters:
# the "Benchmarks" section of the Surprise library's README (N. Hug, "Surprise: A Python
# library for recommender systems", JOSS 2020; github.com/NicolasHug/Surprise, README.md).
SURPRISE_SOURCE = "Surprise README, \"Benchmarks\" (Hug, JOSS 2020), random 5-fold CV, default parameters"
PUBLISHED_RMSE = {
    "movielens-100k": [
        ("SVD++", 0.920), ("k-NN Baseline (KNNBaseline)", 0.931), ("SVD", 0.934),
        ("Baseline (BaselineOnly)", 0.944), ("Slope One", 0.946), ("Centered k-NN", 0.951),
        ("NMF", 0.963), ("Co-Clustering", 0.963), ("k-NN (KNNBasic)", 0.980),
        ("Random (NormalPredictor)", 1.514),
    ],
    "movielens-1m": [
        ("SVD++", 0.862), ("SVD", 0.873), ("k-NN Baseline (KNNBaseline)", 0.895),
        ("Slope One", 0.907), ("Baseline (BaselineOnly)", 0.909), ("Co-Clustering", 0.915),
        ("NMF", 0.916), ("k-NN (KNNBasic)", 0.923), ("Centered k-NN", 0.929),
        ("Random (NormalPredictor)", 1.504),
    ],
}


# --------------------------------------------------------------------------- one data set
def build_data(name: str, seed: int, root: Path | None, quick: bool, max_train_rows: int | None,
               tasks: tuple[str, ...] | None = None):
    """``load_dataset(name, seed=seed, tasks=tasks)`` (``None``: the default tasks); with
    ``max_train_rows``, a random subset of the training rows (the same rows for any ``tasks``)."""
    if name == "synthetic-funnel":
        data = load_dataset(name, seed=seed, tasks=tasks, **(dict(QUICK_WORLD, seq_len=5) if quick else {}))
    else:
        data = load_dataset(name, seed=seed, tasks=tasks, root=root, download=root is None)
    if max_train_rows is not None and max_train_rows < len(data.train):
        keep = torch.randperm(len(data.train), generator=torch.Generator().manual_seed(seed))[:max_train_rows]
        data.info["all_train_rows"] = len(data.train)
        data.train = data.train.subset(keep.sort().values)
    return data


def regression_baselines(data, task: str) -> dict[str, dict[str, float]]:
    """RMSE on valid and test of two closed-form predictors fitted on the training labels of ``task``.

    * global mean: r̂ = μ.
    * damped biases (Koren, TKDD 2010, §2.1): b_i = Σ_{u∈R(i)} (r_ui − μ) / (λ + |R(i)|), then
      b_u = Σ_{i∈R(u)} (r_ui − μ − b_i) / (λ + |R(u)|); r̂ = μ + b_u + b_i, with λ from
      :data:`BIAS_DAMPING` chosen on the validation RMSE. Unknown users/items (index 0 when
      unseen in training) get a zero bias. Predictions are not clipped (the networks' are not).

    Returns ``{baseline: {"valid": rmse, "test": rmse, "lambda": λ (bias model only)}}``.
    """
    j = data.schema.task_names.index(task)

    def observed(split):
        mask = split["label_mask"][:, j].numpy()
        return split["user"].numpy()[mask], split["item"].numpy()[mask], split["labels"][:, j].numpy()[mask].astype(np.float64)

    users, items, ratings = observed(data.train)
    mu = float(ratings.mean())
    n_users, n_items = data.schema.n_users, data.schema.n_items

    def fit(damping: float) -> tuple[np.ndarray, np.ndarray]:
        item_count = np.bincount(items, minlength=n_items)
        b_item = np.bincount(items, ratings - mu, minlength=n_items) / np.maximum(damping + item_count, 1e-12)
        user_count = np.bincount(users, minlength=n_users)
        b_user = np.bincount(users, ratings - mu - b_item[items], minlength=n_users) / np.maximum(damping + user_count, 1e-12)
        return b_user, b_item

    def rmse(split, b_user=None, b_item=None) -> float:
        u, i, r = observed(split)
        prediction = mu + (0.0 if b_user is None else b_user[u] + b_item[i])
        return float(np.sqrt(np.mean((prediction - r) ** 2)))

    fitted = {damping: fit(damping) for damping in BIAS_DAMPING}
    best = min(BIAS_DAMPING, key=lambda damping: rmse(data.valid, *fitted[damping]))
    return {
        "global mean": {"valid": rmse(data.valid), "test": rmse(data.test)},
        "user + item bias": {"valid": rmse(data.valid, *fitted[best]), "test": rmse(data.test, *fitted[best]),
                             "lambda": best},
    }  # fmt: skip


# --------------------------------------------------------------------------- tables
def columns_of(task_kinds: dict[str, str]) -> list[tuple[str, str]]:
    """(task, metric) pairs reported: AUC and gAUC per binary task, RMSE per regression task."""
    return [(task, metric) for task, kind in task_kinds.items() for metric in REPORTED[kind]]


def mean(values: list[float]) -> float:
    return statistics.fmean(values)


def std(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def delta(model: list[float], single: list[float]) -> tuple[float, bool]:
    """(mean(model) − mean(single), whether |Δ| > 2 × the larger std)."""
    difference = mean(model) - mean(single)
    return difference, abs(difference) > 2 * max(std(model), std(single))


def metric_table(scores, split: str, columns, models, single: str) -> list[str]:
    """Markdown rows: model | params | s/run | best epoch | one cell per (task, metric)."""
    lines = [
        "| model | parameters | seconds / run | selected epoch | "
        + " | ".join(f"{task} {LABELS[metric]}" for task, metric in columns) + " |",
        "|---|---:|---:|---:|" + "---:|" * len(columns),
    ]
    for model in models:
        runs = scores[model]
        if "not applicable" in runs:
            lines.append(f"| {model} | — | — | — | " + " | ".join(["n/a"] * len(columns)) + " |")
            continue
        cells = []
        for task, metric in columns:
            values = runs[split][task][metric]
            cell = mean_std(values)
            if model != single and single in scores and "not applicable" not in scores[single]:
                difference, beyond = delta(values, scores[single][split][task][metric])
                cell += f" (Δ {difference:+.4f}{MARK if beyond else ''})"
            cells.append(cell)
        lines.append(
            f"| {model} | {runs['parameters']:,} | {mean(runs['seconds']):.0f} | "
            f"{mean(runs['best_epoch']):.1f} | " + " | ".join(cells) + " |"
        )
    return lines


def reported_columns(scores, task_kinds: dict[str, str]) -> tuple[list[tuple[str, str]], list[str]]:
    """(columns, dropped): the (task, metric) pairs SingleTask scored on some seed and split, and
    the "task metric" names undefined everywhere (gAUC needs two classes within a user: MovieLens's
    like/valid has one labelled row per user)."""
    columns = [
        (task, metric) for task, metric in columns_of(task_kinds)
        if not all(math.isnan(v) for split in ("valid", "test") for v in scores["single"][split][task][metric])
    ]  # fmt: skip
    dropped = [f"{task} {metric}" for task, metric in columns_of(task_kinds) if (task, metric) not in columns]
    return columns, dropped


def baseline_lines(data_name: str, baselines, scores, models) -> list[str]:
    """Per regression task: the closed-form baselines' and the models' RMSE, and published figures."""
    lines = []
    for task, per_baseline in baselines.items():
        lines += [
            "",
            f"#### {task}: RMSE of closed-form baselines on the same split (rows with an observed {task})",
            "",
            "| predictor | valid RMSE | test RMSE |",
            "|---|---:|---:|",
        ]
        for baseline, values in per_baseline.items():
            extra = f" (λ chosen on valid: {sorted(set(values['lambda']))})" if "lambda" in values else ""
            lines.append(f"| {baseline}{extra} | {mean_std(values['valid'])} | {mean_std(values['test'])} |")
        for model in models:
            if "not applicable" not in scores[model]:
                runs = scores[model]
                lines.append(
                    f"| {model} (this run) | {mean_std(runs['valid'][task]['rmse'])} | {mean_std(runs['test'][task]['rmse'])} |"
                )
        if data_name in PUBLISHED_RMSE:
            lines += [
                "",
                f"Published {TITLES[data_name]} rating-prediction RMSE ({SURPRISE_SOURCE}): "
                + ", ".join(f"{name} {value:.3f}" for name, value in PUBLISHED_RMSE[data_name]) + ".",
                "",
                (
                    "These figures are **context, not a ranking**: the protocols differ. Theirs: random "
                    "5-fold cross-validation over all ratings, algorithms fitted on ratings only. Ours: each "
                    "user's *last* rating is the test row (a temporal leave-last-out: later tastes, newer "
                    "movies), the rating loss sees only observed ratings, and the networks share their "
                    "input with the click and like tasks. Compare our models with the closed-form baselines "
                    "above, which see exactly our split."
                ),
            ]
    return lines


def esmm_lines(esmm_tasks: EsmmTasks, task_kinds, scores, columns, dropped, cvr_scores, reference) -> list[str]:
    """The ESMM section: ESMM vs. SingleTask on ``esmm_tasks.tasks`` (valid and test), then
    ESMM's pCVR tower scored on the default data's conditional ``cvr_task`` labels, beside the
    main table's SingleTask ``cvr_task`` tower when this run trained it (``reference``)."""
    ctr, ctcvr, cvr = esmm_tasks.ctr_task, esmm_tasks.ctcvr_task, esmm_tasks.cvr_task
    lines = [
        "",
        f"#### ESMM vs. SingleTask on tasks {list(esmm_tasks.tasks)} (`ctr_task={ctr!r}`, `ctcvr_task={ctcvr!r}`)",
        "",
        f"`{ctcvr}` is the entire-space twin of `{cvr}`: 1 where the row is a real interaction "
        f"with `{cvr}` = 1, 0 elsewhere (sampled negatives included), observed on every row — the CTCVR "
        f"label ESMM fits as pCTR × pCVR, so ESMM's pCVR tower estimates p({cvr} | {ctr}). Both models "
        f"are trained on the same rows and tasks, so Δ compares like with like"
        + (f"; left out as undefined on every seed: {', '.join(dropped)} ({GAUC_NOTE})." if dropped else "."),
    ]
    for split, title in (("valid", "Validation"), ("test", "Test")):
        lines += ["", f"{title}:", "", *metric_table(scores, split, columns, ["single", "esmm"], "single")]
    single_cvr = reference.get("valid", {}).get(cvr, {}).get("auc")
    lines += [
        "",
        (
            f"ESMM's pCVR tower scored against the default data's `{cvr}` labels on the same split "
            f"rows (observed on the post-{ctr} rows only):"
        ),
        "",
        f"| model | valid {cvr} AUC | test {cvr} AUC |",
        "|---|---:|---:|",
        (
            f"| esmm pCVR (trained through pCTR × pCVR on `{ctcvr}`) | {mean_std(cvr_scores['valid'])} | "
            f"{mean_std(cvr_scores['test'])} |"
        ),
    ]
    if single_cvr:
        lines.append(f"| single (main table, trained on `{cvr}` directly) | {mean_std(single_cvr)} | "
                     f"{mean_std(reference['test'][cvr]['auc'])} |")  # fmt: skip
    return lines


def cvr_sentence(cvr_task: str, cvr_scores, reference) -> str:
    """ESMM's pCVR test AUC, against the main table's SingleTask ``cvr_task`` tower when it ran."""
    text = f"ESMM's pCVR tower scores test {cvr_task} AUC {mean_std(cvr_scores['test'])}"
    if "test" not in reference or cvr_task not in reference["test"]:
        return text + f" (no SingleTask {cvr_task} reference in this run)."
    difference, beyond = delta(cvr_scores["test"], reference["test"][cvr_task]["auc"])
    return (text + f" against SingleTask's {mean_std(reference['test'][cvr_task]['auc'])} "
            f"(Δ {difference:+.4f}, {'beyond' if beyond else 'within'} noise).")  # fmt: skip


def verdict(scores, columns, models, single: str) -> str:
    """The generated "Measured." sentence: wins and losses beyond 2 std on test (and whether valid agrees)."""
    wins, losses, applicable = [], [], [m for m in models if m != single and "not applicable" not in scores[m]]
    for model in applicable:
        for task, metric in columns:
            difference, beyond = delta(scores[model]["test"][task][metric], scores[single]["test"][task][metric])
            if not beyond:
                continue
            better = (difference > 0) == higher_is_better(metric)
            valid_difference, valid_beyond = delta(scores[model]["valid"][task][metric], scores[single]["valid"][task][metric])
            agrees = valid_beyond and (valid_difference > 0) == (difference > 0)
            text = f"{model} on {task} {LABELS[metric]} ({difference:+.4f}" + (
                ", valid agrees)" if agrees else ", not beyond noise on valid)")
            (wins if better else losses).append(text)
    parts = [
        "Beyond noise (|Δ| > 2 × the larger std) on **test**, against SingleTask: "
        + ("better — " + "; ".join(wins) if wins else "no MTL model is better on any task")
        + ". "
        + ("Worse — " + "; ".join(losses) + "." if losses else "No MTL model is worse on any task."),
    ]
    if not wins and not losses:
        parts.append("Every difference is within the seed-to-seed noise at this budget.")
    skipped = [m for m in models if "not applicable" in scores[m]]
    if skipped:
        parts.append("Not applicable: " + ", ".join(skipped) + " (see above).")
    return " ".join(parts)


# --------------------------------------------------------------------------- training
def train_and_record(model: str, data, seed: int, runs: dict, training: dict, data_name: str,
                     model_kwargs: dict | None = None):
    """Train ``model`` on ``data`` (epoch selected on the first task's validation AUC) and append
    its parameters, seconds, selected epoch and valid/test metrics to ``runs``.

    Returns the trainer, or ``None`` when the model does not fit the data's tasks (the reason is
    kept in ``runs["not applicable"]`` and later seeds skip the model).
    """
    if "not applicable" in runs:
        return None
    epochs = training["epochs"]
    started = time.perf_counter()
    try:
        trainer, test = fit_and_test(
            model, data, seed=seed, model_kwargs=model_kwargs, **training,
            early_stopping=f"valid/{data.schema.task_names[0]}/auc", patience=epochs, restore_best=True,
        )  # fmt: skip
    except ValueError as error:  # the model does not fit this data set's tasks
        runs["not applicable"] = str(error)
        print(f"{model}: not applicable to {data_name}: {error}", flush=True)
        return None
    seconds = time.perf_counter() - started
    valid = trainer.evaluate("valid")
    runs["parameters"] = n_parameters(trainer.model)
    runs.setdefault("seconds", []).append(seconds)
    runs.setdefault("best_epoch", []).append(trainer.best_epoch)
    for split, result in (("valid", valid), ("test", test)):
        for task, values in result.items():
            for metric, value in values.items():
                runs.setdefault(split, {}).setdefault(task, {}).setdefault(metric, []).append(value)
    print(f"seed {seed} {model} on {list(data.schema.task_names)}: {seconds:.0f} s, best epoch "
          f"{trainer.best_epoch}, valid {valid}, test {test}", flush=True)  # fmt: skip
    return trainer


def cvr_auc(trainer, reference, split: str, cvr_task: str) -> float:
    """AUC of ESMM's pCVR tower (:meth:`~mtlkit.models.esmm.ESMM.cvr_logit`) against the
    ``cvr_task`` labels of ``reference``, the default-task data of the same seed, on the rows of
    ``split`` where they are observed (the post-click space, e.g. rated rows for ``like``).

    Raises:
        RuntimeError: the two data sets' rows differ (they are built from the same seed).
    """
    samples, expected = trainer.split(split), getattr(reference, split)
    for key in ("user", "item", "timestamp"):
        if not torch.equal(samples[key].cpu(), expected[key]):
            raise RuntimeError(f"the {split} rows of the ESMM and the default task sets differ in {key!r}")
    j = reference.schema.task_names.index(cvr_task)
    observed = expected["label_mask"][:, j]  # (N,)
    model = trainer.model
    model.eval()
    with torch.no_grad():
        logits = torch.cat([model.cvr_logit(batch).float().cpu() for batch in samples.batches(4096)])  # (N,)
    return roc_auc(expected["labels"][observed, j].numpy(), logits[observed].numpy())


# --------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> str:
    parser = reproduction_parser(
        __doc__.splitlines()[0],
        quick_help=f"tiny world (funnel) / {QUICK_TRAIN_ROWS:,} training rows, 1 epoch, 2 seeds; print only",
    )
    parser.add_argument("--data", choices=DATA_SETS, default="synthetic-funnel")
    parser.add_argument("--root", type=Path, default=None, help="MovieLens: folder holding ml-100k/ or ml-1m/")
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS),
                        help="models to compare (default all; 'single' is the reference)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs (default: funnel 3, MovieLens-100K 3, MovieLens-1M 1)")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--max-train-rows", type=int, default=None,
                        help=f"train on a random subset of this many rows (default all; {QUICK_TRAIN_ROWS:,} with --quick)")
    args, device, seeds = parse_reproduction_args(parser, argv)
    for name in ("epochs", "batch_size", "max_train_rows"):
        value = getattr(args, name)
        if value is not None and value <= 0:
            parser.error(f"--{name.replace('_', '-')} must be a positive integer, got {value!r}")
    if not args.lr > 0:
        parser.error(f"--lr must be > 0, got {args.lr!r}")
    epochs = args.epochs or (1 if args.quick else DEFAULT_EPOCHS[args.data])
    max_train_rows = args.max_train_rows or (QUICK_TRAIN_ROWS if args.quick else None)
    requested = list(dict.fromkeys(args.models))
    # ESMM on a data set without an entire-space CTCVR task: its own comparison (see ESMM_TASKS).
    esmm_tasks = ESMM_TASKS.get(args.data) if "esmm" in requested else None
    models = [model for model in requested if not (esmm_tasks and model == "esmm")]
    models = list(dict.fromkeys(["single", *models])) if models else []  # the reference runs first
    root = args.root
    folder = "ml-" + args.data.removeprefix("movielens-")
    if root is None and args.data.startswith("movielens") and (SHARED_DATA / folder).is_dir():
        root = SHARED_DATA

    scores: dict[str, dict] = {model: {} for model in models}
    esmm_scores: dict[str, dict] = {"single": {}, "esmm": {}}
    cvr_scores: dict[str, list[float]] = {"valid": [], "test": []}  # pCVR AUC on the cvr_task labels
    baselines: dict[str, dict[str, dict[str, list[float]]]] = {}
    task_kinds: dict[str, str] = {}
    training = {"device": args.device, "epochs": epochs, "batch_size": args.batch_size, "lr": args.lr}
    for seed in seeds:
        data = build_data(args.data, seed, root, args.quick, max_train_rows)
        if models:
            task_kinds = data.schema.task_kinds
            for task, kind in task_kinds.items():
                if kind != "regression":
                    continue
                for baseline, values in regression_baselines(data, task).items():
                    for key, value in values.items():
                        baselines.setdefault(task, {}).setdefault(baseline, {}).setdefault(key, []).append(value)
        for model in models:
            train_and_record(model, data, seed, scores[model], training, args.data)
        if esmm_tasks:
            esmm_data = build_data(args.data, seed, root, args.quick, max_train_rows, tasks=esmm_tasks.tasks)
            esmm_kwargs = {"ctr_task": esmm_tasks.ctr_task, "ctcvr_task": esmm_tasks.ctcvr_task}
            train_and_record("single", esmm_data, seed, esmm_scores["single"], training, args.data)
            trainer = train_and_record("esmm", esmm_data, seed, esmm_scores["esmm"], training, args.data, esmm_kwargs)
            if trainer is None:  # ESMM_TASKS names tasks that do not fit ESMM: a bug, not a result
                raise RuntimeError(f"ESMM_TASKS[{args.data!r}] does not fit ESMM: {esmm_scores['esmm']['not applicable']}")
            for split in ("valid", "test"):
                cvr_scores[split].append(cvr_auc(trainer, data, split, esmm_tasks.cvr_task))
            print(f"seed {seed} esmm pCVR AUC on {esmm_tasks.cvr_task}: valid {cvr_scores['valid'][-1]:.4f}, "
                  f"test {cvr_scores['test'][-1]:.4f}", flush=True)  # fmt: skip

    report_lines, measured = [], []
    if models:
        columns, dropped = reported_columns(scores, task_kinds)
        for split, title in (("valid", "Validation (the split the epoch was selected on)"), ("test", "Test")):
            report_lines += ["", f"#### {title}", "", *metric_table(scores, split, columns, models, "single")]
        not_applicable = [f"- **{m}** not applicable: {scores[m]['not applicable']}" for m in models
                          if "not applicable" in scores[m]]  # fmt: skip
        if not_applicable:
            report_lines += ["", *not_applicable]
        report_lines += baseline_lines(args.data, baselines, scores, models)
        measured.append(f"**Measured.** {verdict(scores, columns, models, 'single')}")
    else:
        dropped = []
    if esmm_tasks:
        esmm_kinds = esmm_data.schema.task_kinds
        esmm_columns, esmm_dropped = reported_columns(esmm_scores, esmm_kinds)
        reference = scores.get("single", {})
        report_lines += esmm_lines(esmm_tasks, esmm_kinds, esmm_scores, esmm_columns, esmm_dropped, cvr_scores, reference)
        measured.append(
            f"**Measured (ESMM, tasks {list(esmm_tasks.tasks)}).** "
            + verdict(esmm_scores, esmm_columns, ["single", "esmm"], "single")
            + " " + cvr_sentence(esmm_tasks.cvr_task, cvr_scores, reference)
        )

    heading = f"MTL models vs. SingleTask on {TITLES[args.data]}"
    shown = data if models else esmm_data  # the main table's data, or ESMM's when only it ran
    tasks_argument = "" if models else f", tasks={esmm_tasks.tasks}"
    data_line = f"data: `load_dataset('{args.data}', seed=s{tasks_argument})`" + (
        f" with {QUICK_WORLD}, seq_len 5" if args.quick and args.data == "synthetic-funnel" else "") + (
        f" — train {len(shown.train):,} rows" + (f" (**a random subset of the {shown.info['all_train_rows']:,}**)" if "all_train_rows" in shown.info else "")
        + f", valid {len(shown.valid):,}, test {len(shown.test):,}; tasks {dict(shown.schema.task_kinds)}")  # fmt: skip
    if esmm_tasks and models:
        data_line += f"; ESMM and its SingleTask reference: the same rows with `tasks={esmm_tasks.tasks}`"
    lines = header(
        heading + " (per-task metrics, mean ± std over seeds)",
        device,
        [
            data_line,
            f"training: default model configs, equal weighting, Adam lr {args.lr:g}, batch {args.batch_size}, "
            f"{epochs} epoch{'s' if epochs > 1 else ''}; the epoch with the best validation {shown.schema.task_names[0]} "
            "AUC is kept (early stopping with restore_best, patience = epochs)"
            + (" — with one epoch there is nothing to select" if epochs == 1 else ""),
            f"mean ± std over {len(seeds)} seeds (data seed = training seed: "
            + ("world and split" if args.data == "synthetic-funnel" else "sampled negatives; the leave-last-out split is fixed")
            + ", initial weights, batch order)",
            (
                "Δ = model − single; `*` = |Δ| > 2 × the larger std of the two (AUC/gAUC: higher is better; "
                "RMSE: lower is better)"
            ),
            "seconds / run: wall-clock training time of one model and seed, on a shared machine (noisy)",
            *([f"left out as undefined on every seed: {', '.join(dropped)} ({GAUC_NOTE})"] if dropped else []),
        ],
    )
    report = "\n".join(
        lines
        + ["**Claims** (for context):", "", *[f"- {claim}." for claim in CLAIMS]]
        + report_lines
        + [line for text in measured for line in ("", text)]
    ) + "\n"
    write_report(report, f"compare_models-{args.data}", device, args.quick, args.output)
    return report


if __name__ == "__main__":
    main()
