"""Cold start: a pretrained language model against ID embeddings, on warm and on cold items.

An ID model learns one embedding per item seen in training; an item launched later (a cold
item) has id 0 and only the zero vector. A content model reads the item's title. Models
compared on the same task set (click, purchase / like, rating), with the same MMoE experts
(Ma et al., KDD 2018):

- **ID-MMoE**: ``build_model("mmoe", use_text=False)`` — user, item and field embeddings
  plus the behaviour-sequence Transformer (BST; Chen et al., DLP-KDD 2019);
- **ID-MMoE + title embeddings**: ``use_text=True`` — every item vector also gets a learned
  projection P·t_i of its frozen all-MiniLM-L6-v2 title embedding t_i
  (:func:`mtlkit.data.text.embed_texts`), which a cold item has too (``item_content``);
- **LM + MMoE, text only**: ``build_model("lm", experts="mmoe", id_features=False)`` —
  all-MiniLM-L6-v2 (Wang et al., NeurIPS 2020) reads "candidate title [SEP] recent history
  titles" (mean-pooled; frozen by default, so each distinct text is encoded once and cached)
  and MMoE experts and towers sit on top; it has no id embedding and no user or item field
  at all. With ``--history-titles N`` (N > 0) a second text-only row reads N history titles
  too (about 25× more distinct texts to encode than the candidate title alone);
- **LM hybrid + MMoE**: ``build_model("lm", experts="mmoe", id_features=True,
  use_text=False)`` — the LM's text representation of the candidate title concatenated with
  the ID-MMoE's feature encoder (user id, user and item fields, item ids, BST),
  x = [proj(LM(title)) ; enc(ids)]: the practitioner's LM-as-shared-encoder recommender.
  ``use_text=False`` keeps the title out of the ID half, so the title reaches it through the
  LM only.

The same ID models are also trained with the item-side fields (the funnel's category and
price; MovieLens' year and genres) removed from the inputs (``drop_input_fields``, "no item
fields"): they tell how much of what the title carries the ID model already gets from those fields.

Metrics (test split): per task, on warm rows (items seen in training) and on cold rows; on
the funnel also, on the same rows, the *oracle* AUC of the generator's ``true_click_prob`` (a
ceiling no model reaches: it includes each impression's hidden intent) and the *bound* AUC of
``bayes_click_prob`` (the intent integrated out: the best any model can do). Mean ± std over seeds (world, split and model). Models are
trained with early stopping on the validation click AUC, and the best epoch restored. Every
model of a seed sees the same data, so the LM models are compared with the ID models **paired
by seed**, judged by the one rule of :mod:`mtlkit.stats`.

Data:

- ``--data synthetic-funnel``: ``cold_item_fraction`` 0.3 and ``cold_start`` 0.8 — 30 % of
  the items launch at 80 % of the time span, i.e. at the start of the validation period, so
  both validation and test hold cold items (temporal split) and training holds none;
- ``--data movielens-100k`` (``--root``, default ``../shared/data``): the temporal split
  (80/10/10 by time), whose cold items are the movies first rated after the training period.
  The negatives of the click task are sampled from warm items only, so click AUC is undefined
  on cold rows; like and rating are measured there.

    python benchmarks/reproduce_cold_start.py --data synthetic-funnel --threads 1
    python benchmarks/reproduce_cold_start.py --data movielens-100k --threads 1 --seeds 1 --epochs 3
    python benchmarks/reproduce_cold_start.py --quick      # smoke test, prints only
"""

from __future__ import annotations

import math
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from _common import SHARED_DATA, VERDICT_LINE, compare, mean_std, paired_cell, parse_reproduction_args, publish, reproduction_parser, timing_line  # noqa: I001
from mtlkit.data import columns as C
from mtlkit.data import load_dataset
from mtlkit.data.batch import IS_COLD_ITEM, ITEM_CONTENT, LABELS, USER
from mtlkit.data.datasets import drop_input_fields
from mtlkit.data.tensors import MultiTaskData, TensorSamples
from mtlkit.metrics import higher_is_better, primary_metric, roc_auc
from mtlkit.models import build_model
from mtlkit.training import TrainConfig, Trainer

CLAIM = (
    "(the issue's expectation) a language model that reads an item's title scores items never "
    "seen in training better than an ID model, for which every cold item is the same zero "
    "embedding; it pays for this in training time"
)
DATA_SETS = ("synthetic-funnel", "movielens-100k")
# item-side fields per data set: a sparse field name or a dense field name prefix
ITEM_FIELDS = {"synthetic-funnel": ("category", "price"), "movielens-100k": ("year", "genres")}
HYBRID = "LM ({finetune}) hybrid + MMoE: candidate title ; ID features"


def funnel_world(args) -> dict:
    """The generator's arguments of the funnel world (without the seed)."""
    world = (dict(n_users=60, n_items=40, n_impressions=900) if args.quick
             else dict(n_users=400, n_items=200, n_impressions=args.n_impressions))  # fmt: skip
    return dict(world, cold_item_fraction=0.3, cold_start=0.8)


def load(args) -> tuple[MultiTaskData, str]:
    """The data set with title embeddings, and one line that describes it."""
    if args.data == "synthetic-funnel":
        world = funnel_world(args)
        data = load_dataset("synthetic-funnel", seed=args.seed, seq_len=8, with_text=True, **world)
        return data, f"`load_dataset('synthetic-funnel', seq_len=8, with_text=True, **{world})`, temporal split"
    root = args.root
    if root is None and (SHARED_DATA / "ml-100k").is_dir():
        root = SHARED_DATA
    data = load_dataset("movielens-100k", root=root, seed=args.seed, seq_len=8, split="temporal", with_text=True,
                        download=root is None)  # fmt: skip
    return data, "`load_dataset('movielens-100k', seq_len=8, split='temporal', with_text=True)` (1 sampled negative per rating)"


def affinity_oracles(data: MultiTaskData, args) -> dict[str, float]:
    """Click AUC on the cold test rows of two scores the generator knows, without the noise.

    ``true_click_prob`` includes the hidden intent η ~ N(0, 1) of each impression, which no
    model observes. Two noiseless parts of the click logit, from the generator's truth:
    a_iᵀv_j / √dim (user taste × item vector) and a_iᵀm_k / √dim (user taste × the centre of
    the item's category — all a title can tell about an unseen item). Rows of users unseen in
    training (index 0) are left out.
    """
    from mtlkit.data.synthetic import CATEGORY_WORDS, make_recsys_funnel

    world = make_recsys_funnel(**funnel_world(args), seed=args.seed)
    truth, test = world.truth, data.test
    raw_item = np.zeros(data.schema.n_items, np.int64)
    raw_item[list(data.item_index.values())] = list(data.item_index.keys())
    raw_user = np.zeros(len(data.user_index) + 1, np.int64)
    raw_user[list(data.user_index.values())] = list(data.user_index.keys())
    rows = (test[IS_COLD_ITEM] & (test[USER] > 0)).numpy()
    user = raw_user[test[USER].numpy()[rows]] - 1  # raw ids start at 1
    item = raw_item[test[ITEM_CONTENT].numpy()[rows]] - 1
    names = list(CATEGORY_WORDS)[: len(truth["category_centres"])]
    category = world.items["category"].map({name: k for k, name in enumerate(names)}).to_numpy()
    taste = truth["user_click_factors"][user]  # (n, dim)
    clicks = test[LABELS][:, 0].numpy()[rows]
    return {
        "click AUC on cold rows of a_iᵀv_j (user taste × item vector)":
            roc_auc(clicks, np.einsum("nd,nd->n", taste, truth["item_factors"][item])),
        "click AUC on cold rows of a_iᵀm_k (user taste × category centre)":
            roc_auc(clicks, np.einsum("nd,nd->n", taste, truth["category_centres"][category[item]])),
    }  # fmt: skip


def settings(args) -> dict[str, tuple[str, dict, bool]]:
    """label -> (model name, model kwargs, drop the item fields)."""
    lm = dict(finetune=args.finetune, experts="mmoe", max_length=16 if args.quick else 32, title_max_tokens=16)
    text_only = dict(lm, id_features=False)
    history = 1 if args.quick else args.history_titles
    runs = {
        "ID-MMoE": ("mmoe", dict(use_text=False), False),
        "ID-MMoE + title embeddings": ("mmoe", dict(use_text=True), False),
        f"LM ({args.finetune}) + MMoE, text only: candidate title": ("lm", dict(text_only, n_history_titles=0), False),
    }
    if history:
        runs[f"LM ({args.finetune}) + MMoE, text only: candidate + {history} history titles"] = (
            "lm", dict(text_only, n_history_titles=history), False)
    runs[HYBRID.format(finetune=args.finetune)] = (
        "lm", dict(lm, n_history_titles=0, id_features=True, use_text=False), False)
    runs["ID-MMoE, no item fields"] = ("mmoe", dict(use_text=False), True)
    runs["ID-MMoE + title embeddings, no item fields"] = ("mmoe", dict(use_text=True), True)
    return runs


def part_metrics(trainer: Trainer, samples: TensorSamples, schema) -> dict[str, float]:
    """Task metric (AUC or RMSE) on warm and on cold rows: ``{"click warm": …, "click cold": …}``
    (``Trainer.evaluate_warm_cold``, the evaluation notebook 11 shows)."""
    return {f"{task.name} {part}": result.tasks[task.name][primary_metric(task.kind)]
            for part, result in trainer.evaluate_warm_cold(samples).items() for task in schema.tasks}


def train(model_name: str, model_kwargs: dict, data: MultiTaskData, seed: int, args) -> dict[str, float]:
    torch.manual_seed(seed)
    model = build_model(model_name, data.schema, **model_kwargs)
    config = TrainConfig(epochs=args.epochs, batch_size=256, lr=args.lr, device=args.device, quiet=True, seed=seed,
                         early_stopping="valid/click/auc", patience=2)  # fmt: skip
    trainer = Trainer(model, data, config)
    start = time.perf_counter()
    trainer.fit()
    seconds = time.perf_counter() - start
    row = {**part_metrics(trainer, data.test, data.schema), "parameters trained": model.num_parameters(), "train s": seconds,
           "epochs run": len(trainer.history.epochs)}  # fmt: skip
    if model_name == "lm" and model.encoder.cache_enabled:
        row["texts encoded"] = len(model.encoder.cache)
    return row


def fmt(values: list[float], digits: int = 3) -> str:
    values = [v for v in values if not math.isnan(v)]
    return mean_std(values, digits) if values else "n/a"


def main(argv: list[str] | None = None) -> str:
    parser = reproduction_parser(__doc__.splitlines()[0], quick_help="tiny funnel, 1 epoch; print only")
    parser.add_argument("--data", choices=DATA_SETS, default="synthetic-funnel")
    parser.add_argument("--root", type=Path, default=None, help="folder holding ml-100k/ (default ../shared/data)")
    parser.add_argument("--epochs", type=int, default=None, help="most epochs (early stopping; default 10, quick 1)")
    parser.add_argument("--lr", type=float, default=3e-3, help="Adam learning rate of every model")
    parser.add_argument("--finetune", choices=("frozen", "last_n", "lora"), default="frozen")
    parser.add_argument("--n-impressions", type=int, default=8000, help="funnel impressions (400 users, 200 items)")
    parser.add_argument("--history-titles", type=int, default=0,
                        help="N > 0 adds a text-only LM row that also reads N history titles (default 0: none)")
    args, device, seeds = parse_reproduction_args(parser, argv)
    args.epochs = args.epochs or (1 if args.quick else 10)
    runs = settings(args)

    scores: dict[str, dict[str, list[float]]] = {label: {} for label in runs}
    facts: dict[str, list[float]] = {}
    for seed in seeds:
        args.seed = seed
        data, data_line = load(args)
        test, cold = data.test, data.test[IS_COLD_ITEM]
        fact = {"cold test rows": int(cold.sum()), "warm test rows": int((~cold).sum()),
                "cold test rows with a click": int(test[LABELS][cold, 0].sum()),
                "training rows per user": len(data.train) / (data.schema.n_users - 1)}  # fmt: skip
        if C.TRUE_CLICK_PROB in test:
            truth, clicks = test[C.TRUE_CLICK_PROB].numpy(), test[LABELS][:, 0].numpy()
            bound = test[C.BAYES_CLICK_PROB].numpy()
            for part, rows in (("warm", ~cold.numpy()), ("cold", cold.numpy())):
                fact[f"oracle click AUC, {part} (true_click_prob)"] = roc_auc(clicks[rows], truth[rows])
                # The attainable ceiling: the hidden intent integrated out (mtlkit.data.synthetic).
                fact[f"bound click AUC, {part} (bayes_click_prob, the best any model can do)"] = roc_auc(
                    clicks[rows], bound[rows])
            fact.update(affinity_oracles(data, args))
        for key, value in fact.items():
            facts.setdefault(key, []).append(value)
        print(f"seed {seed}: {fact}", flush=True)
        stripped = drop_input_fields(data, ITEM_FIELDS[args.data])
        for label, (model_name, kwargs, strip) in runs.items():
            row = train(model_name, kwargs, stripped if strip else data, seed, args)
            for key, value in row.items():
                scores[label].setdefault(key, []).append(float(value))
            print(f"seed {seed} {label}: " + ", ".join(f"{k} {v:.4g}" for k, v in row.items()), flush=True)

    tasks = [(t.name, primary_metric(t.kind)) for t in data.schema.tasks]
    fact_lines = [f"- {key}: {fmt(values, 3 if 'AUC' in key else 0)}" for key, values in facts.items()]
    encoded = {label: np.mean(s["texts encoded"]) for label, s in scores.items() if "texts encoded" in s}
    fact_lines += [f"- {label}: {n:,.0f} distinct texts encoded by the LM per run (train, valid and test)"
                   for label, n in encoded.items()]  # fmt: skip
    sentences = verdict(scores, runs, tasks) + reading(scores, runs, tasks, facts)
    seconds = {label: scores[label]["train s"] for label in runs}
    hybrid = hybrid_label(runs)
    timing = [timing_line(seconds, "training"),
              f"{TIMING_RATIO}: the hybrid LM takes {statistics.fmean(seconds[hybrid]) / statistics.fmean(seconds['ID-MMoE']):.1f}× "
              "ID-MMoE's (the LM's frozen text is encoded once and cached)"]

    lm_max_length = next(kwargs["max_length"] for name, kwargs, _ in runs.values() if name == "lm")
    name = f"reproduce_cold_start-{args.data}"
    if args.data == "synthetic-funnel" and args.n_impressions != parser.get_default("n_impressions"):
        name += f"-{args.n_impressions}"  # a non-default world gets its own results file
    report, _ = publish(
        f"Cold start: language model vs. ID embeddings ({args.data})", device,
        [
            "data: " + data_line + ("" if args.data == "movielens-100k" else "; seed s per run"),
            (f"training: at most {args.epochs} epochs, early stopping on valid click AUC (patience 2, best "
             f"epoch restored), batch 256, Adam lr {args.lr:g}, equal weighting, default model configs; LM: "
             f"all-MiniLM-L6-v2, max_length {lm_max_length}, d_projection 64, 4 experts; the hybrid's ID half is "
             f"ID-MMoE's feature encoder (default config, use_text=False)"),
            f"mean ± std over {len(seeds)} seed(s) ("
            + ("world, split and model" if args.data == "synthetic-funnel" else "sampled negatives and model; the split is fixed")
            + "); every model of a seed sees the same data, so models are compared paired by seed",
            VERDICT_LINE,
            *timing,
        ],
        [*table(scores, runs, tasks), "", "Data facts (test split):", "", *fact_lines, "",
         f"**Expectation.** {CLAIM}.", "", "**Measured** (cold test rows, paired by seed).", "", *sentences],
        name=name, quick=args.quick, output=args.output, seeds=seeds,
        readme=[*table(scores, runs, tasks, parts=("cold",)), "", *sentences, f"- {timing[1]}."],
        data={"scores": scores, "facts": facts},
    )
    return report


#: The line that compares training times (dropped, as every timing, when repeated runs are compared).
TIMING_RATIO = "training seconds per run"


def table(scores, runs, tasks, parts: tuple[str, ...] = ("warm", "cold")) -> list[str]:
    """Per model: each task's metric on ``parts`` (mean ± std), parameters and epochs run."""
    columns = [f"{name} {part}" for name, _ in tasks for part in parts]
    titles = [f"{name} {metric.upper()} {part}" for name, metric in tasks for part in parts]
    lines = ["| model | " + " | ".join(titles) + " | parameters trained | epochs run |",
             "|---|" + "---:|" * (len(titles) + 2)]  # fmt: skip
    for label in runs:
        s = scores[label]
        lines.append(f"| {label} | " + " | ".join(fmt(s[c]) for c in columns)
                     + f" | {int(np.mean(s['parameters trained'])):,} | {fmt(s['epochs run'], 1)} |")  # fmt: skip
    return lines


def hybrid_label(runs) -> str:
    return next(label for label in runs if label.startswith("LM") and "hybrid" in label)


def versus(scores, a: str, b: str, column: str, metric: str):
    """``a`` − ``b`` on ``column`` (e.g. "click cold"), paired by seed over the seeds where both are defined."""
    return compare(scores[a][column], scores[b][column], higher_is_better=higher_is_better(metric))


def verdict(scores, runs, tasks) -> list[str]:
    """The generated verdicts: on every cold task, the hybrid LM and the best text-only LM against
    each ID model, paired by seed; and how many tasks the hybrid wins."""
    hybrid = hybrid_label(runs)
    text_only = [label for label in runs if label.startswith("LM") and label != hybrid]
    id_models = ("ID-MMoE", "ID-MMoE + title embeddings")
    sentences, wins, defined = [], 0, 0
    for name, metric in tasks:
        column = f"{name} cold"
        if all(math.isnan(v) for v in scores[id_models[0]][column]):
            sentences.append(f"- cold {name} {metric.upper()} is undefined (one class on cold rows).")
            continue
        defined += 1
        against = {label: versus(scores, hybrid, label, column, metric) for label in id_models}
        wins += all(c is not None and c.verdict == "helps" for c in against.values())
        sentences.append(
            f"- cold {name} {metric.upper()}: hybrid LM {fmt(scores[hybrid][column])}; against "
            + "; against ".join(f"{label} ({fmt(scores[label][column])}) {paired_cell(c, 3)}"
                                for label, c in against.items())
            + "; " + "; ".join(f"{label} against ID-MMoE {paired_cell(versus(scores, label, 'ID-MMoE', column, metric), 3)}"
                               for label in text_only) + "."
        )
    sentences.insert(0, f"- The hybrid LM beats both ID models (helps against each, paired by seed) on {wins} of "
                        f"{defined} cold tasks.")
    return sentences


def reading(scores, runs, tasks, facts) -> list[str]:
    """What the ablations (no item fields) and, on the funnel, the oracles say about the first task."""
    name, metric = tasks[0]
    column = f"{name} cold"
    if all(math.isnan(v) for v in scores["ID-MMoE"][column]):
        return [f"- The {name} task has one class on cold rows (its negatives are sampled from warm items), so the "
                "comparison rests on the other tasks."]
    fields = {label: versus(scores, label, f"{label}, no item fields", column, metric)
              for label in ("ID-MMoE", "ID-MMoE + title embeddings")}
    sentences = [
        f"- The ID models still see a cold item's fields: with them against without, cold {name} {metric.upper()} "
        + "; ".join(f"{label} {paired_cell(c, 3)}" for label, c in fields.items()) + "."
    ]
    oracle = "click AUC on cold rows of a_iᵀm_k (user taste × category centre)"
    if oracle in facts:
        sentences.append(
            f"- On the funnel a title tells only the item's category; the generator's noiseless user-taste × "
            f"category score reaches {fmt(facts[oracle])} cold click AUC, `true_click_prob` (which includes each "
            f"impression's hidden intent, seen by no model) {fmt(facts['oracle click AUC, cold (true_click_prob)'])}, "
            f"with about {np.mean(facts['training rows per user']):.0f} training impressions per user."
        )
    return sentences


if __name__ == "__main__":
    main()
