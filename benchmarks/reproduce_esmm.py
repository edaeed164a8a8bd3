"""Reproduce ESMM: conversion-rate estimation over the entire impression space.

Ma, Zhao, Huang, Wang, Hu, Zhu and Gai, "Entire Space Multi-Task Model: An Effective
Approach for Estimating Post-Click Conversion Rate", SIGIR 2018. A conversion model trained
on clicked impressions only (the "BASE" of the paper; here the conversion network of
``SingleTask`` with task ``conversion``, observed on clicks only) is served on *every*
impression, where clicked impressions are a biased sample (sample-selection bias). ESMM
trains pCTR on all impressions and pCTCVR = pCTR · pCVR on all impressions, so its pCVR
tower never sees the biased sample alone.

The synthetic funnel knows the truth: each impression's ``true_cvr`` = P(purchase | click).
On the test split's entire impression space both pCVR estimates are scored by
- AUC against a counterfactual conversion label drawn once from ``true_cvr`` (as if every
  impression had been clicked), and against ``true_cvr`` via Spearman rank correlation;
- calibration: mean pCVR / mean true CVR (1 = calibrated) and mean |pCVR − true CVR|.

    python benchmarks/reproduce_esmm.py           # full: 5 seeds, writes results/
    python benchmarks/reproduce_esmm.py --quick   # smoke test, prints only
"""

from __future__ import annotations

import numpy as np
import torch

from _common import VERDICT_LINE, compare, fit_and_test, mean_std, paired_cell, paired_numbers, paper_agreement, parse_reproduction_args, publish, reproduction_parser  # noqa: I001
from mtlkit.data import columns as C
from mtlkit.data import load_dataset
from mtlkit.data.batch import LABELS
from mtlkit.metrics import roc_auc

CLAIM = (
    "(paraphrased from the abstract and §2.2) a CVR model trained on clicked impressions "
    "only suffers from sample selection bias when it is used over the entire impression "
    "space; ESMM, which learns pCVR through pCTCVR = pCTR × pCVR on all impressions, removes "
    "it and improves CVR AUC over the BASE model"
)
BASE, ESMM = "BASE: CVR on clicked impressions (SingleTask)", "ESMM (pCTCVR = pCTR · pCVR on all impressions)"
SETTINGS = {BASE: ("single", (C.CLICK, C.CONVERSION)), ESMM: ("esmm", (C.CLICK, C.PURCHASE))}  # label -> (model, tasks)
AUC, CALIBRATION = "AUC (entire space, counterfactual labels)", "mean pCVR / mean true CVR"
ERROR = "calibration error (distance of that ratio from 1)"
#: metric -> whether higher is better (None: not judged; its distance to 1 is, in the next column)
METRICS = {
    AUC: True,
    "Spearman(pCVR, true CVR)": True,
    CALIBRATION: None,
    ERROR: False,
    "mean absolute error of pCVR (against the true CVR)": False,
    "AUC on clicked impressions (observed purchases)": True,
}


def cvr_predictions(trainer, model_name: str) -> np.ndarray:
    """pCVR for every test impression (ESMM: its CVR tower; the baseline: its conversion output)."""
    if model_name != "esmm":
        return trainer.predict("test")[C.CONVERSION].numpy()
    model, samples = trainer.model, trainer.split("test")
    model.eval()
    with torch.no_grad():
        parts = [model.predict_cvr(batch).float().cpu() for batch in samples.batches(4096)]
    return torch.cat(parts).numpy()


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def score(data, p_cvr: np.ndarray, seed: int) -> dict[str, float]:
    """Every metric of :data:`METRICS` for one model's pCVR on the test split's impressions."""
    true_cvr = data.test[C.TRUE_CVR].numpy().astype(np.float64)
    counterfactual = np.random.default_rng(10_000 + seed).random(len(true_cvr)) < true_cvr
    labels = data.test[LABELS].numpy()
    clicked = labels[:, 0] > 0.5
    ratio = float(p_cvr.mean() / true_cvr.mean())
    return {
        AUC: roc_auc(counterfactual, p_cvr),
        "Spearman(pCVR, true CVR)": spearman(p_cvr, true_cvr),
        CALIBRATION: ratio,
        ERROR: abs(ratio - 1),
        "mean absolute error of pCVR (against the true CVR)": float(np.abs(p_cvr - true_cvr).mean()),
        "AUC on clicked impressions (observed purchases)": roc_auc(labels[clicked, 1] > 0.5, p_cvr[clicked]),
    }


def table(scores: dict[str, dict[str, list[float]]], paired: dict, metrics: list[str]) -> list[str]:
    """Both models' ``metrics`` (mean ± std) and ESMM − BASE paired by seed, with the verdict where
    the metric has a better direction."""
    lines = ["| model | " + " | ".join(metrics) + " |", "|---|" + "---:|" * len(metrics)]
    for label in SETTINGS:
        lines.append(f"| {label} | " + " | ".join(mean_std(scores[label][m]) for m in metrics) + " |")
    lines.append("| ESMM − BASE, paired by seed | " + " | ".join(
        paired_numbers(paired[m]) if METRICS[m] is None else paired_cell(paired[m]) for m in metrics) + " |")
    return lines


def measured(scores: dict[str, dict[str, list[float]]]) -> tuple[list[str], list[str], list[str]]:
    """The full table, the README's (entire-space metrics only) and the generated sentences."""
    base, esmm = scores[BASE], scores[ESMM]
    paired = {m: compare(esmm[m], base[m], higher_is_better=h is not False) for m, h in METRICS.items()}
    n = len(base[AUC])
    over = {label: sum(r > 1 for r in scores[label][CALIBRATION]) for label in SETTINGS}
    sentences = [
        f"- Entire-space CVR AUC: ESMM {mean_std(esmm[AUC])} vs BASE {mean_std(base[AUC])}; ESMM − BASE "
        f"{paired_cell(paired[AUC])}: {paper_agreement(paired[AUC])}.",
        f"- Calibration (mean pCVR / mean true CVR, 1 = calibrated): ESMM {mean_std(esmm[CALIBRATION], 3)}, BASE "
        f"{mean_std(base[CALIBRATION], 3)}; ESMM's calibration error against BASE's {paired_cell(paired[ERROR], 3)}. "
        f"The ratio is above 1 (an over-estimate) on {over[ESMM]} of {n} seeds for ESMM and {over[BASE]} of {n} "
        "for BASE.",
        f"- On clicked impressions, the space BASE is trained on, ESMM − BASE AUC "
        f"{paired_cell(paired['AUC on clicked impressions (observed purchases)'])}.",
    ]
    return table(scores, paired, list(METRICS)), table(scores, paired, [AUC, CALIBRATION, ERROR]), sentences


def main(argv: list[str] | None = None) -> str:
    parser = reproduction_parser(__doc__.splitlines()[0], quick_help="tiny sizes; print only")
    parser.add_argument("--epochs", type=int, default=None, help="epochs (default 5)")
    parser.add_argument("--selection-bias", type=float, default=None,
                        help="the generator's selection_bias (default: the generator's)")
    args, device, seeds = parse_reproduction_args(parser, argv)
    epochs = args.epochs or (1 if args.quick else 5)
    world = dict(n_users=150, n_items=80) if args.quick else {}
    if args.selection_bias is not None:
        world["selection_bias"] = args.selection_bias
    seq_len = 5 if args.quick else 20

    scores: dict[str, dict[str, list[float]]] = {label: {m: [] for m in METRICS} for label in SETTINGS}
    for seed in seeds:
        for label, (model_name, tasks) in SETTINGS.items():
            data = load_dataset("synthetic-funnel", seed=seed, tasks=tasks, seq_len=seq_len, **world)
            trainer, _ = fit_and_test(model_name, data, seed=seed, device=args.device,
                                      epochs=epochs, batch_size=512, lr=1e-3)
            row = score(data, cvr_predictions(trainer, model_name), seed)
            for key, value in row.items():
                scores[label][key].append(value)
            print(f"seed {seed} {label}: {row}", flush=True)

    full, short, sentences = measured(scores)
    report, _ = publish(
        "ESMM vs. a CVR model trained on clicks only (Ma et al., SIGIR 2018)", device,
        [
            "data: `load_dataset('synthetic-funnel', seed=s, tasks=...)` "
            + (f"with {world}" if world else "(quick world: 1,000 users, 400 items, 40,000 impressions)")
            + f", seq_len {seq_len}, temporal split; scored on the test split's every impression",
            f"training: {epochs} epochs, batch 512, Adam lr 1e-3, equal weighting, default model configs",
            f"mean ± std over {len(seeds)} seeds (world, split and model); both models of a seed share its world, "
            "so ESMM − BASE is paired by seed",
            VERDICT_LINE,
        ],
        [*full, "", f"**Paper's claim.** {CLAIM}.", "", "**Measured.**", "", *sentences],
        name="esmm", quick=args.quick, output=args.output, seeds=seeds,
        readme=[*short, "", *sentences], data={"scores": scores},
    )
    return report


if __name__ == "__main__":
    main()
