"""Reproduce the adversarial trade-off: gradient reversal against a protected attribute.

Ganin & Lempitsky, "Unsupervised Domain Adaptation by Backpropagation", ICML 2015: a
gradient-reversal layer between the shared features and a classifier of a nuisance variable
(there: the domain) makes the features invariant to it while they still serve the main task.
Here the nuisance variable is a user attribute — the funnel's ``is_bot`` flag, MovieLens-100K's
gender — that is *not* a model input (the funnel never feeds ``is_bot`` to the model; MovieLens
is loaded with ``drop_features=("gender",)``), so the adversary has to remove what the other user
fields and the behaviour reveal about it. MMoE is trained with ``TrainConfig(adversary=..., adversary_strength=λ)`` for
several λ. For each λ the script reports the main tasks' validation and test metrics against
three AUCs of the attribute on the *held-out* users (every fifth user, never seen by the
adversary): the adversary head's own, and two post-hoc probes fitted on the frozen
representations of the other users (``Trainer.probe_adversary``: logistic regression and a
one-hidden-layer MLP; Elazar & Goldberg, EMNLP 2018). 0.5 = not recoverable.

Data: the synthetic funnel (offline) and MovieLens-100K (``--root`` if given, else a local copy
under ``../shared/data`` if there is one; skipped otherwise — the script never downloads).
``--datasets`` runs a part only.

    python benchmarks/reproduce_adversarial.py --threads 1          # full: writes results/
    python benchmarks/reproduce_adversarial.py --quick              # smoke test, funnel only, prints
"""

from __future__ import annotations

import time
from pathlib import Path

from _common import ABOVE_BELOW, SHARED_DATA, VERDICT_LINE, compare, fit_and_test, mean_std, paired_cell, paired_numbers, parse_reproduction_args, publish, reproduction_parser, verdict_word  # noqa: I001
from mtlkit.data import load_dataset
from mtlkit.summaries import macro_average

CLAIM = (
    "“As the training progresses, the approach promotes the emergence of ‘deep’ features that are "
    "(i) discriminative for the main learning task on the source domain and (ii) invariant with "
    "respect to the shift between the domains” (Ganin & Lempitsky, ICML 2015, abstract) — here the "
    "features should become invariant to a user attribute, i.e. it should no longer be recoverable "
    "from them, at a small cost to the main tasks"
)
CAUTION = (
    "Elazar & Goldberg (EMNLP 2018) found that an adversary at chance level during training does not "
    "mean the attribute is gone: a post-hoc classifier trained on the frozen representations still "
    "recovered it well above chance (and Barrett et al., EMNLP 2019, showed such a probe must be "
    "scored on new samples — here: held-out users)"
)
LAMBDAS = (0.0, 0.25, 0.5, 1.0, 2.0)
PARTS = ("funnel", "movielens")
MODEL_KWARGS = dict(embedding_dim=8, d_model=16, n_heads=2, d_ff=32, n_experts=3, expert_hidden=(32,),
                    tower_hidden=(16,), keep_attention_weights=False, use_text=False)
SEQ_LEN = 8
COLUMNS = ("valid macro AUC", "test macro AUC", "test rating RMSE", "head AUC", "linear probe AUC", "MLP probe AUC",
           "better probe AUC")
CHANCE = 0.5  # the AUC of a classifier that knows nothing of the attribute


def measure(data, attribute: str, strength: float, seed: int, *, epochs: int, batch_size: int,
            device: str) -> dict[str, float]:
    """Train MMoE with an adversary of strength λ; the main tasks' metrics and the attribute's AUCs."""
    trainer, test = fit_and_test("mmoe", data, seed=seed, model_kwargs=MODEL_KWARGS, device=device,
                                 epochs=epochs, batch_size=batch_size, lr=3e-3, adversary=attribute,
                                 adversary_strength=strength)  # fmt: skip
    return {
        "valid macro AUC": macro_average(trainer.evaluate("valid"), "auc"),
        "test macro AUC": macro_average(test, "auc"),
        "test rating RMSE": test["rating"]["rmse"],
        "head AUC": trainer.evaluate_adversary("test")["auc"],
        "linear probe AUC": trainer.probe_adversary("test", probe="linear")["auc"],
        "MLP probe AUC": trainer.probe_adversary("test", probe="mlp")["auc"],
    }


def table(scores: dict[float, dict[str, list[float]]], columns: tuple[str, ...] = COLUMNS) -> list[str]:
    """Mean ± std per λ of ``columns``."""
    lines = ["| λ | " + " | ".join(columns) + " |", "|---:|" + "---:|" * len(columns)]
    for strength, values in scores.items():
        lines.append(f"| {strength:g} | " + " | ".join(mean_std(values[c]) for c in columns) + " |")
    return lines


def against_no_reversal(scores: dict[float, dict[str, list[float]]]) -> list[str]:
    """Per λ > 0, paired by seed with λ = 0: the main tasks' test macro AUC and the better probe's
    AUC ("helps" = lower: less of the attribute recoverable)."""
    base = min(scores)
    lines = ["| λ | test macro AUC − at λ = 0 | better probe AUC − at λ = 0 | better probe AUC − chance |",
             "|---:|---:|---:|---:|"]
    for strength, values in scores.items():
        if strength == base:
            continue
        cost = compare(values["test macro AUC"], scores[base]["test macro AUC"])
        probe = compare(values["better probe AUC"], scores[base]["better probe AUC"], higher_is_better=False)
        chance = compare(values["better probe AUC"], [CHANCE] * len(values["better probe AUC"]))
        lines.append(f"| {strength:g} | {paired_cell(cost)} | {paired_cell(probe, helps='lower', hurts='higher')} | "
                     f"{paired_cell(chance, 4, *ABOVE_BELOW)} |")
    return lines


def verdict(name: str, attribute: str, scores: dict[float, dict[str, list[float]]]) -> list[str]:
    """The generated sentences of one data set, each comparison paired by seed (with λ = 0, or with
    chance for the probe and the head)."""
    strengths = sorted(scores)
    base = strengths[0]
    n = len(scores[base]["better probe AUC"])

    def to_chance(strength: float, column: str) -> str:
        return verdict_word(compare(scores[strength][column], [CHANCE] * n), *ABOVE_BELOW)

    def listed(values: list[float]) -> str:
        return "at λ ∈ {" + ", ".join(f"{s:g}" for s in values) + "}" if values else "at no λ"

    lowered = [s for s in strengths[1:] if compare(scores[s]["better probe AUC"], scores[base]["better probe AUC"],
                                                   higher_is_better=False).verdict == "helps"]
    above = [s for s in strengths if to_chance(s, "better probe AUC") == "above"]
    head_below = [s for s in strengths if to_chance(s, "head AUC") == "below" and s in above]
    cost = [s for s in strengths[1:] if compare(scores[s]["test macro AUC"], scores[base]["test macro AUC"]).verdict
            == "hurts"]
    strongest = strengths[-1]
    sentences = [
        f"- {name} (`{attribute}`): at λ = {base:g} the better probe recovers the attribute of held-out users with AUC "
        f"{mean_std(scores[base]['better probe AUC'], 3)}, {to_chance(base, 'better probe AUC')} chance "
        f"({paired_numbers(compare(scores[base]['better probe AUC'], [CHANCE] * n), 3)}). Reversal lowers it, paired "
        f"by seed, {listed(lowered)}; it stays above chance {listed(above)}"
        + (" — every λ tried: the attribute is never made unrecoverable." if len(above) == len(strengths) else "."),
    ]
    if head_below:
        sentences.append(
            f"- The adversary head's own AUC is below chance {listed(head_below)} while the probe is above it "
            "there: the encoder flips the signal faster than the head follows, so the head's AUC is no measure of "
            "what is recoverable."
        )
    sentences.append(
        f"- Cost to the main tasks, paired by seed with λ = {base:g}: test macro AUC lower {listed(cost)}; at "
        f"λ = {strongest:g} {paired_cell(compare(scores[strongest]['test macro AUC'], scores[base]['test macro AUC']))}"
        + (f", at λ = {strengths[1]:g} "
           f"{paired_cell(compare(scores[strengths[1]]['test macro AUC'], scores[base]['test macro AUC']))}"
           if len(strengths) > 2 else "") + "."
    )
    return sentences


def main(argv: list[str] | None = None) -> str:
    parser = reproduction_parser(__doc__.splitlines()[0], quick_help="a tiny funnel, 1 epoch, λ ∈ {0, 1}; print only")
    parser.add_argument("--root", type=Path, default=None, help="folder holding ml-100k/ (default: a local copy, if any)")
    parser.add_argument("--lambdas", type=float, nargs="+", default=None, help=f"strengths λ (default {LAMBDAS})")
    parser.add_argument("--funnel-epochs", type=int, default=None, help="epochs on the funnel (default 3)")
    parser.add_argument("--movielens-epochs", type=int, default=None, help="epochs on ML-100K (default 1)")
    parser.add_argument("--datasets", choices=PARTS, nargs="+", default=PARTS, help=f"parts to run (default {PARTS})")
    args, device, seeds = parse_reproduction_args(parser, argv)
    lambdas = tuple(args.lambdas or ((0.0, 1.0) if args.quick else LAMBDAS))
    funnel_world = (dict(n_users=200, n_items=50, n_impressions=3000, bot_fraction=0.2) if args.quick
                    else dict(n_users=2000, n_items=500, n_impressions=40_000, bot_fraction=0.2))
    root = args.root
    if root is None and not args.quick and (SHARED_DATA / "ml-100k").is_dir():
        root = SHARED_DATA
    settings = {}  # name -> (attribute, loader, epochs, batch size)
    if "funnel" in args.datasets:  # is_bot is never a model input (build_multitask_data skips it)
        settings["synthetic funnel"] = ("bot", lambda seed: load_dataset("synthetic-funnel", seed=seed,
                                                                         seq_len=SEQ_LEN, **funnel_world),
                                        args.funnel_epochs or (1 if args.quick else 3), 512)
    if "movielens" in args.datasets and root is not None:
        settings["MovieLens-100K"] = ("gender", lambda seed: load_dataset("movielens-100k", root=root, seed=seed,
                                                                          seq_len=SEQ_LEN, download=False,
                                                                          drop_features=("gender",)),
                                      args.movielens_epochs or 1, 1024)

    sections, readme, data = [], [], {}
    for name, (attribute, load, epochs, batch_size) in settings.items():
        scores: dict[float, dict[str, list[float]]] = {s: {c: [] for c in COLUMNS} for s in lambdas}
        for seed in seeds:
            data_set = load(seed)
            for strength in lambdas:
                started = time.perf_counter()
                row = measure(data_set, attribute, strength, seed, epochs=epochs, batch_size=batch_size,
                              device=args.device)
                row["better probe AUC"] = max(row["linear probe AUC"], row["MLP probe AUC"])
                for column, value in row.items():
                    scores[strength][column].append(value)
                print(f"{name} seed {seed} λ={strength:g} ({time.perf_counter() - started:.0f} s): "
                      + ", ".join(f"{k} {v:.4f}" for k, v in row.items()), flush=True)
        sentences = verdict(name, attribute, scores)
        title = f"#### {name}: adversary `{attribute}`, {epochs} epoch(s), batch {batch_size}"
        sections += [title, "", *table(scores), "", "Paired by seed:", "", *against_no_reversal(scores), "",
                     "**Measured.**", "", *sentences, ""]
        readme += [f"{name}, attribute `{attribute}`:", "",
                   *table(scores, ("test macro AUC", "better probe AUC", "head AUC")), "",
                   *against_no_reversal(scores), "", *sentences, ""]
        data[name] = {f"{strength:g}": values for strength, values in scores.items()}
    if "movielens" in args.datasets and root is None:
        sections += ["MovieLens-100K: skipped (no `--root` and no local copy).", ""]

    report, _ = publish(
        "Adversarial tasks: gradient reversal against a user attribute (Ganin & Lempitsky, ICML 2015)", device,
        [
            (f"funnel: `load_dataset('synthetic-funnel', seed=s, seq_len={SEQ_LEN}, **{funnel_world})` "
             "(bot_fraction raised from 0.05 to 0.2 so the held-out users hold enough bots for a stable AUC); "
             f"MovieLens-100K: `load_dataset('movielens-100k', seed=s, seq_len={SEQ_LEN}, "
             "drop_features=('gender',))`; the attribute is a model input in neither (inputs: the user's "
             "other fields, the item's fields, the behaviour sequence)"),
            ("model: MMoE " + ", ".join(f"{k}={v}" for k, v in MODEL_KWARGS.items())
             + "; Adam lr 3e-3, equal weighting, no early stopping; the adversary: an MLP (32) head on the "
             "encoder output, every fifth user held out of its training"),
            ("head AUC: the adversary head on the held-out users' test rows; probe AUCs: a fresh "
             "logistic regression / MLP (64) fitted on the frozen encoder outputs of at most 10,000 training "
             "rows of the other users, scored on the same held-out rows (`Trainer.probe_adversary`); better "
             "probe: the higher of the two, seed by seed"),
            (f"λ ∈ {{{', '.join(f'{s:g}' for s in lambdas)}}}; mean ± std over {len(seeds)} seeds "
             f"(data, split and model); every λ of a seed shares its data, so λ > 0 is compared with λ = 0 paired "
             f"by seed; chance = AUC {CHANCE:g}"),
            VERDICT_LINE,
        ],
        [f"**Paper's claim.** {CLAIM}.", "", f"**Caution from the literature.** {CAUTION}.", "", *sections],
        name="adversarial", quick=args.quick, output=args.output, seeds=seeds, readme=readme[:-1], data=data,
    )
    return report


if __name__ == "__main__":
    main()
