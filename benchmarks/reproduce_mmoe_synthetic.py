"""Reproduce the MMoE paper's synthetic experiment: task correlation vs. model architecture.

Ma, Zhao, Yi, Chen, Hong and Chi, "Modeling Task Relationships in Multi-task Learning with
Multi-gate Mixture-of-Experts", KDD 2018, §5.1 (Figure 4). Two regression tasks built with
a controlled correlation p (``load_dataset("synthetic-mmoe", correlation=p)``, the paper's
generator); SharedBottom, MMoE and PLE with comparable parameter counts are trained with the
same budget, and the final test loss (MSE) per task is reported as mean ± std over seeds.

    python benchmarks/reproduce_mmoe_synthetic.py           # full: 5 seeds, writes results/
    python benchmarks/reproduce_mmoe_synthetic.py --quick   # smoke test: tiny, prints only

The full run also writes ``results/mmoe_synthetic-<device>.png`` (mean test loss vs. p).
"""

from __future__ import annotations

import statistics
from pathlib import Path


from _common import command_line, RESULTS, fit_and_test, header, mean_std, n_parameters, parse_reproduction_args, reproduction_parser, write_report  # noqa: I001
from mtlkit.data import load_dataset

CLAIM = (
    "(paraphrased from §5.1 and Figure 4) the Shared-Bottom model's loss grows as the task "
    "correlation falls, while MMoE degrades much less and has a lower loss than Shared-Bottom, "
    "most clearly at low correlation"
)
CORRELATIONS = (1.0, 0.9, 0.7, 0.5, 0.0)
# Comparable sizes (parameter counts are printed in the table): one shared bottom of 128
# units vs. 8 experts of 16 (MMoE, as in the paper) vs. 4 shared + 2 per-task experts of 16.
MODEL_KWARGS = {
    "shared-bottom": dict(bottom_hidden=(128,)),
    "mmoe": dict(n_experts=8, expert_hidden=(16,)),
    "ple": dict(n_levels=1, n_shared_experts=4, n_task_experts=2, expert_hidden=(16,)),
}
COMMON = dict(embedding_dim=32, tower_hidden=(16,), dropout=0.0)


def main(argv: list[str] | None = None) -> str:
    parser = reproduction_parser(__doc__.splitlines()[0], quick_help="tiny sizes; print only")
    parser.add_argument("--n", type=int, default=None, help="samples per data set (default 30000)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs (default 15)")
    parser.add_argument("--correlations", type=float, nargs="+", default=None,
                        help=f"task correlations p (default {' '.join(map(str, CORRELATIONS))})")
    args, device, seeds = parse_reproduction_args(parser, argv)
    n = args.n or (2000 if args.quick else 30_000)
    epochs = args.epochs or (1 if args.quick else 15)
    correlations = tuple(args.correlations or ((1.0, 0.0) if args.quick else CORRELATIONS))
    models = ("shared-bottom", "mmoe") if args.quick else tuple(MODEL_KWARGS)

    losses: dict[tuple[str, float], list[tuple[float, float]]] = {}
    params: dict[str, int] = {}
    for p in correlations:
        for seed in seeds:
            data = load_dataset("synthetic-mmoe", correlation=p, seed=seed, n=n)
            for name in models:
                trainer, metrics = fit_and_test(
                    name, data, seed=seed, model_kwargs={**COMMON, **MODEL_KWARGS[name]},
                    device=args.device, epochs=epochs, batch_size=256, lr=1e-3,
                )  # fmt: skip
                params[name] = n_parameters(trainer.model)
                losses.setdefault((name, p), []).append((metrics["y1"]["rmse"] ** 2, metrics["y2"]["rmse"] ** 2))
                print(f"p={p} seed={seed} {name}: {losses[name, p][-1]}", flush=True)

    lines = ["| p | model | parameters | test MSE y1 | test MSE y2 | mean of both |", "|---:|---|---:|---:|---:|---:|"]
    mean_loss: dict[tuple[str, float], float] = {}
    for p in correlations:
        for name in models:
            values = losses[name, p]
            both = [(a + b) / 2 for a, b in values]
            mean_loss[name, p] = statistics.fmean(both)
            lines.append(
                f"| {p} | {name} | {params[name]:,} | {mean_std([a for a, _ in values])} | "
                f"{mean_std([b for _, b in values])} | {mean_std(both)} |"
            )
    lo, hi = min(correlations), max(correlations)
    drop = {name: mean_loss[name, lo] - mean_loss[name, hi] for name in models}
    mmoe_better = [p for p in correlations if mean_loss["mmoe", p] < mean_loss["shared-bottom", p]]
    agrees = drop["shared-bottom"] > drop["mmoe"] and mean_loss["mmoe", lo] < mean_loss["shared-bottom", lo]
    verdict = [
        "",
        f"**Paper's claim.** {CLAIM}",
        "",
        f"**Measured.** Mean test MSE rises from p = {hi} to p = {lo} by "
        + ", ".join(f"{drop[name]:+.4f} ({name})" for name in models)
        + f"; MMoE's loss is below Shared-Bottom's at p ∈ {{{', '.join(str(p) for p in mmoe_better) or 'none'}}}. "
        + ("The trend **agrees** with the paper: Shared-Bottom degrades more as the correlation falls, and MMoE "
           "is better at the lowest correlation." if agrees else
           "The trend does **not** fully agree with the paper (see the numbers above); with this budget "
           "(data size, epochs) the gap between architectures is within or near the seed noise."),
    ]
    report = "\n".join(
        header(
            "MMoE synthetic experiment (Ma et al., KDD 2018, §5.1)",
            device,
            [
                f"data: `load_dataset('synthetic-mmoe', correlation=p, seed=s, n={n})` (100 features, "
                "80/10/10 random split), one data set per seed",
                f"training: {epochs} epochs, batch 256, Adam lr 1e-3, equal weighting; test MSE after the last epoch",
                f"models: {', '.join(f'{m} {MODEL_KWARGS[m]}' for m in models)}; shared: {COMMON}",
                f"mean ± std over {len(seeds)} seeds (model and data seed)",
                "command: " + command_line(),
            ],
        )
        + lines
        + verdict
    ) + "\n"
    write_report(report, "mmoe_synthetic", device, args.quick, args.output)
    if not args.quick:
        plot(correlations, models, mean_loss, RESULTS / f"mmoe_synthetic-{device.type}.png")
    return report


def plot(correlations, models, mean_loss, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for name in models:
        ax.plot(correlations, [mean_loss[name, p] for p in correlations], marker="o", label=name)
    ax.set_xlabel("task correlation p")
    ax.set_ylabel("test MSE (mean of both tasks)")
    ax.set_title("MMoE synthetic experiment")
    ax.invert_xaxis()
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    print(f"written to {path}")


if __name__ == "__main__":
    main()
