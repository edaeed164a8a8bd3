"""Reproduce uncertainty weighting: do the learned task noise levels recover the true ones?

Kendall, Gal and Cipolla, "Multi-Task Learning Using Uncertainty to Weigh Losses for Scene
Geometry and Semantics", CVPR 2018. Each regression task t gets a learnable s_t = log σ_t²
and the loss Σ_t ½ exp(−s_t) L_t + ½ s_t (``make_weighting("uncertainty")``). At the optimum
exp(s_t) = L_t, the task's mean squared error, so on data with known homoscedastic noise
σ_t (and a model that fits the noiseless part) the learned σ̂_t = exp(s_t / 2) should
recover σ_t — and their ratio the true ratio.

Data: x ~ N(0, I_16), y_t = w_tᵀx + σ_t ε_t with w_t ~ N(0, I/16), σ = (0.5, 2.0) by default,
ε_t ~ N(0, 1); 80/10/10 random split. Model: SharedBottom on the 16 dense features.

    python benchmarks/reproduce_uncertainty.py           # full: 5 seeds, writes results/
    python benchmarks/reproduce_uncertainty.py --quick   # smoke test, prints only
"""

from __future__ import annotations

import math

import numpy as np
import torch

from _common import fit_and_test, header, mean_std, parse_reproduction_args, reproduction_parser, write_report  # noqa: I001
from mtlkit.data.samples import (
    DENSE, HISTORY, HISTORY_PADDING_MASK, ITEM, LABEL_MASK, LABELS, SPARSE, USER,
    FeatureSchema, MultiTaskData, TaskSpec, TensorSamples,
)  # fmt: skip

CLAIM = (
    "(Kendall et al. 2018, §3) minimising the objective with respect to the noise "
    "parameters σ_t makes them track each task's homoscedastic noise, so the weights "
    "1/(2σ_t²) are learned from the data instead of tuned by hand"
)


def noisy_regression(n: int, sigmas: tuple[float, ...], seed: int, d: int = 16) -> MultiTaskData:
    """``len(sigmas)`` linear regression tasks on shared Gaussian inputs with noise ``sigmas``."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(np.float32)
    W = rng.standard_normal((d, len(sigmas))) / math.sqrt(d)
    Y = (X @ W + rng.standard_normal((n, len(sigmas))) * np.asarray(sigmas)).astype(np.float32)
    order = rng.permutation(n)
    cut1, cut2 = int(0.8 * n), int(0.9 * n)
    parts = {"train": order[:cut1], "valid": order[cut1:cut2], "test": order[cut2:]}
    tasks = tuple(f"y{t + 1}" for t in range(len(sigmas)))
    splits = {
        part: TensorSamples({
            USER: torch.zeros(len(idx), dtype=torch.int64), ITEM: torch.zeros(len(idx), dtype=torch.int64),
            SPARSE: torch.zeros(len(idx), 0, dtype=torch.int64), DENSE: torch.from_numpy(X[idx]),
            HISTORY: torch.zeros(len(idx), 0, dtype=torch.int64),
            HISTORY_PADDING_MASK: torch.zeros(len(idx), 0, dtype=torch.bool),
            LABELS: torch.from_numpy(Y[idx]), LABEL_MASK: torch.ones(len(idx), len(sigmas), dtype=torch.bool),
        })
        for part, idx in parts.items()
    }  # fmt: skip
    schema = FeatureSchema(
        n_users=1, n_items=1, sparse_fields=(), sparse_cardinalities=(),
        dense_fields=tuple(f"x{j}" for j in range(d)), seq_len=0,
        tasks=tuple(TaskSpec(t, "regression") for t in tasks),
    )  # fmt: skip
    return MultiTaskData(schema=schema, train=splits["train"], valid=splits["valid"], test=splits["test"],
                         info={"sigmas": list(sigmas)})


def main(argv: list[str] | None = None) -> str:
    parser = reproduction_parser(__doc__.splitlines()[0], quick_help="tiny sizes; print only")
    parser.add_argument("--sigmas", type=float, nargs=2, default=(0.5, 2.0))
    parser.add_argument("--n", type=int, default=None, help="samples (default 20000)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs (default 15)")
    args, device, seeds = parse_reproduction_args(parser, argv)
    n = args.n or (2000 if args.quick else 20_000)
    epochs = args.epochs or (2 if args.quick else 15)
    sigmas = tuple(args.sigmas)

    recovered: list[tuple[float, ...]] = []
    rmse: list[tuple[float, ...]] = []
    for seed in seeds:
        data = noisy_regression(n, sigmas, seed)
        trainer, metrics = fit_and_test(
            "shared-bottom", data, seed=seed, device=args.device,
            model_kwargs=dict(embedding_dim=32, bottom_hidden=(64,), tower_hidden=(32,), dropout=0.0),
            epochs=epochs, batch_size=256, lr=5e-3, weighting="uncertainty",
        )  # fmt: skip
        log_vars = trainer.strategy.log_vars.detach().cpu()
        recovered.append(tuple(math.exp(float(s) / 2) for s in log_vars))
        rmse.append(tuple(metrics[t]["rmse"] for t in data.schema.task_names))
        print(f"seed {seed}: σ̂ = {recovered[-1]}, test RMSE = {rmse[-1]}", flush=True)

    lines = ["| task | true σ | learned σ̂ = exp(s/2) | test RMSE |", "|---|---:|---:|---:|"]
    for t, sigma in enumerate(sigmas):
        lines.append(f"| y{t + 1} | {sigma:g} | {mean_std([r[t] for r in recovered], 3)} | "
                     f"{mean_std([r[t] for r in rmse], 3)} |")
    ratios = [r[1] / r[0] for r in recovered]
    lines.append(f"| ratio y2 / y1 | {sigmas[1] / sigmas[0]:g} | {mean_std(ratios, 3)} | "
                 f"{mean_std([r[1] / r[0] for r in rmse], 3)} |")
    error = abs(sum(ratios) / len(ratios) / (sigmas[1] / sigmas[0]) - 1)
    verdict = [
        "",
        f"**Paper's claim.** {CLAIM}.",
        "",
        f"**Measured.** The learned ratio σ̂_2/σ̂_1 is {mean_std(ratios, 3)} against the true "
        f"{sigmas[1] / sigmas[0]:g} ({error:.1%} off): "
        + ("the learned noise levels **recover** the truth." if error < 0.1 else
           "the learned noise levels do **not** fully recover the truth with this budget.")
        + " exp(s_t) converges to the task's *training* MSE, which is the noise variance plus "
          "whatever the model has not fitted, so σ̂_t ≥ σ_t up to sampling error.",
    ]
    report = "\n".join(
        header(
            "Uncertainty weighting recovers task noise (Kendall et al., CVPR 2018)",
            device,
            [
                f"data: two linear regression tasks on x ~ N(0, I_16), noise σ = {sigmas}, n = {n:,} (80/10/10)",
                f"model: shared-bottom (bottom 64, towers 32, no dropout); weighting `uncertainty`; "
                f"{epochs} epochs, batch 256, Adam lr 5e-3",
                f"mean ± std over {len(seeds)} seeds",
            ],
        )
        + lines
        + verdict
    ) + "\n"
    write_report(report, "uncertainty", device, args.quick, args.output)
    return report


if __name__ == "__main__":
    main()
