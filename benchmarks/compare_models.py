"""Compare every multi-task model with SingleTask, per task, on one data set.

For each seed the data set is built once (``load_dataset(name, seed=s)``) and every model of
``--models`` is trained on it with the kit's :class:`~mtlkit.training.Trainer` and its default
model config (equal task weighting, Adam). The epoch is selected on validation only: the
trainer monitors the first task's validation AUC, keeps the best epoch's weights and restores
them (``early_stopping`` with ``restore_best``; patience = epochs, so every epoch is seen).
Each model's per-task **validation** and **test** metrics (AUC and gAUC for binary tasks, RMSE
for regression tasks) are reported as mean ± std over seeds beside SingleTask's, and every
model is compared with SingleTask **paired by seed** (each seed's data set is shared by every
model), judged by the one rule of :mod:`mtlkit.stats`; so are MMoE with the shared bottom and
PLE with MMoE, the papers' own claims.

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
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from _common import ABOVE_BELOW, SHARED_DATA, VERDICT_LINE, compare, fit_and_test, mean_std, n_parameters, paired_cell, paired_numbers, agreement_summary, paper_agreement, parse_reproduction_args, publish, reproduction_parser, timing_line, verdict_word  # noqa: I001
from mtlkit.data import columns as C
from mtlkit.data import load_dataset
from mtlkit.data.batch import ITEM, LABEL_MASK, LABELS, TIMESTAMP, USER
from mtlkit.metrics import higher_is_better, roc_auc

DATA_SETS = ("synthetic-funnel", "movielens-100k", "movielens-1m")
TITLES = {"synthetic-funnel": "the synthetic funnel", "movielens-100k": "MovieLens-100K", "movielens-1m": "MovieLens-1M"}
MODELS = ("single", "shared-bottom", "mmoe", "ple", "esmm")
DEFAULT_EPOCHS = {"synthetic-funnel": 3, "movielens-100k": 3, "movielens-1m": 1}
QUICK_WORLD = {"n_users": 150, "n_items": 80}  # synthetic-funnel with --quick
QUICK_TRAIN_ROWS = 3_000
REPORTED = {"binary": ("auc", "gauc"), "regression": ("rmse",)}  # of mtlkit.metrics.TASK_METRICS
LABELS_OF = {"auc": "AUC", "gauc": "gAUC", "rmse": "RMSE"}  # metric -> how tables name it
GAUC_NOTE = "gAUC needs both classes within a user; each user has one labelled row there"
#: The papers' claims between two shared models (MMoE paper: MMoE > shared bottom; PLE paper: PLE > MMoE).
CLAIMED_ORDER = (("mmoe", "shared-bottom"), ("ple", "mmoe"))
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
        mask = split[LABEL_MASK][:, j].numpy()
        return split[USER].numpy()[mask], split[ITEM].numpy()[mask], split[LABELS][:, j].numpy()[mask].astype(np.float64)

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


def applicable(scores, models: Sequence[str]) -> list[str]:
    """The models of ``models`` that were trained (not "not applicable")."""
    return [m for m in models if "not applicable" not in scores[m]]


def versus(scores, model: str, reference: str, split: str, task: str, metric: str):
    """``model`` − ``reference`` on one split, task and metric, paired by seed (None: undefined)."""
    return compare(scores[model][split][task][metric], scores[reference][split][task][metric],
                   higher_is_better=higher_is_better(metric))


def metric_table(scores, split: str, columns, models) -> list[str]:
    """Markdown rows: model | parameters | selected epoch | mean ± std of each (task, metric)."""
    lines = ["| model | parameters | selected epoch | " + " | ".join(f"{t} {LABELS_OF[m]}" for t, m in columns) + " |",
             "|---|---:|---:|" + "---:|" * len(columns)]
    for model in models:
        runs = scores[model]
        if "not applicable" in runs:
            lines.append(f"| {model} | — | — | " + " | ".join(["n/a"] * len(columns)) + " |")
            continue
        lines.append(f"| {model} | {runs['parameters']:,} | {statistics.fmean(runs['best_epoch']):.1f} | "
                     + " | ".join(mean_std(runs[split][t][m]) for t, m in columns) + " |")
    return lines


def paired_table(scores, split: str, columns, pairs: Sequence[tuple[str, str]]) -> list[str]:
    """Markdown rows: "A − B" | the paired difference and verdict of each (task, metric)."""
    lines = ["| paired by seed | " + " | ".join(f"{t} {LABELS_OF[m]}" for t, m in columns) + " |",
             "|---|" + "---:|" * len(columns)]
    for model, reference in pairs:
        lines.append(f"| {model} − {reference} | "
                     + " | ".join(paired_cell(versus(scores, model, reference, split, t, m)) for t, m in columns) + " |")
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


def baseline_lines(baselines, scores, models) -> list[str]:
    """Per regression task: the closed-form baselines' and the models' RMSE on the same split."""
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
        for model in applicable(scores, models):
            runs = scores[model]
            lines.append(f"| {model} (this run) | {mean_std(runs['valid'][task]['rmse'])} | "
                         f"{mean_std(runs['test'][task]['rmse'])} |")
    return lines


def baseline_sentences(data_name: str, baselines, scores, models) -> list[str]:
    """Each network against the damped bias baseline, paired by seed on test; and the published
    figures of the data set (another protocol: context, not a ranking) against the same kind of model."""
    sentences = []
    for task, per_baseline in baselines.items():
        bias = per_baseline["user + item bias"]["test"]
        words = {model: verdict_word(compare(scores[model]["test"][task]["rmse"], bias, higher_is_better=False),
                                     "beats", "trails", "is within noise of")
                 for model in applicable(scores, models)}
        sentences.append(f"- {task} RMSE on test against the damped user + item bias model fitted on the same "
                         f"split ({mean_std(bias)}), paired by seed: "
                         + "; ".join(f"{model} {word} it" for model, word in words.items()) + ".")
        if data_name in PUBLISHED_RMSE:
            published = dict(PUBLISHED_RMSE[data_name])
            reference = published["Baseline (BaselineOnly)"]
            word = verdict_word(compare(bias, [reference] * len(bias), higher_is_better=False), *ABOVE_BELOW)
            sentences.append(
                f"- Context, not a ranking ({SURPRISE_SOURCE}): SVD {published['SVD']:.3f}, SVD++ "
                f"{published['SVD++']:.3f}, BaselineOnly {reference:.3f}. The same kind of bias model scores "
                f"{statistics.fmean(bias):.3f} on this split's test rows, {'an error below' if word == 'above' else 'an error above' if word == 'below' else 'within noise of'} "
                "BaselineOnly's: the published figures come from random 5-fold cross-validation, this split "
                "holds out each user's last rating."
            )
    return sentences


def model_sentences(scores, columns, models, single: str) -> list[str]:
    """The generated verdicts: every model against ``single`` per task on test (and where validation
    differs), the seesaw, and the papers' claims between shared models, all paired by seed."""
    sentences = []
    others = [m for m in applicable(scores, models) if m != single]
    verdicts: dict[str, dict[str, list[str]]] = {}
    for model in others:
        found = {"helps": [], "hurts": []}
        disagree = []
        for task, metric in columns:
            test = versus(scores, model, single, "test", task, metric)
            valid = versus(scores, model, single, "valid", task, metric)
            if test is not None and test.verdict in found:
                found[test.verdict].append(f"{task} {LABELS_OF[metric]} ({paired_numbers(test)})")
            if test is not None and valid is not None and valid.verdict != test.verdict:
                disagree.append(f"{task} {LABELS_OF[metric]} {valid.verdict}")
        verdicts[model] = found
        sentences.append(
            f"- {model} − {single} on test: helps on {'; '.join(found['helps']) or 'no task'}; hurts on "
            f"{'; '.join(found['hurts']) or 'no task'}; within noise elsewhere."
            + (f" Validation differs: {', '.join(disagree)}." if disagree else "")
        )
    if others:
        seesaw = [m for m in others if verdicts[m]["helps"] and verdicts[m]["hurts"]]
        every = [m for m in others if len(verdicts[m]["helps"]) == len(columns)]
        sentences.append(f"- A seesaw (helps one task and hurts another on test): {', '.join(seesaw) or 'no model'}. "
                         f"Better than {single} on every task at once (the PLE paper's claim for PLE): "
                         f"{', '.join(every) or 'no model'}.")
    for model, reference in CLAIMED_ORDER:
        if model in others and reference in others:
            found = {f"{task} {LABELS_OF[metric]}": versus(scores, model, reference, "test", task, metric)
                     for task, metric in columns}
            sentences.append(f"- {model} − {reference} on test: "
                             + ", ".join(f"{label} {paired_cell(c)}" for label, c in found.items())
                             + f" — {agreement_summary(found)}.")
    last = [e == max(runs["best_epoch"]) for m in others + [single] for runs in [scores[m]] for e in runs["best_epoch"]]
    epochs = max(max(scores[m]["best_epoch"]) for m in others + [single]) if others else 0
    sentences.append(f"- The epoch selected on validation was the last of the {epochs} on {sum(last)} of {len(last)} runs.")
    return sentences


def cvr_sentence(cvr_task: str, cvr_scores, reference) -> str:
    """ESMM's pCVR test AUC, against the main table's SingleTask ``cvr_task`` tower (paired by seed) when it ran."""
    text = f"- ESMM's pCVR tower scores test {cvr_task} AUC {mean_std(cvr_scores['test'])}"
    if "test" not in reference or cvr_task not in reference["test"]:
        return text + f" (no SingleTask {cvr_task} reference in this run)."
    comparison = compare(cvr_scores["test"], reference["test"][cvr_task]["auc"])
    return (text + f" against SingleTask's {cvr_task} tower, trained on those labels, "
            f"{mean_std(reference['test'][cvr_task]['auc'])}: {paired_cell(comparison)}; "
            f"{paper_agreement(comparison)} (a better CVR).")


def esmm_lines(esmm_tasks: EsmmTasks, scores, columns, dropped, cvr_scores, reference) -> list[str]:
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
        f"are trained on the same rows and tasks, so the paired differences compare like with like"
        + (f"; left out as undefined on every seed: {', '.join(dropped)} ({GAUC_NOTE})." if dropped else "."),
    ]
    for split, title in (("valid", "Validation"), ("test", "Test")):
        lines += ["", f"{title}:", "", *metric_table(scores, split, columns, ["single", "esmm"]), "",
                  *paired_table(scores, split, columns, [("esmm", "single")])]
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
    for key in (USER, ITEM, TIMESTAMP):
        if not torch.equal(samples[key].cpu(), expected[key]):
            raise RuntimeError(f"the {split} rows of the ESMM and the default task sets differ in {key!r}")
    j = reference.schema.task_names.index(cvr_task)
    observed = expected[LABEL_MASK][:, j]  # (N,)
    model = trainer.model
    model.eval()
    with torch.no_grad():
        logits = torch.cat([model.cvr_logit(batch).float().cpu() for batch in samples.batches(4096)])  # (N,)
    return roc_auc(expected[LABELS][observed, j].numpy(), logits[observed].numpy())


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

    body, readme, seconds = [], [], {}
    dropped: list[str] = []
    if models:
        columns, dropped = reported_columns(scores, task_kinds)
        primary = [(t, m) for t, m in columns if m != "gauc"]
        pairs = [(m, "single") for m in applicable(scores, models) if m != "single"]
        for split, title in (("valid", "Validation (the split the epoch was selected on)"), ("test", "Test")):
            body += ["", f"#### {title}", "", *metric_table(scores, split, columns, models), "",
                     *paired_table(scores, split, columns, pairs)]
        body += ["", *[f"- **{m}** not applicable: {scores[m]['not applicable']}" for m in models
                       if "not applicable" in scores[m]]]
        body += baseline_lines(baselines, scores, models)
        sentences = [*model_sentences(scores, primary, models, "single"),
                     *baseline_sentences(args.data, baselines, scores, models)]
        body += ["", "**Measured** (test, paired by seed).", "", *sentences]
        readme += ["Test split, mean ± std over seeds:", "", *metric_table(scores, "test", primary, models), "",
                   *paired_table(scores, "test", primary, pairs), "", *sentences]
        seconds.update({model: scores[model]["seconds"] for model in applicable(scores, models)})
    if esmm_tasks:
        esmm_columns, esmm_dropped = reported_columns(esmm_scores, esmm_data.schema.task_kinds)
        esmm_primary = [(t, m) for t, m in esmm_columns if m != "gauc"]
        reference = scores.get("single", {})
        body += esmm_lines(esmm_tasks, esmm_scores, esmm_columns, esmm_dropped, cvr_scores, reference)
        sentences = [*model_sentences(esmm_scores, esmm_primary, ["single", "esmm"], "single"),
                     cvr_sentence(esmm_tasks.cvr_task, cvr_scores, reference)]
        body += ["", f"**Measured (ESMM, tasks {list(esmm_tasks.tasks)}).**", "", *sentences]
        readme += ["", f"ESMM on tasks {list(esmm_tasks.tasks)} (`{esmm_tasks.ctcvr_task}` = "
                   f"{esmm_tasks.ctr_task} and {esmm_tasks.cvr_task}, on every row), test, paired by seed with a "
                   "SingleTask on the same tasks:", "",
                   *paired_table(esmm_scores, "test", esmm_primary, [("esmm", "single")]), "", *sentences]
        seconds.update({f"{model} (ESMM tasks)": esmm_scores[model]["seconds"] for model in ("single", "esmm")})

    shown = data if models else esmm_data  # the main table's data, or ESMM's when only it ran
    tasks_argument = "" if models else f", tasks={esmm_tasks.tasks}"
    data_line = f"data: `load_dataset('{args.data}', seed=s{tasks_argument})`" + (
        f" with {QUICK_WORLD}, seq_len 5" if args.quick and args.data == "synthetic-funnel" else "") + (
        f" — train {len(shown.train):,} rows" + (f" (**a random subset of the {shown.info['all_train_rows']:,}**)" if "all_train_rows" in shown.info else "")
        + f", valid {len(shown.valid):,}, test {len(shown.test):,}; tasks {dict(shown.schema.task_kinds)}")  # fmt: skip
    if esmm_tasks and models:
        data_line += f"; ESMM and its SingleTask reference: the same rows with `tasks={esmm_tasks.tasks}`"
    report, _ = publish(
        f"MTL models vs. SingleTask on {TITLES[args.data]} (per-task metrics, mean ± std over seeds)", device,
        [
            data_line,
            f"training: default model configs, equal weighting, Adam lr {args.lr:g}, batch {args.batch_size}, "
            f"{epochs} epoch{'s' if epochs > 1 else ''}; the epoch with the best validation {shown.schema.task_names[0]} "
            "AUC is kept (early stopping with restore_best, patience = epochs)"
            + (" — with one epoch there is nothing to select" if epochs == 1 else ""),
            f"mean ± std over {len(seeds)} seeds (data seed = training seed: "
            + ("world and split" if args.data == "synthetic-funnel" else "sampled negatives; the leave-last-out split is fixed")
            + ", initial weights, batch order); every model of a seed sees the same data, so differences are "
            "paired by seed (AUC/gAUC: higher is better; RMSE: lower is better)",
            VERDICT_LINE,
            *([f"left out as undefined on every seed: {', '.join(dropped)} ({GAUC_NOTE})"] if dropped else []),
            timing_line(seconds, "wall-clock training time of one model and seed"),
        ],
        ["**Claims** (for context):", "", *[f"- {claim}." for claim in CLAIMS], *body],
        name=f"compare_models-{args.data}", quick=args.quick, output=args.output, seeds=seeds, readme=readme,
        data={"scores": scores, "esmm_scores": esmm_scores, "pcvr_auc": cvr_scores, "baselines": baselines},
    )
    return report


if __name__ == "__main__":
    main()
