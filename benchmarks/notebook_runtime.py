"""Execution time of each notebook: quick parameters on the CPU, full parameters on a GPU.

Every notebook in ``notebooks/`` runs top to bottom with papermill in a fresh ``python3``
kernel of this interpreter (a kernelspec written to a temporary ``JUPYTER_PATH``, so a
user-level kernel pointing at another Python is never picked), writing its outputs only
under a temporary ``MTLKIT_RUN_DIR``. The time includes the kernel start.

    python benchmarks/notebook_runtime.py                  # quick parameters, writes results/
    python benchmarks/notebook_runtime.py --full --device cuda   # full parameters on a GPU
    python benchmarks/notebook_runtime.py --quick          # smoke test: one notebook, prints only
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import torch

from _common import NOISE_NOTE, ROOT, publish  # noqa: I001
from mtlkit.book import execute_notebook, kernel_home

NOTEBOOK_DIR = ROOT / "notebooks"


def children_cpu_seconds() -> float:
    """User + system CPU time of this process's finished children (the notebook kernels)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(notebook: Path, parameters: dict, work: Path, timeout: int) -> tuple[float, float, str]:
    """Wall seconds and kernel CPU seconds to execute ``notebook``, and "ok" or the error's first line.

    The CPU seconds are those of the kernel process (a child of this one, counted once it has
    exited), so other work on a shared machine does not inflate them as it does the wall clock.
    """
    start, cpu_start = time.perf_counter(), children_cpu_seconds()
    try:
        execute_notebook(notebook, work / f"{notebook.stem}.executed.ipynb", run_dir=work / "run",
                         jupyter_path=kernel_home(work / "jupyter"), parameters=parameters, timeout=timeout)
        status = "ok"
    except Exception as err:  # noqa: BLE001  (report and go on with the next notebook)
        status = f"failed: {type(err).__name__}: {str(err).strip().splitlines()[0][:120] if str(err).strip() else ''}"
    return time.perf_counter() - start, children_cpu_seconds() - cpu_start, status


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only the first (or the named) notebook; print only")
    parser.add_argument("--full", action="store_true", help="full parameters (QUICK=False)")
    parser.add_argument("--device", default="cpu", help="the notebooks' DEVICE parameter with --full")
    parser.add_argument("--notebooks", nargs="+", default=None, help="names without .ipynb")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per cell")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)

    names = args.notebooks or sorted(p.stem for p in NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
    if args.quick and not args.notebooks:
        names = names[:1]
    parameters = {"QUICK": False, "DEVICE": args.device} if args.full else {}
    device = torch.device(args.device if args.full else "cpu")
    runs: dict[str, dict[str, float | str]] = {}
    for name in names:
        with tempfile.TemporaryDirectory(prefix="mtlkit-nb-") as work:
            seconds, cpu_seconds, status = run(NOTEBOOK_DIR / f"{name}.ipynb", parameters, Path(work), args.timeout)
        runs[name] = {"wall_seconds": seconds, "cpu_seconds": cpu_seconds, "status": status}
        print(f"{name}: {runs[name]}", flush=True)
    lines = ["| notebook | parameters | wall seconds | kernel CPU seconds | status |", "|---|---|---:|---:|---|"]
    lines += [f"| {name} | {'full' if args.full else 'quick'} | {r['wall_seconds']:.1f} | {r['cpu_seconds']:.1f} | "
              f"{r['status']} |" for name, r in runs.items()]
    total, total_cpu = (sum(r[key] for r in runs.values()) for key in ("wall_seconds", "cpu_seconds"))
    lines.append(f"| **total** | | **{total:.1f}** | **{total_cpu:.1f}** | |")
    report, _ = publish(
        "Notebook execution time (papermill, fresh kernel each)", device,
        [
            "parameters: " + (f"full (`QUICK=False, DEVICE={args.device!r}`)" if args.full
                              else "the notebooks' defaults (quick)"),
            f"torch threads in the kernels: torch's default ({torch.get_num_threads()} here); kernel CPU seconds "
            "add up every thread; the wall seconds include the kernel start",
            NOISE_NOTE,
        ],
        [*lines, "", *summary(runs)], name="notebook_runtime" + ("-full" if args.full else ""), quick=args.quick,
        output=args.output, readme=[*lines, "", *summary(runs)], data=runs,
    )
    return report


def summary(runs: dict[str, dict]) -> list[str]:
    """Which notebooks ran, the total kernel CPU time, and the share the slowest three take."""
    failed = [name for name, r in runs.items() if r["status"] != "ok"]
    total = sum(r["cpu_seconds"] for r in runs.values())
    slowest = sorted(runs, key=lambda name: -runs[name]["cpu_seconds"])[:3]
    share = sum(runs[name]["cpu_seconds"] for name in slowest) / total if total else float("nan")
    return [
        f"- {len(runs) - len(failed)} of {len(runs)} notebooks ran to the end"
        + (f"; failed: {', '.join(failed)}" if failed else "") + f"; {total:,.0f} kernel CPU-seconds in all, "
        f"of which {', '.join(slowest)} {'take' if len(slowest) > 1 else 'takes'} {share:.0%}."
    ]


if __name__ == "__main__":
    main()
