"""Helpers shared by the benchmark and reproduction scripts: device names, headers, results files."""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from mtlkit.stats import VERDICT_RULE, PairedComparison, paired_comparison  # noqa: E402
from mtlkit.utils import atomic_write_text  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
#: Libraries whose versions every results file records (a rerun elsewhere can be compared).
VERSIONED_PACKAGES = ("torch", "numpy", "pandas", "scikit-learn", "transformers")
_STARTED = (time.perf_counter(), time.process_time())  # this script's start: wall and CPU clocks
SHARED_DATA = ROOT.parent / "shared" / "data"  # local copies of real data, if any

NOISE_NOTE = (
    "Measured on a small shared machine: other processes ran at the same time, so timings "
    "are noisy (a rerun can differ by tens of per cent); ratios measured in interleaved "
    "rounds are more stable than absolute numbers."
)


def device_description(device: torch.device) -> str:
    """E.g. ``NVIDIA H100 80GB HBM3`` or ``CPU (x86_64, AVX2 kernels, 2 cores, torch threads 2)``.

    The vector kernels torch picked for this CPU (``torch.backends.cpu.get_cpu_capability``) are
    named because they change float rounding, and a trained model's metrics with it: the same
    commit and seeds give other numbers on a CPU with other kernels (``ATEN_CPU_CAPABILITY``)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return (f"CPU ({platform.machine()}, {torch.backends.cpu.get_cpu_capability()} kernels, {os.cpu_count()} cores, "
            f"torch threads {torch.get_num_threads()})")


def _git(*args: str) -> str:
    """A git command's output in the checkout ("" where git or the repository is absent)."""
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def provenance(device: torch.device, seeds: Sequence[int] | None = None) -> dict[str, Any]:
    """What produced a result: commit (and whether the tree had uncommitted changes), library
    versions, threads, device, seeds, the command, and the run's wall and CPU time so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # worker processes of a pool, once joined
    return {
        "commit": _git("rev-parse", "--short=12", "HEAD") or "unknown",
        # Uncommitted changes to the code; the results folder is output, and a batch of scripts
        # rewrites it run after run, so it never makes a later run "dirty".
        "dirty": bool(_git("status", "--porcelain", "--untracked-files=no", "--", ".",
                           f":(exclude){RESULTS.relative_to(ROOT).as_posix()}")),
        "versions": {"python": platform.python_version(),
                     **{name: _version(name) for name in VERSIONED_PACKAGES}},
        "threads": torch.get_num_threads(),
        "device": device_description(device),
        "seeds": None if seeds is None else [int(s) for s in seeds],
        "command": command_line(),
        "wall_seconds": round(time.perf_counter() - _STARTED[0], 1),
        "cpu_seconds": round(time.process_time() - _STARTED[1] + usage.ru_utime + usage.ru_stime, 1),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


#: How each provenance line of a results file's header begins (:func:`provenance_lines`).
PROVENANCE_PREFIXES = ("device: ", "commit ", "seeds: ", "command: ", "run time: ")
#: Every line that carries a wall-clock measurement says so with these words (:func:`timing_line`),
#: so a repeated run can be compared without them (:func:`stable_lines`).
TIMING = "seconds per run"


def provenance_lines(record: dict[str, Any]) -> list[str]:
    """The provenance as the bullet lines of a results file's header."""
    versions = ", ".join(f"{name} {version}" for name, version in record["versions"].items())
    return [
        f"device: {record['device']}",
        f"commit {record['commit']}{' (with uncommitted changes)' if record['dirty'] else ''}; {versions}",
        *([f"seeds: {record['seeds']}"] if record["seeds"] is not None else []),
        f"command: {record['command']}",
        f"run time: {record['wall_seconds']:,.0f} s wall, {record['cpu_seconds']:,.0f} s CPU; {record['date']}",
    ]


def timing_line(seconds: dict[str, Sequence[float]], note: str = "wall clock") -> str:
    """``"seconds per run (wall clock, …): a 5.2, b 7.9"``: the mean over seeds of each label's
    run time. Timings go on such a line only, never into a table of results, because a rerun
    on a shared machine legitimately changes them (:func:`stable_lines` drops the line)."""
    return (f"{TIMING} ({note}; a shared machine, so noisy): "
            + ", ".join(f"{label} {statistics.fmean(values):.1f}" for label, values in seconds.items()))


def stable_lines(output: str) -> list[str]:
    """The lines of a script's printed report that a repeated ``--quick`` run must reproduce exactly.

    The report starts at its ``### `` title (progress lines before it are dropped); the
    provenance lines (:data:`PROVENANCE_PREFIXES`: commit, run time, …) and every line with a
    wall-clock measurement (:data:`TIMING`) legitimately differ and are left out.
    """
    lines = output.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("### ")), len(lines))
    return [line for line in lines[start:]
            if not line.removeprefix("- ").startswith(PROVENANCE_PREFIXES) and TIMING not in line]


def header(title: str, device: torch.device, lines: Sequence[str] = (), *,
           seeds: Sequence[int] | None = None) -> list[str]:
    """The first lines of every results file: the title, the script's own setup ``lines`` and
    the provenance (:func:`provenance`), measured when the header is written (at the end)."""
    return [f"### {title}", "", *[f"- {line}" for line in [*lines, *provenance_lines(provenance(device, seeds))]], ""]


def write_report(report: str, name: str, device: torch.device, quick: bool, output: Path | None, *,
                 seeds: Sequence[int] | None = None, readme: Sequence[str] | None = None,
                 data: Any = None) -> Path | None:
    """Print the report; write it to ``output`` (default ``results/<name>-<device>.md``, not with
    --quick) and return where it went (None: printed only).

    Beside the Markdown, ``<name>-<device>.json`` holds the provenance, ``readme`` (the lines
    ``render_results.py`` copies into the README's Results section — tables and verdicts the
    script computed) and ``data`` (the raw per-seed numbers).
    """
    print(report)
    if output is None and not quick:
        output = RESULTS / f"{name}-{device.type}.md"
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        # The sidecar's provenance is taken before either file is written, as the header's was.
        sidecar = {"provenance": provenance(device, seeds), "readme": list(readme or []), "data": data}
        atomic_write_text(output, report)
        atomic_write_text(output.with_suffix(".json"), json.dumps(sidecar, indent=1, ensure_ascii=False) + "\n")
        print(f"written to {output}")
    return output


def publish(title: str, device: torch.device, setup: Sequence[str], body: Sequence[str], *, name: str,
            quick: bool, output: Path | None, seeds: Sequence[int] | None = None,
            readme: Sequence[str] | None = None, data: Any = None) -> tuple[str, Path | None]:
    """The end of every script: the report (:func:`header` with the ``setup`` lines, then ``body``),
    printed and written by :func:`write_report`. Returns ``(report, where it went or None)``."""
    report = "\n".join([*header(title, device, setup, seeds=seeds), *body]) + "\n"
    return report, write_report(report, name, device, quick, output, seeds=seeds, readme=readme, data=data)


# --------------------------------------------------------------------------- verdicts
#: The header line every script with paired comparisons prints: the rule and how a cell reads.
VERDICT_LINE = (f"verdicts: {VERDICT_RULE} (mtlkit.stats); a paired cell reads mean difference ± its standard "
                "error (seeds on which the first was better / seeds) verdict")


def compare(a: Sequence[float], b: Sequence[float], *, higher_is_better: bool = True) -> PairedComparison | None:
    """:func:`mtlkit.stats.paired_comparison` of ``a`` with ``b`` (one value per seed, the same
    seeds), over the seeds where both are defined (a NaN is an undefined metric, e.g. an AUC
    of one class); None when no seed has both."""
    pairs = [(float(x), float(y)) for x, y in zip(a, b, strict=True) if not (math.isnan(x) or math.isnan(y))]
    if not pairs:
        return None
    return paired_comparison([x for x, _ in pairs], [y for _, y in pairs], higher_is_better=higher_is_better)


#: The verdict's words for a value against a reference (a true value, chance, a deterministic baseline).
ABOVE_BELOW = ("above", "below", "within noise of")


def paired_numbers(comparison: PairedComparison | None, digits: int = 4) -> str:
    """``"+0.0087 ± 0.0037 (4/5)"``: the mean difference ± its standard error and (seeds on which A
    was better / seeds); ``"n/a"`` without a comparison."""
    if comparison is None:
        return "n/a"
    error = "n/a" if math.isnan(comparison.standard_error) else f"{comparison.standard_error:.{digits}f}"
    return f"{comparison.difference:+.{digits}f} ± {error} ({comparison.wins}/{comparison.n})"


def paired_cell(comparison: PairedComparison | None, digits: int = 4, helps: str = "helps", hurts: str = "hurts",
                noise: str = "within noise") -> str:
    """``"+0.0087 ± 0.0037 (4/5) helps"``: :func:`paired_numbers` and the verdict in the words of
    :func:`verdict_word`."""
    if comparison is None:
        return "n/a"
    return f"{paired_numbers(comparison, digits)} {verdict_word(comparison, helps, hurts, noise)}"


def verdict_word(comparison: PairedComparison | None, helps: str, hurts: str, noise: str = "within noise") -> str:
    """The verdict in the words of the comparison at hand, e.g. ``verdict_word(c, "above", "below")``
    for a comparison with a reference value rather than of two methods; "undefined" without one."""
    if comparison is None:
        return "undefined"
    return {"helps": helps, "hurts": hurts}.get(comparison.verdict, noise)


def paper_agreement(comparison: PairedComparison | None, expected: str = "helps") -> str:
    """Whether a paired comparison agrees with a paper that finds the difference ``expected``
    ("helps" or "hurts", in the comparison's own direction)."""
    if comparison is not None and comparison.verdict == expected:
        return "as the paper finds"
    if comparison is None or comparison.verdict == "within noise":
        return "not resolved (within noise)"
    return "the opposite of the paper's finding"


def agreement_summary(comparisons: dict[str, PairedComparison | None], expected: str = "helps") -> str:
    """``"as the paper finds on income; not resolved (within noise) on marital"``: :func:`paper_agreement`
    of each labelled comparison, grouped."""
    groups: dict[str, list[str]] = {}
    for label, comparison in comparisons.items():
        groups.setdefault(paper_agreement(comparison, expected), []).append(label)
    return "; ".join(f"{text} on {', '.join(labels)}" for text, labels in groups.items())


def mean_std(values: Sequence[float], digits: int = 4) -> str:
    """``"0.9312 ± 0.0021"`` (sample standard deviation; ± 0 for one value)."""
    values = [float(v) for v in values]
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.{digits}f} ± {std:.{digits}f}"


def benchmark_parser(description: str, quick_help: str = "tiny sizes; print only",
                     device: str = "cpu") -> argparse.ArgumentParser:
    """The options every script shares: --quick, --device, --threads, --output."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help=quick_help)
    parser.add_argument("--device", default=device)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: 1 with --quick, else torch's default)")
    parser.add_argument("--output", type=Path, default=None,
                        help="the Markdown file to write (default benchmarks/results/<name>-<device>.md)")
    return parser


def reproduction_parser(description: str, quick_help: str = "tiny sizes; print only") -> argparse.ArgumentParser:
    """:func:`benchmark_parser` and --seeds: the options every reproduction script shares."""
    parser = benchmark_parser(description, quick_help)
    parser.add_argument("--seeds", type=int, default=None, help="seeds (default 5; 2 with --quick)")
    return parser


def parse_reproduction_args(
    parser: argparse.ArgumentParser, argv: Sequence[str] | None
) -> tuple[argparse.Namespace, torch.device, range]:
    """Parse, set the thread count, and return (args, device, seeds)."""
    args = parser.parse_args(argv)
    set_threads(args.threads, args.quick)
    return args, torch.device(args.device), range(args.seeds or (2 if args.quick else 5))


def set_threads(threads: int | None, quick: bool) -> None:
    """``threads`` torch CPU threads (1 with --quick unless given)."""
    threads = threads if threads is not None else (1 if quick else None)
    if threads is not None:
        torch.set_num_threads(threads)


def fit_and_test(model_name: str, data, *, seed: int, model_kwargs: dict | None = None,
                 device: str = "cpu", **train_kwargs):
    """Build ``model_name`` for ``data``, train it with :class:`~mtlkit.training.Trainer`.

    Returns ``(trainer, metrics)`` where ``metrics = trainer.evaluate("test")`` (after
    restoring the best validation epoch when ``early_stopping`` is given).
    """
    from mtlkit.models import build_model
    from mtlkit.training import Trainer, TrainConfig

    torch.manual_seed(seed)
    model = build_model(model_name, data.schema, **(model_kwargs or {}))
    config = TrainConfig(seed=seed, device=device, quiet=True, **train_kwargs)
    trainer = Trainer(model, data, config)
    trainer.fit()
    return trainer, trainer.evaluate("test")


def n_parameters(module: torch.nn.Module) -> int:
    """The number of parameters of ``module`` (trainable or not)."""
    return sum(p.numel() for p in module.parameters())


def command_line() -> str:
    """The command that ran this script, for the results file's "regenerate" line."""
    args, skip = [], False
    for arg in sys.argv[1:]:
        if skip or arg == "--output":  # where the file went is not part of the result
            skip = not skip
            continue
        args.append(arg)
    args = " ".join(args)
    return f"`python benchmarks/{Path(sys.argv[0]).name}{' ' + args if args else ''}`"
