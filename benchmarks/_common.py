"""Helpers shared by the benchmark and reproduction scripts: device names, headers, results files."""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # run from a checkout without installing

RESULTS = ROOT / "benchmarks" / "results"
SHARED_DATA = ROOT.parent / "shared" / "data"  # local copies of real data, if any

NOISE_NOTE = (
    "Measured on a small shared machine: other processes ran at the same time, so timings "
    "are noisy (a rerun can differ by tens of per cent); ratios measured in interleaved "
    "rounds are more stable than absolute numbers."
)


def device_description(device: torch.device) -> str:
    """E.g. ``NVIDIA H100 80GB HBM3`` or ``CPU (x86_64, 2 cores, torch threads 2)``."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({platform.machine()}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()})"


def header(title: str, device: torch.device, lines: Sequence[str] = ()) -> list[str]:
    """The first lines of every results file: title, device, torch version and date."""
    return [
        f"### {title}",
        "",
        f"- device: {device_description(device)}",
        f"- torch {torch.__version__}, Python {platform.python_version()}, "
        f"{datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        *[f"- {line}" for line in lines],
        "",
    ]


def write_report(report: str, name: str, device: torch.device, quick: bool, output: Path | None) -> Path | None:
    """Print the report; write it to ``output`` (default ``results/<name>-<device>.md``, not with
    --quick) and return where it went (None: printed only)."""
    print(report)
    if output is None and not quick:
        output = RESULTS / f"{name}-{device.type}.md"
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(report, encoding="utf-8")
        print(f"written to {output}")
    return output


def mean_std(values: Sequence[float], digits: int = 4) -> str:
    """``"0.9312 ± 0.0021"`` (sample standard deviation; ± 0 for one value)."""
    values = [float(v) for v in values]
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.{digits}f} ± {std:.{digits}f}"


def reproduction_parser(description: str, quick_help: str = "tiny sizes; print only") -> argparse.ArgumentParser:
    """The options every reproduction script shares: --quick, --seeds, --device, --threads, --output."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help=quick_help)
    parser.add_argument("--seeds", type=int, default=None, help="seeds (default 5; 2 with --quick)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--output", type=Path, default=None)
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
