"""Which task-balancing strategy trains the best MMoE on the synthetic funnel, task by task?

Every strategy of ``mtlkit.weighting.WEIGHTINGS`` (equal weighting first, the baseline) trains
the default MMoE (``build_model("mmoe", schema)``; Ma et al., KDD 2018) on
``load_dataset("synthetic-funnel", seed=s)`` — tasks click, purchase (click AND purchase over
all impressions: CTCVR) and rating (1-5, observed on purchased impressions) — with the kit's
``Trainer`` for a fixed number of epochs; the final model is scored, so nothing is selected
on the validation split and the test split is never looked at during training. Reported, as
mean ± std over seeds (world, split and model):

- per task, the validation metric (click AUC, purchase AUC, rating RMSE) and the same on test;
- the difference to equal weighting **paired by seed**: each seed draws a new world that every
  strategy shares, so d_s = metric(strategy, s) − metric(equal, s) removes the world-to-world
  share of the spread; judged by the one rule of :mod:`mtlkit.stats`;
- the **effective step size**: the task weights w_t are the coefficients of the original task
  gradients in the shared update Σ_t w_t g_t (``mtlkit.weighting``), so Σ_t w_t, averaged over
  the training steps (the history's ``weight/<task>`` columns), scales the step a strategy takes
  with the same learning rate: T (the number of tasks) for equal weighting. Static weights (as
  chosen here), DWA, GradNorm, RLW and MGDA keep Σ_t w_t = T; uncertainty weighting's weights
  are its learned 1/σ_t² (1/(2σ_t²) for regression), free of any sum; PCGrad's projections and
  CAGrad's step towards the worst-off task can make them sum to more than T. **The comparison
  is not normalised for it**: a strategy with Σ_t w_t > T takes larger steps, which helps models
  that are still improving at the end of the budget; the script measures both and says so;
- with ``TrainConfig(record_gradients=True)``, the cosine of every pair of task gradients on
  the shared parameters, cos(g_a, g_b) = g_a·g_b / (‖g_a‖ ‖g_b‖), averaged over the training
  steps (negative = the tasks conflict; Yu et al., NeurIPS 2020), the share of steps on which
  it is negative, and the norm ‖g_t‖ of each task's gradient;
- seconds per run (wall clock and process CPU time).

Then generated **Measured.** sentences: per task, which strategies help or hurt against equal
weighting (paired by seed, validation and test), each strategy's effective step against T,
whether equal weighting was still improving in its last epoch, and whether the gradients
conflict at all on this data — the case gradient surgery is proposed for.

    python benchmarks/weighting_quality.py --threads 1    # full run, writes benchmarks/results/
    python benchmarks/weighting_quality.py --quick        # smoke test: tiny world, prints only
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Mapping, Sequence

from _common import ABOVE_BELOW, NOISE_NOTE, VERDICT_LINE, compare, fit_and_test, mean_std, paired_cell, parse_reproduction_args, publish, reproduction_parser, timing_line, verdict_word  # noqa: I001
from mtlkit.data import load_dataset
from mtlkit.metrics import higher_is_better, primary_metric
from mtlkit.stats import PairedComparison
from mtlkit.weighting import WEIGHTINGS

#: Surgery methods proposed for conflicting gradients, compared with equal in the verdict.
SURGERY = ("pcgrad", "cagrad", "mgda")
#: Mean cosines within ±NEAR_ORTHOGONAL are described as near-orthogonal.
NEAR_ORTHOGONAL = 0.05

CLAIM = (
    "(paraphrased) Yu et al., NeurIPS 2020 (PCGrad): when the gradients of different tasks "
    "conflict (negative cosine similarity), together with large differences in their "
    "magnitudes and high curvature, the summed gradient makes poor progress, and projecting "
    "each task's gradient onto the normal plane of any gradient it conflicts with helps. "
    "Liu et al., NeurIPS 2021 (CAGrad): the average gradient can conflict with individual "
    "tasks' gradients and neglect some tasks; CAGrad moves near the average gradient while "
    "also improving the worst-off task. Both are proposed for the case where task gradients "
    "conflict"
)


def train_one(data, name: str, seed: int, *, epochs: int, batch_size: int, weighting_kwargs: Mapping,
              device: str) -> dict:
    """Train MMoE with strategy ``name``; its scores, gradient cosines and norms, weights, step size and time."""
    wall, cpu = time.perf_counter(), time.process_time()
    trainer, test = fit_and_test(
        "mmoe", data, seed=seed, device=device, epochs=epochs, batch_size=batch_size, lr=1e-3,
        weighting=name, weighting_kwargs=dict(weighting_kwargs), record_gradients=True, log_every=1,
    )  # fmt: skip
    valid = trainer.evaluate("valid")
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    steps = trainer.history.step_records  # one row per optimiser step (log_every=1)
    pairs = [key for key in steps[0] if key.startswith("grad_cos/")]
    tasks = trainer.task_names
    first = tasks[0]
    first_metric = primary_metric(trainer.task_kinds[first])
    epoch_values = [row[f"valid/{first}/{first_metric}"] for row in trainer.history.epoch_records]
    return {
        "valid": {t: valid[t][primary_metric(trainer.task_kinds[t])] for t in tasks},
        "test": {t: test[t][primary_metric(trainer.task_kinds[t])] for t in tasks},
        "cos": {p: statistics.fmean(row[p] for row in steps) for p in pairs},
        "conflict": {p: sum(row[p] < 0 for row in steps) / len(steps) for p in pairs},
        "norm": {t: statistics.fmean(row[f"grad_norm/{t}"] for row in steps) for t in tasks},
        "weight": {t: trainer.history.epoch_records[-1][f"weight/{t}"] for t in tasks},
        # Σ_t w_t of every step, averaged: the step size relative to one task at weight 1 (rounded, so a
        # sum that is T by construction compares equal to T despite float rounding)
        "weight_sum": round(statistics.fmean(sum(row[f"weight/{t}"] for t in tasks) for row in steps), 6),
        "share": {t: statistics.fmean(row[f"weight/{t}"] / sum(row[f"weight/{u}"] for u in tasks) for row in steps)
                  for t in tasks},
        # the first task's validation metric after each epoch (is the model still improving?)
        "valid_by_epoch": epoch_values,
        "wall_s": wall,
        "cpu_s": cpu,
    }


def column(runs: Sequence[dict], part: str, key: str | None = None) -> list[float]:
    """One value per seed: ``run[part][key]`` (``run[part]`` without a key)."""
    return [run[part] if key is None else run[part][key] for run in runs]


def versus_equal(results: Mapping[str, list[dict]], part: str, task: str, metric: str) -> dict[str, PairedComparison]:
    """Every strategy but equal − equal on ``part``'s ``task`` metric, paired by seed (run i of every
    strategy used the same world, split and seed); "helps" follows the metric's direction."""
    base = column(results["equal"], part, task)
    return {name: compare(column(runs, part, task), base, higher_is_better=higher_is_better(metric))
            for name, runs in results.items() if name != "equal"}


def step_sizes(results: Mapping[str, list[dict]], n_tasks: int) -> dict[str, PairedComparison]:
    """Each strategy's mean Σ_t w_t per step against T = ``n_tasks`` (equal weighting's), over seeds."""
    return {name: compare(column(runs, "weight_sum"), [float(n_tasks)] * len(runs)) for name, runs in results.items()}


def metric_tables(results: Mapping[str, list[dict]], metric_of: Mapping[str, str]) -> list[str]:
    """The validation and the test table: every task's metric, mean ± std over seeds."""
    tasks = list(metric_of)
    names = [f"{t} {metric_of[t].upper()}" for t in tasks]
    lines = []
    for part, title in (("valid", "Validation (the final epoch's model)"),
                        ("test", "Test (same models; reported, never used for any choice)")):
        lines += [f"#### {title}", "", "| strategy | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
        lines += [f"| {name} | " + " | ".join(mean_std(column(runs, part, t)) for t in tasks) + " |"
                  for name, runs in results.items()]
        lines.append("")
    return lines[:-1]


def gradient_table(results: Mapping[str, list[dict]], tasks: Sequence[str]) -> list[str]:
    """Mean gradient cosine per task pair, share of steps with cos < 0, gradient norms, last-epoch
    weights and the effective step Σ_t w_t."""
    pairs = list(next(iter(results.values()))[0]["cos"])
    names = [f"cos({', '.join(p.split('/')[1:])})" for p in pairs]
    lines = ["#### Gradients on the shared parameters (mean over training steps) and the weights", "",
             "| strategy | " + " | ".join(f"{n} | steps < 0" for n in names) + " | "
             + " | ".join(f"‖g {t}‖" for t in tasks) + " | " + " | ".join(f"w {t} (last epoch)" for t in tasks)
             + " | Σ_t w_t per step |",
             "|---|" + "---:|" * (2 * len(pairs) + 2 * len(tasks) + 1)]  # fmt: skip
    for name, runs in results.items():
        cells = []
        for p in pairs:
            cells += [mean_std(column(runs, "cos", p), 3), f"{100 * statistics.fmean(column(runs, 'conflict', p)):.0f} %"]
        cells += [mean_std(column(runs, "norm", t), 3) for t in tasks]
        cells += [mean_std(column(runs, "weight", t), 2) for t in tasks]
        cells.append(mean_std(column(runs, "weight_sum"), 2))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def paired_table(results: Mapping[str, list[dict]], metric_of: Mapping[str, str], part: str) -> list[str]:
    """``part``'s difference to equal, paired by seed, for every task."""
    tasks = list(metric_of)
    paired = {t: versus_equal(results, part, t, metric_of[t]) for t in tasks}
    lines = ["| strategy − equal | " + " | ".join(f"{t} {metric_of[t].upper()}" for t in tasks) + " |",
             "|---|" + "---:|" * len(tasks)]
    for name in paired[tasks[0]]:
        lines.append(f"| {name} | " + " | ".join(paired_cell(paired[t][name]) for t in tasks) + " |")
    return lines


def readme_table(results: Mapping[str, list[dict]], metric_of: Mapping[str, str], dominant: str) -> list[str]:
    """The README's table: validation metrics, the effective step, the dominant task's share of the
    weights, and the first task's paired difference to equal."""
    tasks = list(metric_of)
    first = tasks[0]
    paired = versus_equal(results, "valid", first, metric_of[first])
    lines = ["| strategy | " + " | ".join(f"valid {t} {metric_of[t].upper()}" for t in tasks)
             + f" | Σ_t w_t per step | w {dominant} / Σ_t w_t | valid {first} {metric_of[first].upper()} − equal |",
             "|---|" + "---:|" * (len(tasks) + 3)]
    for name, runs in results.items():
        cells = [mean_std(column(runs, "valid", t), 3) for t in tasks]
        cells += [mean_std(column(runs, "weight_sum"), 2), mean_std(column(runs, "share", dominant), 2),
                  "—" if name == "equal" else paired_cell(paired[name], 3)]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def describe_cosine(mean_cos: float) -> str:
    if mean_cos < -NEAR_ORTHOGONAL:
        return "conflicting on average"
    if mean_cos > NEAR_ORTHOGONAL:
        return "aligned on average"
    return "near-orthogonal"


def verdict_lists(results: Mapping[str, list[dict]], metric_of: Mapping[str, str]) -> list[str]:
    """Per task: the strategies that help and hurt against equal, paired by seed, on validation and test."""
    sentences = []
    for task, metric in metric_of.items():
        parts = []
        for part, label in (("valid", "validation"), ("test", "test")):
            paired = versus_equal(results, part, task, metric)
            helps = [n for n, c in paired.items() if c.verdict == "helps"]
            hurts = [n for n, c in paired.items() if c.verdict == "hurts"]
            parts.append(f"{label}: helps — {', '.join(helps) or 'none'}; hurts — {', '.join(hurts) or 'none'}")
        sentences.append(f"- {task} {metric.upper()} against equal, paired by seed ({'; '.join(parts)}); every "
                         "other strategy within noise.")
    return sentences


def step_sentences(results: Mapping[str, list[dict]], metric_of: Mapping[str, str]) -> list[str]:
    """The effective step of every strategy against equal weighting's T, what it means for the
    verdicts on the first task, and whether equal weighting was still improving at the end."""
    n_tasks = len(metric_of)
    first, metric = next(iter(metric_of.items()))
    sizes = step_sizes(results, n_tasks)
    above = [n for n, c in sizes.items() if verdict_word(c, *ABOVE_BELOW) == "above"]
    below = [n for n, c in sizes.items() if verdict_word(c, *ABOVE_BELOW) == "below"]
    helps = [n for n, c in versus_equal(results, "valid", first, metric).items() if c.verdict == "helps"]
    confounded = [n for n in helps if n in above]
    sign = 1 if higher_is_better(metric) else -1
    still = sum(sign * (run["valid_by_epoch"][-1] - run["valid_by_epoch"][-2]) > 0 for run in results["equal"]) \
        if len(results["equal"][0]["valid_by_epoch"]) > 1 else None
    text = (
        f"- Effective step (Σ_t w_t per step; equal weighting: T = {n_tasks}): "
        + ", ".join(f"{n} {statistics.fmean(column(runs, 'weight_sum')):.2f}" for n, runs in results.items())
        + f". Above T: {', '.join(above) or 'none'}; below T: {', '.join(below) or 'none'}. **The comparison is not "
        "normalised for step size**: a strategy above T takes larger steps on the shared parameters with the same "
        "learning rate."
    )
    if still is not None:
        text += (f" Equal weighting's validation {first} {metric.upper()} still improved in the last epoch on "
                 f"{still} of {len(results['equal'])} seeds")
        text += (f", so a larger step alone can help; of the strategies that help on {first}, "
                 f"{', '.join(confounded)} also {'takes' if len(confounded) == 1 else 'take'} a larger step: "
                 "gain and step size are confounded there."
                 if confounded else f"; none of the strategies that help on {first} takes a larger step than T.")
    return [text]


def share_sentence(results: Mapping[str, list[dict]], tasks: Sequence[str]) -> tuple[str, str]:
    """(the task with the largest shared gradient under equal weighting, a sentence on how each
    strategy re-weights it)."""
    norms = {t: statistics.fmean(column(results["equal"], "norm", t)) for t in tasks}
    dominant = max(norms, key=norms.get)
    others = [t for t in tasks if t != dominant]
    return dominant, (
        f"- Under equal weighting the {dominant} gradient on the shared parameters is "
        + " and ".join(f"{norms[dominant] / norms[t]:.0f}× the {t} gradient" for t in others)
        + " (mean norms), so it dominates the shared update; its share of Σ_t w_t per step: "
        + ", ".join(f"{n} {statistics.fmean(column(runs, 'share', dominant)):.2f}" for n, runs in results.items()) + "."
    )


def gradient_sentence(results: Mapping[str, list[dict]], metric_of: Mapping[str, str]) -> str:
    """Whether any task pair's gradients conflict on average, and what the surgery methods did."""
    all_runs = [run for runs in results.values() for run in runs]
    pair_lines = []
    for pair in all_runs[0]["cos"]:
        mean_cos = statistics.fmean(column(all_runs, "cos", pair))
        share = statistics.fmean(column(all_runs, "conflict", pair))
        pair_lines.append(f"cos({', '.join(pair.split('/')[1:])}) = {mean_cos:+.3f} "
                          f"({describe_cosine(mean_cos)}; negative on {100 * share:.0f} % of steps)")
    any_conflict = any(statistics.fmean(column(all_runs, "cos", p)) < -NEAR_ORTHOGONAL for p in all_runs[0]["cos"])
    surgery = [name for name in SURGERY if name in results]
    verdicts = {name: {c.verdict for task, metric in metric_of.items()
                       for c in [versus_equal(results, "valid", task, metric)[name]]} for name in surgery}
    better = [name for name in surgery if "helps" in verdicts[name]]
    worse = [name for name in surgery if "hurts" in verdicts[name]]
    return (
        "- Gradient cosines over all strategies, seeds and steps: " + "; ".join(pair_lines) + ". "
        + ("Some task pair conflicts on average, the setting gradient surgery is designed for. "
           if any_conflict else
           "No task pair conflicts on average (the negative steps are the noise of a near-zero mean), so this data "
           "does not present the conflict gradient surgery is designed for. ")
        + f"Of the gradient-combining methods ({', '.join(surgery)}), helping on some task (validation): "
        f"{', '.join(better) or 'none'}; hurting on some task: {', '.join(worse) or 'none'}"
        + (" — a gain without conflict does not come from removing conflicts; these methods also re-weight "
           "the tasks and change the step size (see the weights)." if better and not any_conflict else ".")
    )  # fmt: skip


def main(argv: list[str] | None = None) -> str:
    parser = reproduction_parser(__doc__.splitlines()[0], quick_help="tiny world, 1 epoch; print only")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per run (default 3; 1 with --quick)")
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--static-weights", type=float, nargs=3, default=(1.0, 1.5, 0.5),
                        metavar=("CLICK", "PURCHASE", "RATING"), help="the static strategy's weights")
    args, device, seeds = parse_reproduction_args(parser, argv)
    epochs = args.epochs or (1 if args.quick else 3)
    world = {"n_users": 150, "n_items": 80} if args.quick else {}
    seq_len = 5 if args.quick else 20

    results: dict[str, list[dict]] = {name: [] for name in WEIGHTINGS}
    metric_of: dict[str, str] = {}
    static_weights: dict[str, float] = {}
    for seed in seeds:
        data = load_dataset("synthetic-funnel", seed=seed, seq_len=seq_len, **world)
        metric_of = {t: primary_metric(data.schema.task_kinds[t]) for t in data.schema.task_names}
        static_weights = dict(zip(data.schema.task_names, args.static_weights, strict=True))
        for name in WEIGHTINGS:  # interleaved with the seeds, so machine load hits every strategy alike
            kwargs = {"weights": static_weights} if name == "static" else {}
            results[name].append(train_one(data, name, seed, epochs=epochs, batch_size=args.batch_size,
                                           weighting_kwargs=kwargs, device=args.device))
            run = results[name][-1]
            print(f"seed {seed} {name}: valid {run['valid']} ({run['wall_s']:.0f} s)", flush=True)

    tasks = list(metric_of)
    dominant, share = share_sentence(results, tasks)
    sentences = [*verdict_lists(results, metric_of), *step_sentences(results, metric_of), share,
                 gradient_sentence(results, metric_of)]
    world_text = f"with {world}" if world else "(quick world: 1,000 users, 400 items, 40,000 impressions)"
    seeds_text = f"mean ± std over {len(seeds)} seeds (world, split and model); differences to equal paired by seed"
    if not args.quick and len(seeds) < 5:
        seeds_text += f"; {len(seeds)} seeds instead of 5 to fit the compute budget on a shared 2-core CPU"
    report, _ = publish(
        "Task-balancing strategies: MMoE quality on the synthetic funnel", device,
        [
            (f"data: `load_dataset('synthetic-funnel', seed=s)` {world_text}, seq_len {seq_len}, temporal split; "
             "tasks click, purchase (CTCVR over all impressions), rating (observed on purchases)"),
            (f"model: `build_model('mmoe', schema)` (default config); training: {epochs} epoch(s), batch "
             f"{args.batch_size}, Adam lr 1e-3, `record_gradients=True`; a fixed number of epochs and the final "
             "model is scored (no early stopping, nothing selected on validation)"),
            (f"strategies: every entry of `mtlkit.weighting.WEIGHTINGS` with its default arguments, except static "
             f"weights {static_weights} (roughly the inverse of each task's loss at its base rate — click ≈ 0.48, "
             "purchase ≈ 0.26, rating variance ≈ 0.95 — scaled to Σ w = 3 and rounded; fixed before any run); "
             "dwa keeps w = 1 for its first two epochs by definition (Liu et al., CVPR 2019), so here it "
             f"re-weights {max(epochs - 2, 0)} of {epochs} epoch(s)"),
            ("effective step: Σ_t w_t per step, averaged over the steps (equal weighting: T); not normalised — "
             "every strategy trains with the same learning rate"),
            seeds_text,
            VERDICT_LINE,
            NOISE_NOTE,
            timing_line({n: column(runs, "wall_s") for n, runs in results.items()}, "wall clock"),
            timing_line({n: column(runs, "cpu_s") for n, runs in results.items()}, "process CPU time"),
        ],
        [*metric_tables(results, metric_of), "", *gradient_table(results, tasks), "",
         "#### Validation difference to equal, paired by seed", "", *paired_table(results, metric_of, "valid"), "",
         "#### Test difference to equal, paired by seed", "", *paired_table(results, metric_of, "test"), "",
         f"**Papers' claim.** {CLAIM}.", "", "**Measured.**", "", *sentences],
        name="weighting_quality", quick=args.quick, output=args.output, seeds=seeds,
        readme=[*readme_table(results, metric_of, dominant), "", *sentences], data={"runs": results},
    )
    return report


if __name__ == "__main__":
    main()
