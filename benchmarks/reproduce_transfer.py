"""When does sharing help? Shared-bottom, MMoE and PLE against single-task models on the funnel.

Grid: task relatedness ρ (the funnel's ``task_relatedness``: −0.5, 0, 0.5, 0.9) × the share of
users whose purchase labels are observed (100 %, 30 %, 10 %, 3 %; :func:`~mtlkit.data.datasets.
keep_labels_of_users`, in training and validation — the test split scores everyone). Every
cell trains the four models on the same seeded worlds with one budget (:mod:`mtlkit.transfer`:
at most 8 epochs, the epoch with the best *validation* purchase AUC kept), scores the test
split, and compares each shared model with the single-task one **paired by seed**, judged by
the rule of :mod:`mtlkit.stats`. The achievable bound (the Bayes-optimal probabilities) is
scored on the same rows.

Writes ``results/transfer-<device>.md``, ``.json`` (every cell) and ``.png`` (the gains).

    python benchmarks/reproduce_transfer.py                 # the whole grid, 5 seeds
    python benchmarks/reproduce_transfer.py --quick         # 2 × 2 cells, 2 seeds: a smoke run
    python benchmarks/reproduce_transfer.py --sparse-task conversion --fractions 1.0 \
        --models single shared-bottom mmoe                  # writes results/transfer-conversion-<device>.md

``purchase`` (click AND buy, ESMM's CTCVR over every impression) contains the click, so it stays
related to the click task whatever ρ is; ``conversion`` (buy given click, observed on clicks
only) does not, and shows what sharing does between tasks that ρ alone relates.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from _common import header, mean_std, parse_reproduction_args, reproduction_parser, write_report  # noqa: I001
from mtlkit.stats import VERDICT_RULE, gap_closed
from mtlkit.data.columns import CONVERSION
from mtlkit.transfer import DENSE_TASK, MODELS, SPARSE_TASK, TransferSetting, compare_with_single, run_cells

RELATEDNESS = (-0.5, 0.0, 0.5, 0.9)
FRACTIONS = (1.0, 0.3, 0.1, 0.03)
QUICK = {"relatedness": (0.0, 0.9), "fractions": (1.0, 0.1), "world": {"n_users": 300, "n_items": 120}, "epochs": 3}
#: What each sparse task is: ESMM's entire-space purchase, or the conversion observed on clicks only.
SPACES = {SPARSE_TASK: "CTCVR: click and buy, every impression", CONVERSION: "CVR: buy given click, clicked impressions"}
EXPECTATION = (
    "(paraphrasing Ma et al., KDD 2018, §3.2–5 and Tang et al., RecSys 2020, §5) sharing helps a sparse task "
    "most when its labels are scarce and the tasks are related, and hurts (negative transfer) when they are "
    "unrelated or opposed; gated experts (MMoE, PLE) lose less than a shared bottom there"
)


def comparison_rows(cells: Sequence[dict], sparse: str = SPARSE_TASK) -> list[dict]:
    """One row per (ρ, fraction, shared model, task): the paired gain over single-task and its verdict."""
    rows = []
    groups: dict[tuple[float, float], list[dict]] = {}
    for cell in cells:
        key = (cell["setting"]["relatedness"], cell["setting"]["label_fraction"])
        groups.setdefault(key, []).append(cell)
    for (rho, fraction), group in sorted(groups.items()):
        for task in (sparse, DENSE_TASK):
            for model, comparison in compare_with_single(group, task).items():
                rows.append({"relatedness": rho, "label_fraction": fraction, "model": model, "task": task,
                             "metric": "auc", "gain": comparison.gain, "standard_error": comparison.standard_error,
                             "wins": comparison.wins, "n": comparison.n, "verdict": comparison.verdict})
    return rows


def _table(cells: Sequence[dict], rows: Sequence[dict], task: str, sparse: str = SPARSE_TASK) -> list[str]:
    models = [m for m in cells[0]["models"] if m != "single"]
    lines = [
        f"| ρ | {sparse} labels | bound AUC | single AUC (share of gap closed) | "
        + " | ".join(f"{m} − single" for m in models) + " |",
        "|---:|---:|---:|---:|" + "---|" * len(models),
    ]
    for rho in sorted({c["setting"]["relatedness"] for c in cells}):
        for fraction in sorted({c["setting"]["label_fraction"] for c in cells}, reverse=True):
            group = [c for c in cells if c["setting"]["relatedness"] == rho and c["setting"]["label_fraction"] == fraction]
            if not group:
                continue
            bound = [c["bound"][task]["auc"] for c in group]
            single = [c["models"]["single"]["test"][task]["auc"] for c in group]
            closed = statistics.fmean(gap_closed(s, 0.5, b) for s, b in zip(single, bound))
            cells_text = []
            for model in models:
                row = next(r for r in rows if r["relatedness"] == rho and r["label_fraction"] == fraction
                           and r["model"] == model and r["task"] == task)
                cells_text.append(f"{row['gain']:+.4f} ± {row['standard_error']:.4f} ({row['wins']}/{row['n']}) "
                                  f"{row['verdict']}")
            lines.append(f"| {rho:g} | {fraction:.0%} | {statistics.fmean(bound):.4f} | {mean_std(single)} "
                         f"({closed:.0%}) | " + " | ".join(cells_text) + " |")
    return lines


def summary_sentences(rows: Sequence[dict], sparse: str = SPARSE_TASK) -> list[str]:
    """What the grid shows, counted from the verdicts (never written by hand)."""
    sentences = []
    for task in (sparse, DENSE_TASK):
        for model in [m for m in MODELS if any(r["model"] == m for r in rows)]:
            mine = [r for r in rows if r["task"] == task and r["model"] == model]
            helps = [r for r in mine if r["verdict"] == "helps"]
            hurts = [r for r in mine if r["verdict"] == "hurts"]

            def cells(selected):
                return ", ".join(f"ρ={r['relatedness']:g}/{r['label_fraction']:.0%}" for r in selected) or "none"

            sentences.append(f"- {task} AUC, {model} vs single: helps in {len(helps)} of {len(mine)} cells "
                             f"({cells(helps)}); hurts in {len(hurts)} ({cells(hurts)}).")
    return sentences


def main(argv: Sequence[str] | None = None) -> str:
    parser = reproduction_parser(__doc__.splitlines()[0], quick_help="2 × 2 cells, small worlds, 2 seeds")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes, one torch thread each (default 2)")
    parser.add_argument("--sparse-task", choices=(SPARSE_TASK, CONVERSION), default=SPARSE_TASK,
                        help="the task whose labels are made scarce (default purchase)")
    parser.add_argument("--relatedness", type=float, nargs="+", default=None, help=f"ρ values (default {RELATEDNESS})")
    parser.add_argument("--fractions", type=float, nargs="+", default=None,
                        help=f"shares of users with observed labels of the sparse task (default {FRACTIONS})")
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS),
                        help="models, single-task first (default all)")
    args, device, seeds = parse_reproduction_args(parser, argv)
    sparse, models = args.sparse_task, tuple(dict.fromkeys(["single", *args.models]))
    relatedness = args.relatedness or (QUICK["relatedness"] if args.quick else RELATEDNESS)
    fractions = args.fractions or (QUICK["fractions"] if args.quick else FRACTIONS)
    extra = {"world": QUICK["world"], "epochs": QUICK["epochs"]} if args.quick else {}
    settings = [TransferSetting(rho, fraction, sparse_task=sparse, **extra) for rho in relatedness for fraction in fractions]
    cells = run_cells(settings, seeds, models, jobs=max(1, args.jobs), device=device.type)
    rows = comparison_rows(cells, sparse)
    parameters = {name: cells[0]["models"][name]["parameters"] for name in models}
    seconds = {name: statistics.fmean(c["models"][name]["seconds"] for c in cells) for name in models}
    setting = settings[0]
    lines = header(
        "When does sharing help? Shared models against single-task ones on the funnel",
        device,
        [
            f"grid: ρ ∈ {list(relatedness)} × {sparse} labels observed for {[f'{f:.0%}' for f in fractions]} of the "
            "users (train and valid; test scores everyone)",
            f"world: `load_dataset('synthetic-funnel', seed=s, tasks=('click', '{sparse}'), task_relatedness=ρ"
            f"{', ' + ', '.join(f'{k}={v}' for k, v in setting.world.items()) if setting.world else ''})`, "
            f"seq_len {setting.seq_len}",
            f"training: Adam lr {setting.lr:g}, batch {setting.batch_size}, at most {setting.epochs} epochs, the epoch "
            f"with the best validation {sparse} AUC kept (patience {setting.patience}); equal weighting",
            "parameters: " + ", ".join(f"{m} {parameters[m]:,}" for m in models)
            + "; seconds per run: " + ", ".join(f"{m} {seconds[m]:.1f}" for m in models),
            f"{len(seeds)} seeds per cell (world, split, label subset and initial weights); verdict: {VERDICT_RULE}",
            f"jobs: {args.jobs} worker processes, one torch thread each",
            "gain = shared − single test AUC, paired by seed, mean ± standard error (seeds where the shared model "
            "was better / seeds); share of gap closed = (AUC − 0.5) / (bound AUC − 0.5)",
        ],
        seeds=seeds,
    )
    lines += [f"**Expectation from the literature.** {EXPECTATION}.", ""]
    lines += [f"#### Sparse task: {sparse} ({SPACES[sparse]})", "", *_table(cells, rows, sparse, sparse), ""]
    lines += [f"#### Dense task: {DENSE_TASK} (does sharing cost it anything?)", "",
              *_table(cells, rows, DENSE_TASK, sparse), ""]
    lines += ["#### What the grid shows (counted from the verdicts)", "", *summary_sentences(rows, sparse), ""]
    report = "\n".join(lines) + "\n"
    readme = [
        f"{len(seeds)} seeds per cell; at most {setting.epochs} epochs, the best validation {sparse} AUC kept; "
        f"gain = shared − single test AUC paired by seed ± standard error, verdict by the kit's rule.",
        "",
        *_table(cells, rows, sparse, sparse),
        "",
        *summary_sentences(rows, sparse),
    ]
    name = "transfer" if sparse == SPARSE_TASK else f"transfer-{sparse}"
    output = write_report(report, name, device, args.quick, args.output, seeds=seeds, readme=readme,
                          data={"cells": cells, "rows": rows})
    if output is not None:
        from mtlkit.viz import plot_transfer_gains

        figure = plot_transfer_gains(rows, task=sparse)
        figure.savefig(output.with_suffix(".png"), dpi=110)
        plot_transfer_gains(rows, task=DENSE_TASK).savefig(output.with_name(output.stem + "-click.png"), dpi=110)
    return report


if __name__ == "__main__":
    main()
