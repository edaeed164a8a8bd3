"""Small helpers the notebooks share: where a run writes, how a check is printed, the environment.

Every notebook in ``notebooks/`` ends by recording its key numbers (largest deviation from a
reference, final metrics) with :func:`record_results`; the test suite runs the notebook with
papermill and asserts on that JSON file, so a notebook is checked on what it computed, not
only on "it ran". The run folder is ``$MTLKIT_RUN_DIR`` when set (the tests set it to a
temporary folder) and ``runs/notebooks/`` below the working directory otherwise.
"""

from __future__ import annotations

import math
import os
import platform
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from mtlkit.checks import check_number, check_str
from mtlkit.utils import resolve_device, to_jsonable, write_json

__all__ = ["environment_report", "in_colab", "print_check", "record_results", "run_dir"]

RUN_DIR_ENV = "MTLKIT_RUN_DIR"
DEFAULT_RUN_DIR = Path("runs") / "notebooks"


def run_dir() -> Path:
    """The folder a notebook writes into (created when missing): ``$MTLKIT_RUN_DIR`` or ``runs/notebooks``."""
    path = Path(os.environ.get(RUN_DIR_ENV) or DEFAULT_RUN_DIR)
    path.mkdir(parents=True, exist_ok=True)
    return path


def record_results(name: str, results: Mapping[str, Any]) -> None:
    """Write ``results`` as ``<run_dir>/<name>.json`` and print them with the file's path.

    0-dim tensors and numpy scalars become plain Python numbers, so a notebook can pass what
    it computed directly; a NaN or inf is written as ``null`` (JSON has no NaN), which every
    numeric check in the tests rejects. The test of notebook ``name`` reads this file.
    """
    stem = "a plain file stem such as '01_attention'"
    if Path(check_str("name", name, what=stem)).name != name:
        raise ValueError(f"name must be {stem}, got {name!r}")
    if not isinstance(results, Mapping):
        raise TypeError(f"results must be a mapping of names to values, got {results!r}")
    plain = to_jsonable(dict(results))
    path = run_dir() / f"{name}.json"
    write_json(path, plain)
    width = max((len(k) for k in plain), default=0)
    for key, value in plain.items():
        shown = f"{value:.3g}" if isinstance(value, float) else repr(value)
        print(f"{key:<{width}}  {shown}")
    print(f"-> {path}")


def print_check(name: str, deviation: float | torch.Tensor, tolerance: float) -> None:
    """Print ``name: max deviation ... (tolerance ...) OK`` or ``FAILED``.

    The deviation is a non-negative error such as ``(ours - reference).abs().max()``. A
    notebook keeps running when a check fails (so the reader sees every number); the test
    fails on the recorded value instead. Returns None, so a cell ending with a check shows
    only the printed line.
    """
    tolerance = check_number("tolerance", tolerance, low=0)
    if isinstance(deviation, torch.Tensor):
        deviation = deviation.detach().cpu().item()
    deviation = float(deviation)
    ok = math.isfinite(deviation) and deviation <= tolerance
    print(f"{name}: max deviation {deviation:.2e} (tolerance {tolerance:.0e}) {'OK' if ok else 'FAILED'}")


def in_colab() -> bool:
    """True when running inside Google Colab."""
    return "google.colab" in sys.modules


def environment_report(device: str | torch.device = "auto") -> dict[str, Any]:
    """The facts a bug report or a timing needs: versions, hardware, where this runs, chosen device."""
    import numpy

    chosen = resolve_device(device)
    report: dict[str, Any] = {
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "platform": platform.platform(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "cpu_count": os.cpu_count() or 1,
        "torch_threads": torch.get_num_threads(),
        "cuda_available": torch.cuda.is_available(),
        "cuda_version": torch.version.cuda,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "gpu_count": torch.cuda.device_count(),
        "in_colab": in_colab(),
        "in_binder": any(k in os.environ for k in ("BINDER_LAUNCH_HOST", "BINDER_REPO_URL", "BINDER_REQUEST")),
        "device": str(chosen),
    }
    try:
        import mtlkit

        report["mtlkit"] = mtlkit.__version__
    except ImportError:  # pragma: no cover - the notebooks install it first
        report["mtlkit"] = None
    return report
