"""Reproduce the MMoE paper's synthetic experiment: task correlation vs. model architecture.

Ma, Zhao, Yi, Chen, Hong and Chi, "Modeling Task Relationships in Multi-task Learning with
Multi-gate Mixture-of-Experts", KDD 2018, §5.1 (Figure 4). Two regression tasks with a
controlled task correlation p (``load_dataset("synthetic-mmoe", correlation=p)``); Shared-Bottom,
MMoE and PLE with comparable parameter counts are trained the same way on each p, and the
final training loss, the held-out test MSE and the training-loss curves are compared.

What is taken from where:

* data — the paper's §3.2 procedure with the constants of the Google Research reference
  generator (c = 1, m = 10, α_i = i, β_i = (i − 1)², noise std 0.01; see
  :func:`mtlkit.data.synthetic.make_correlated_tasks`). The paper gives no sample count
  ("repeat until enough data are generated"); we generate 50,000 samples per data set (40,000
  for training), enough that a per-task MLP gets well below the least-squares floor in a few
  hundred steps, while 12,000 training rows were not (it memorises them instead). With the
  same seed, the data sets of different p share x, u1 and u2, so the p-comparisons are paired.
* models — §5.1: 100 inputs; MMoE with 8 experts, each one hidden layer of 16 units; towers of
  one hidden layer of 8 units; Shared-Bottom with one bottom layer of 113 units (the paper's
  13056 / (100 + 8·2) parameter matching). PLE (Tang et al., RecSys 2020, not in the paper):
  one extraction level of 4 shared + 2 per-task experts of 16. mtlkit models read the 100
  dense features through the encoder's linear projection to ``embedding_dim`` (a shared
  linear layer the paper does not have); the table prints every model's parameter count.
* training — Adam, as in the paper; §5.1 grid-searches the learning rate over
  {1e-4, 1e-3, 1e-2}: we pick one per model from that grid by the *validation* MSE at p = 0.5,
  seed 0 (the paper's lowest correlation in Figure 4); 1e-2 wins for every model (with 1e-3
  the validation MSE after the same steps is still 3.4–3.7, near the least-squares 4.07). Batch size and
  number of steps are not given in the paper; we use batch 1024, 12 epochs (480 steps) and
  equal task weights, a budget choice (about 10 CPU-minutes on one thread): the training-loss
  curves are still falling at the end.
* metric — Figure 4 plots "the average loss" of 200 independent runs against the training
  step and does not name the split; we report the final training MSE (that quantity, mean of
  both tasks, evaluated on the training split after the last epoch), the test MSE (held out),
  and plot the training-loss curves, mean ± std over seeds instead of 200 runs.
* correlations — Figure 4 shows p ∈ {1, 0.9, 0.5}; we add 0.7 and 0.0.

    python benchmarks/reproduce_mmoe_synthetic.py --threads 1   # full: writes results/
    python benchmarks/reproduce_mmoe_synthetic.py --quick       # smoke test: tiny, prints only

The full run also writes ``results/mmoe_synthetic-<device>.png``: one panel of training-loss
curves per p (as Figure 4) and the final test MSE against p.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import statistics
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from _common import VERDICT_LINE, compare, fit_and_test, mean_std, n_parameters, paired_cell, paired_numbers, paper_agreement, parse_reproduction_args, publish, reproduction_parser, verdict_word  # noqa: I001
from mtlkit.data import load_dataset
from mtlkit.data.batch import DENSE, LABELS
from mtlkit.stats import PairedComparison

CLAIM = (
    "(paraphrased from §5.1 and Figure 4) for all models the loss is lower on data with higher "
    "task correlation; the gap between correlations is much smaller for MMoE than for "
    "Shared-Bottom (and OMoE), and the MoE models have a lower average loss than Shared-Bottom "
    "at every correlation"
)
CORRELATIONS = (1.0, 0.9, 0.7, 0.5, 0.0)
LR_GRID = (1e-4, 1e-3, 1e-2)  # the paper's learning-rate grid (§5.1)
SELECTION_P = 0.5  # the learning rate of each model is chosen on this correlation's validation split
NOISE_STD = 0.01  # the generator's default label noise: the best reachable MSE is NOISE_STD²
# §5.1 sizes: 8 experts × 16 units and towers of 8 units ⇒ 100·16·8 + 16·8·2 = 13056 weights,
# matched by a single 113-unit shared bottom (13056 / (100 + 8·2) ≈ 113).
MODEL_KWARGS = {
    "shared-bottom": dict(bottom_hidden=(113,)),
    "mmoe": dict(n_experts=8, expert_hidden=(16,)),
    "ple": dict(n_levels=1, n_shared_experts=4, n_task_experts=2, expert_hidden=(16,)),
}
COMMON = dict(embedding_dim=32, tower_hidden=(8,), dropout=0.0)
BATCH_SIZE = 1024


@dataclass
class Run:
    """One trained model: MSEs (mean of the two tasks unless per task) and its loss curve."""

    train_mse: float  # on the training split, after the last epoch (Figure 4's "loss")
    valid_mse: float  # used only to choose the learning rate
    test_mse: tuple[float, float]  # (y1, y2) on the held-out test split
    curve: list[tuple[int, float]]  # (optimiser step, mean training loss of the epoch)
    n_parameters: int


@functools.lru_cache(maxsize=1)  # runs are ordered so that consecutive ones share a data set
def dataset(correlation: float, seed: int, n: int):
    return load_dataset("synthetic-mmoe", correlation=correlation, seed=seed, n=n)


def mean_mse(metrics: dict[str, dict[str, float]]) -> float:
    return (metrics["y1"]["rmse"] ** 2 + metrics["y2"]["rmse"] ** 2) / 2


def train_once(name: str, correlation: float, seed: int, lr: float, *, n: int, epochs: int, device: str) -> Run:
    """Train ``name`` on the data set (p, seed) and measure it."""
    data = dataset(correlation, seed, n)
    trainer, test = fit_and_test(
        name, data, seed=seed, model_kwargs={**COMMON, **MODEL_KWARGS[name]}, device=device,
        epochs=epochs, batch_size=BATCH_SIZE, lr=lr,
    )  # fmt: skip
    history = trainer.history.epochs
    epoch_loss = (history["loss/y1"] + history["loss/y2"]) / 2  # mean over the epoch's steps
    return Run(
        train_mse=mean_mse(trainer.evaluate("train")),
        valid_mse=mean_mse(trainer.evaluate("valid")),
        test_mse=(test["y1"]["rmse"] ** 2, test["y2"]["rmse"] ** 2),
        curve=list(zip(history["step"].astype(int), epoch_loss.astype(float))),
        n_parameters=n_parameters(trainer.model),
    )


def reference_points(correlation: float, seeds: range, n: int) -> tuple[str, str, str]:
    """Label Pearson correlation, Var(y) and the test MSE of least squares on x (mean of tasks).

    Var(y) is the MSE of predicting the mean; least squares recovers the linear part w_tᵀx
    only, so its MSE is the floor a model reaches before it fits any of the sinusoids.
    """
    pearson, variance, least_squares = [], [], []
    for seed in seeds:
        data = dataset(correlation, seed, n)
        x_train, y_train = data.train[DENSE].double().numpy(), data.train[LABELS].double().numpy()
        x_test, y_test = data.test[DENSE].double().numpy(), data.test[LABELS].double().numpy()
        design = np.hstack([x_train, np.ones((len(x_train), 1))])  # (n_train, d + 1)
        coef, *_ = np.linalg.lstsq(design, y_train, rcond=None)  # (d + 1, 2)
        prediction = np.hstack([x_test, np.ones((len(x_test), 1))]) @ coef
        pearson.append(float(np.corrcoef(y_train.T)[0, 1]))
        variance.append(float(y_test.var(axis=0).mean()))
        least_squares.append(float(((prediction - y_test) ** 2).mean()))
    return mean_std(pearson, 3), mean_std(variance, 2), mean_std(least_squares, 3)


def main(argv: list[str] | None = None) -> str:
    parser = reproduction_parser(__doc__.splitlines()[0], quick_help="tiny sizes; print only")
    parser.add_argument("--n", type=int, default=None, help="samples per data set (default 50000)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs (default 12)")
    parser.add_argument("--correlations", type=float, nargs="+", default=None,
                        help=f"task correlations p (default {' '.join(map(str, CORRELATIONS))})")
    parser.add_argument("--lrs", type=float, nargs="+", default=None,
                        help="learning-rate grid, one chosen per model on validation "
                             f"(default {' '.join(map(str, LR_GRID))}; 1e-2 with --quick)")
    args, device, seeds = parse_reproduction_args(parser, argv)
    n = args.n or (2000 if args.quick else 50_000)
    epochs = args.epochs or (1 if args.quick else 12)
    correlations = tuple(args.correlations or ((1.0, 0.0) if args.quick else CORRELATIONS))
    lrs = tuple(args.lrs or ((1e-2,) if args.quick else LR_GRID))
    models = ("shared-bottom", "mmoe") if args.quick else tuple(MODEL_KWARGS)
    correlations = tuple(sorted(correlations, reverse=True))

    runs: dict[tuple[str, float, int, float], Run] = {}

    def run(name: str, correlation: float, seed: int, lr: float) -> Run:
        key = (name, correlation, seed, lr)
        if key not in runs:  # the selection run at (SELECTION_P, seed 0) is reused below
            runs[key] = train_once(name, correlation, seed, lr, n=n, epochs=epochs, device=args.device)
            r = runs[key]
            print(f"p={correlation} seed={seed} lr={lr:g} {name}: train {r.train_mse:.4f} "
                  f"valid {r.valid_mse:.4f} test {sum(r.test_mse) / 2:.4f}", flush=True)
        return runs[key]

    def validation_key(name: str, lr: float) -> float:
        value = run(name, SELECTION_P, seeds[0], lr).valid_mse
        return math.inf if math.isnan(value) else value

    chosen_lr = {name: min(lrs, key=functools.partial(validation_key, name)) if len(lrs) > 1 else lrs[0]
                 for name in models}
    results = {(name, p): [run(name, p, seed, chosen_lr[name]) for seed in seeds]
               for p in correlations for name in models}  # fmt: skip

    lines = [
        "| p | model | parameters | lr | final training MSE | test MSE y1 | test MSE y2 | test MSE (mean) |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for p in correlations:
        for name in models:
            rs = results[name, p]
            lines.append(
                f"| {p} | {name} | {rs[0].n_parameters:,} | {chosen_lr[name]:g} | "
                f"{mean_std([r.train_mse for r in rs])} | {mean_std([r.test_mse[0] for r in rs])} | "
                f"{mean_std([r.test_mse[1] for r in rs])} | {mean_std([test_mse(r) for r in rs])} |"
            )
    reference = [
        "",
        (
            "Reference points per p (test split, mean of the two tasks): predicting the mean scores "
            "Var(y); least squares on x fits the linear part wᵀx only; the label noise alone would "
            f"leave {NOISE_STD ** 2:g}."
        ),
        "",
        "| p | label Pearson correlation | Var(y) | least-squares test MSE |",
        "|---:|---:|---:|---:|",
        *(f"| {p} | " + " | ".join(reference_points(p, seeds, n)) + " |" for p in correlations),
    ]
    summary, sentences = measured(results, models, correlations)
    body = [*lines, *reference, "", "#### Test MSE (mean of both tasks) and the MoE models against Shared-Bottom",
            "", *summary, "", f"**Paper's claim.** {CLAIM}.", "", "**Measured.**", "", *sentences]
    report, output = publish(
        "MMoE synthetic experiment (Ma et al., KDD 2018, §5.1)", device,
        [
            (
                f"data: `load_dataset('synthetic-mmoe', correlation=p, seed=s, n={n})` (100 features, "
                "80/10/10 random split), one data set per (p, seed); the data sets of one seed share x, so "
                "every comparison is paired by seed"
            ),
            (
                f"training: {epochs} epochs, batch {BATCH_SIZE}, Adam, equal weighting; lr per model "
                f"chosen from {{{', '.join(f'{lr:g}' for lr in lrs)}}} by validation MSE at "
                f"p = {SELECTION_P}, seed {seeds[0]}; MSEs after the last epoch"
            ),
            f"models: {', '.join(f'{m} {MODEL_KWARGS[m]}' for m in models)}; shared: {COMMON}",
            f"mean ± std over {len(seeds)} seeds (data and model seed)",
            VERDICT_LINE,
        ],
        body, name="mmoe_synthetic", quick=args.quick, output=args.output, seeds=seeds,
        readme=[*summary, "", *sentences],
        data={"chosen_lr": chosen_lr, "runs": [{"model": name, "correlation": p, "seed": seed,
                                                 **dataclasses.asdict(run)}
                                                for (name, p), rs in results.items() for seed, run in zip(seeds, rs)]},
    )
    if output is not None:
        plot(results, models, correlations, output.with_suffix(".png"))
    return report


def test_mse(run: Run) -> float:
    """The run's test MSE, mean of the two tasks."""
    return sum(run.test_mse) / 2


def measured(results: dict[tuple[str, float], list[Run]], models: tuple[str, ...],
             correlations: tuple[float, ...]) -> tuple[list[str], list[str]]:
    """The README table and the generated sentences: the paper's three observations, each judged
    paired by seed (the data sets of one seed share x, u1 and u2 across p).

    1. the MoE models are below Shared-Bottom at every p: test MSE of MoE − Shared-Bottom per p;
    2. every model's loss rises as p falls: rise = loss(p_low) − loss(p_high) against 0;
    3. Shared-Bottom's rise exceeds MMoE's: rise(Shared-Bottom) − rise(MMoE).
    """
    hi, lo = correlations[0], correlations[-1]
    moe = [m for m in models if m != "shared-bottom"]
    table = ["| model | " + " | ".join(f"p = {p}" for p in correlations) + " |",
             "|---|" + "---:|" * len(correlations)]
    for name in models:
        table.append(f"| {name} | " + " | ".join(mean_std([test_mse(r) for r in results[name, p]], 2)
                                                  for p in correlations) + " |")
    for name in moe:
        table.append(f"| {name} − shared-bottom, paired | " + " | ".join(
            paired_cell(below(results, name, p), 2) for p in correlations) + " |")
    sentences = []
    for name in moe:
        helps = [p for p in correlations if below(results, name, p).verdict == "helps"]
        where = f" (p ∈ {{{', '.join(map(str, helps))}}})" if helps else ""
        sentences.append(f"- {name} has a lower test MSE than shared-bottom, paired by seed, at {len(helps)} of "
                         f"{len(correlations)} correlations{where}; the paper finds it lower at every one.")
    for label, value in (("final training MSE", lambda r: r.train_mse), ("test MSE", test_mse)):
        rise = {name: [value(a) - value(b) for a, b in zip(results[name, lo], results[name, hi])] for name in models}
        against_zero = {name: compare(rise[name], [0.0] * len(rise[name])) for name in models}
        moves = [f"{name} {verdict_word(against_zero[name], 'rises', 'falls', 'stays within noise')} "
                 f"({paired_numbers(against_zero[name])})" for name in models]
        gap = compare(rise["shared-bottom"], rise["mmoe"])  # helps: Shared-Bottom degrades more
        sentences.append(
            f"- {label}, from p = {hi} to p = {lo}: " + "; ".join(moves) + ". Shared-Bottom's rise minus MMoE's "
            f"{paired_cell(gap)}: {paper_agreement(gap)}."
        )
    sentences.append(f"- {seed_noise_note(results, correlations)}")
    return table, sentences


def below(results: dict[tuple[str, float], list[Run]], name: str, p: float) -> PairedComparison:
    """``name`` − shared-bottom test MSE at ``p``, paired by seed ("helps": ``name`` is lower)."""
    return compare([test_mse(r) for r in results[name, p]], [test_mse(r) for r in results["shared-bottom", p]],
                   higher_is_better=False)


def seed_noise_note(results: dict[tuple[str, float], list[Run]], correlations: tuple[float, ...]) -> str:
    """How a trend over p can hide: Shared-Bottom's run-to-run spread against its spread over p."""

    def std(values: list[float]) -> float:
        return statistics.stdev(values) if len(values) > 1 else 0.0

    train = {key: [r.train_mse for r in runs] for key, runs in results.items()}
    sb_std = [std(train["shared-bottom", p]) for p in correlations]
    mmoe_std = [std(train["mmoe", p]) for p in correlations]
    sb_mean = [statistics.fmean(train["shared-bottom", p]) for p in correlations]
    n_seeds = len(train["shared-bottom", correlations[0]])
    n_steps = results["shared-bottom", correlations[0]][0].curve[-1][0]
    spread = max(sb_mean) - min(sb_mean)
    return (
        f"After {n_steps} steps Shared-Bottom's final training MSE differs from seed to seed by a standard "
        f"deviation of {min(sb_std):.2f}–{max(sb_std):.2f} (MMoE: {min(mmoe_std):.2f}–{max(mmoe_std):.2f}), "
        f"while its mean moves by {spread:.2f} across p"
        + (
            ": a Shared-Bottom run's loss depends more on how well that run trains than on the task "
            f"correlation, and with {n_seeds} seeds (the paper averages 200 runs) a mean is uncertain by about "
            f"{max(sb_std) / math.sqrt(n_seeds):.2f} (standard error)."
            if max(sb_std) >= spread
            else ", more than its seed-to-seed spread."
        )
    )


def plot(results: dict[tuple[str, float], list[Run]], models: tuple[str, ...],
         correlations: tuple[float, ...], path: Path) -> None:
    """Figure 4's panels (mean training-loss curve per model, one panel per p) + test MSE vs p."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_panels = len(correlations) + 1
    n_cols = min(3, n_panels)
    n_rows = math.ceil(n_panels / n_cols)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(4 * n_cols, 3.2 * n_rows), squeeze=False)
    axes = axes.ravel()
    colors = {name: f"C{i}" for i, name in enumerate(models)}
    for ax, p in zip(axes, correlations):
        for name in models:
            curves = np.array([[loss for _, loss in r.curve] for r in results[name, p]])  # (seeds, epochs)
            steps = [step for step, _ in results[name, p][0].curve]
            mean, std = curves.mean(0), curves.std(0)
            ax.plot(steps, mean, color=colors[name], label=name)
            ax.fill_between(steps, mean - std, mean + std, color=colors[name], alpha=0.2)
        ax.set_title(f"p = {p}")
        ax.set_xlabel("training step")
        ax.set_ylabel("training MSE (mean of both tasks)")
    ax = axes[len(correlations)]
    for name in models:
        ax.plot(correlations, [statistics.fmean(sum(r.test_mse) / 2 for r in results[name, p]) for p in correlations],
                marker="o", color=colors[name], label=name)
    ax.set_xlabel("task correlation p")
    ax.set_ylabel("final test MSE (mean of both tasks)")
    ax.set_title("held-out test MSE vs. p")
    ax.invert_xaxis()
    ax.legend()
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    fig.suptitle("MMoE synthetic experiment (mean ± std over seeds)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    print(f"written to {path}")


if __name__ == "__main__":
    main()
