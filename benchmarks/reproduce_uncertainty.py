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
import statistics

import numpy as np
import torch

from _common import ABOVE_BELOW, VERDICT_LINE, compare, fit_and_test, mean_std, paired_cell, paired_numbers, parse_reproduction_args, publish, reproduction_parser, verdict_word  # noqa: I001
from mtlkit.data.batch import DENSE, HISTORY, HISTORY_PADDING_MASK, ITEM, LABEL_MASK, LABELS, SPARSE, USER
from mtlkit.data.schema import FeatureSchema, TaskSpec
from mtlkit.data.tensors import MultiTaskData, TensorSamples

CLAIM = (
    "(Kendall et al. 2018, §3) minimising the objective with respect to the noise "
    "parameters σ_t makes them track each task's homoscedastic noise, so the weights "
    "1/(2σ_t²) are learned from the data instead of tuned by hand"
)


def noisy_regression(n: int, sigmas: tuple[float, ...], seed: int, d: int = 16) -> MultiTaskData:
    """``len(sigmas)`` linear regression tasks on shared Gaussian inputs with noise ``sigmas``.

    ``info["train_noise_std"]`` holds, per task, the standard deviation of the noise σ_t ε_t
    actually drawn on the training rows: the noise level a perfect model would be left with there.
    """
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(np.float32)
    W = rng.standard_normal((d, len(sigmas))) / math.sqrt(d)
    noise = rng.standard_normal((n, len(sigmas))) * np.asarray(sigmas)  # (n, T)
    Y = (X @ W + noise).astype(np.float32)
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
                         info={"sigmas": list(sigmas), "train_noise_std": noise[parts["train"]].std(axis=0).tolist()})


def measured(runs: list[dict], sigmas: tuple[float, ...]) -> tuple[list[str], list[str]]:
    """The table and the sentences: each learned σ̂_t against the true σ_t, the noise drawn on the
    training rows and the model's training RMSE (which exp(s_t) converges to), paired by seed."""
    n = len(runs)
    lines = ["| task | true σ | learned σ̂ = exp(s/2) | σ̂ − σ | noise drawn (train) | training RMSE | "
             "σ̂ − training RMSE | test RMSE |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    sentences = []
    for t, sigma in enumerate(sigmas):
        learned = [r["sigma_hat"][t] for r in runs]
        drawn = [r["train_noise_std"][t] for r in runs]
        train_rmse = [r["train_rmse"][t] for r in runs]
        to_truth = compare(learned, [sigma] * n)
        to_train = compare(learned, train_rmse)
        lines.append(f"| y{t + 1} | {sigma:g} | {mean_std(learned, 3)} | {paired_cell(to_truth, 3, *ABOVE_BELOW)} | "
                     f"{mean_std(drawn, 3)} | {mean_std(train_rmse, 3)} | {paired_cell(to_train, 3, *ABOVE_BELOW)} | "
                     f"{mean_std([r['test_rmse'][t] for r in runs], 3)} |")
        sentences.append(
            f"- y{t + 1}: σ̂ = {mean_std(learned, 3)} is {verdict_word(to_truth, *ABOVE_BELOW)} "
            f"the true σ = {sigma:g} ({paired_numbers(to_truth, 3)}) and "
            f"{verdict_word(to_train, *ABOVE_BELOW)} the model's training RMSE "
            f"{mean_std(train_rmse, 3)} ({paired_numbers(to_train, 3)})."
        )
    true_ratio = sigmas[1] / sigmas[0]
    ratios = [r["sigma_hat"][1] / r["sigma_hat"][0] for r in runs]
    ratio = compare(ratios, [true_ratio] * n)
    lines.append(f"| ratio y2 / y1 | {true_ratio:g} | {mean_std(ratios, 3)} | {paired_cell(ratio, 3, *ABOVE_BELOW)} | "
                 f"{mean_std([r['train_noise_std'][1] / r['train_noise_std'][0] for r in runs], 3)} | "
                 f"{mean_std([r['train_rmse'][1] / r['train_rmse'][0] for r in runs], 3)} | — | "
                 f"{mean_std([r['test_rmse'][1] / r['test_rmse'][0] for r in runs], 3)} |")
    sentences.append(
        f"- The learned ratio σ̂_2/σ̂_1 = {mean_std(ratios, 3)} is "
        f"{verdict_word(ratio, *ABOVE_BELOW)} the true {true_ratio:g} "
        f"({abs(statistics.fmean(ratios) / true_ratio - 1):.1%} off; {paired_numbers(ratio, 3)})."
    )
    return lines, sentences


def main(argv: list[str] | None = None) -> str:
    parser = reproduction_parser(__doc__.splitlines()[0], quick_help="tiny sizes; print only")
    parser.add_argument("--sigmas", type=float, nargs=2, default=(0.5, 2.0))
    parser.add_argument("--n", type=int, default=None, help="samples (default 20000)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs (default 15)")
    args, device, seeds = parse_reproduction_args(parser, argv)
    n = args.n or (2000 if args.quick else 20_000)
    epochs = args.epochs or (2 if args.quick else 15)
    sigmas = tuple(args.sigmas)

    runs: list[dict] = []
    for seed in seeds:
        data = noisy_regression(n, sigmas, seed)
        trainer, metrics = fit_and_test(
            "shared-bottom", data, seed=seed, device=args.device,
            model_kwargs=dict(embedding_dim=32, bottom_hidden=(64,), tower_hidden=(32,), dropout=0.0),
            epochs=epochs, batch_size=256, lr=5e-3, weighting="uncertainty",
        )  # fmt: skip
        train = trainer.evaluate("train")
        tasks = data.schema.task_names
        runs.append({
            "seed": seed,
            "sigma_hat": [math.exp(float(s) / 2) for s in trainer.strategy.log_vars.detach().cpu()],
            "train_noise_std": data.info["train_noise_std"],
            "train_rmse": [train[t]["rmse"] for t in tasks],
            "test_rmse": [metrics[t]["rmse"] for t in tasks],
        })  # fmt: skip
        print(f"seed {seed}: {runs[-1]}", flush=True)

    table, sentences = measured(runs, sigmas)
    body = [*table, "", f"**Paper's claim.** {CLAIM}.", "",
            "**Measured.** At the optimum of the objective exp(s_t) equals the task's training MSE, so σ̂_t "
            "is compared with the true σ_t and with the model's own training RMSE, seed by seed:", "", *sentences]
    report, _ = publish(
        "Uncertainty weighting recovers task noise (Kendall et al., CVPR 2018)", device,
        [
            f"data: two linear regression tasks on x ~ N(0, I_16), noise σ = {sigmas}, n = {n:,} (80/10/10); "
            "noise drawn (train) = the standard deviation of the noise actually drawn on the training rows",
            f"model: shared-bottom (bottom 64, towers 32, no dropout); weighting `uncertainty`; "
            f"{epochs} epochs, batch 256, Adam lr 5e-3",
            f"mean ± std over {len(seeds)} seeds; σ̂ − σ: against the constant σ; σ̂ − training RMSE: paired by seed",
            VERDICT_LINE,
        ],
        body, name="uncertainty", quick=args.quick, output=args.output, seeds=seeds,
        readme=[*table, "", *sentences], data={"sigmas": list(sigmas), "runs": runs},
    )
    return report


if __name__ == "__main__":
    main()
