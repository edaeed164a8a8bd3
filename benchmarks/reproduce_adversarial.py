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

import statistics
import time
from pathlib import Path

from _common import SHARED_DATA, fit_and_test, header, mean_std, parse_reproduction_args, reproduction_parser, write_report  # noqa: I001
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
COLUMNS = ("valid macro AUC", "test macro AUC", "test rating RMSE", "head AUC", "linear probe AUC", "MLP probe AUC")


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


def table(scores: dict[float, dict[str, list[float]]]) -> list[str]:
    lines = ["| λ | " + " | ".join(COLUMNS) + " |", "|---:|" + "---:|" * len(COLUMNS)]
    for strength, values in scores.items():
        lines.append(f"| {strength:g} | " + " | ".join(mean_std(values[c]) for c in COLUMNS) + " |")
    return lines


def verdict(name: str, attribute: str, scores: dict[float, dict[str, list[float]]]) -> str:
    """The generated "Measured." sentences of one data set (recoverable: best probe AUC > 0.55)."""
    mean = {s: {c: statistics.fmean(v[c]) for c in COLUMNS} for s, v in scores.items()}
    strengths = sorted(mean)
    base, strongest = strengths[0], strengths[-1]
    probe = {s: max(m["linear probe AUC"], m["MLP probe AUC"]) for s, m in mean.items()}
    text = (
        f"{name} (`{attribute}`): at λ = {base:g} the better probe recovers the attribute of held-out users "
        f"with AUC {probe[base]:.3f} (the head: {mean[base]['head AUC']:.3f}); at λ = {strongest:g} with "
        f"{probe[strongest]:.3f} (the head: {mean[strongest]['head AUC']:.3f}). "
    )
    if probe[base] <= 0.55:
        text += "Even without reversal the probes barely recover it: at this size there is little to remove. "
    else:
        hidden_from = [s for i, s in enumerate(strengths) if all(probe[t] <= 0.55 for t in strengths[i:])]
        if hidden_from:
            text += f"The attribute becomes **unrecoverable** (better probe AUC ≤ 0.55) from λ = {hidden_from[0]:g} on. "
        else:
            text += "The attribute is **not** made unrecoverable at any λ tried: a post-hoc probe still finds it. "
    below = [s for s in strengths if mean[s]["head AUC"] < 0.45]
    if below:
        text += (f"The head's own AUC falls below 0.45 at λ ∈ {{{', '.join(f'{s:g}' for s in below)}}}: the "
                 "encoder flips the signal faster than the head follows, so the head's AUC is no measure of "
                 "what is recoverable there. ")
    text += (f"Cost to the main tasks: test macro AUC {mean_std(scores[strongest]['test macro AUC'])} at "
             f"λ = {strongest:g} vs {mean_std(scores[base]['test macro AUC'])} at λ = {base:g} "
             f"({mean[strongest]['test macro AUC'] - mean[base]['test macro AUC']:+.4f}); test rating RMSE "
             f"{mean_std(scores[strongest]['test rating RMSE'])} vs {mean_std(scores[base]['test rating RMSE'])}.")
    return text


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

    sections = []
    for name, (attribute, load, epochs, batch_size) in settings.items():
        scores: dict[float, dict[str, list[float]]] = {s: {c: [] for c in COLUMNS} for s in lambdas}
        for seed in seeds:
            data = load(seed)
            for strength in lambdas:
                started = time.perf_counter()
                row = measure(data, attribute, strength, seed, epochs=epochs, batch_size=batch_size,
                              device=args.device)
                for column, value in row.items():
                    scores[strength][column].append(value)
                print(f"{name} seed {seed} λ={strength:g} ({time.perf_counter() - started:.0f} s): "
                      + ", ".join(f"{k} {v:.4f}" for k, v in row.items()), flush=True)
        sections += [
            f"#### {name}: adversary `{attribute}`, {epochs} epoch(s), batch {batch_size}",
            "",
            *table(scores),
            "",
            f"**Measured.** {verdict(name, attribute, scores)}",
            "",
        ]
    if "movielens" in args.datasets and root is None:
        sections += ["MovieLens-100K: skipped (no `--root` and no local copy).", ""]

    report = "\n".join(
        header(
            "Adversarial tasks: gradient reversal against a user attribute (Ganin & Lempitsky, ICML 2015)",
            device,
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
                 "rows of the other users, scored on the same held-out rows (`Trainer.probe_adversary`)"),
                (f"λ ∈ {{{', '.join(f'{s:g}' for s in lambdas)}}}; mean ± std over {len(seeds)} seeds "
                 "(data, split and model)"),
            ],
        )
        + [f"**Paper's claim.** {CLAIM}.", "", f"**Caution from the literature.** {CAUTION}.", ""]
        + sections
    ) + "\n"
    write_report(report, "adversarial", device, args.quick, args.output)
    return report


if __name__ == "__main__":
    main()
