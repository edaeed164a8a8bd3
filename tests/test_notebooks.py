"""The learning path: every ``notebooks/NN_*.ipynb`` is checked as source and executed.

Two kinds of test:

1. Fast checks of the committed source (no kernel): no outputs or execution counts, exactly
   one cell tagged ``parameters`` and it is the first code cell, an H1 title, a Colab badge
   pointing at this notebook, the Colab install cell naming the same repository and branch
   as the badge, the house-style sections, and the last code cell recording the results.
2. Execution with papermill (marker ``notebook``): each notebook runs top to bottom in a fresh
   ``python3`` kernel of this interpreter with its quick parameters, writing only under a
   temporary run folder (``MTLKIT_RUN_DIR``); the test then loads the JSON the notebook
   recorded with ``mtlkit.notebook.record_results`` and checks it against ``EXPECTATIONS``.

3. The GPU tier (markers ``gpu``, ``slow``): the same run with the full parameters
   (``QUICK=False, DEVICE="cuda"``), skipped where CUDA is absent.

Adding a notebook means adding one ``EXPECTATIONS`` entry: a notebook without one fails.
A real-data tier (marker ``realdata``) can reuse ``run_notebook`` with its own parameters
and expectations; each executed copy stays in the test's ``tmp_path`` for inspection.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import nbformat
import pytest
import torch

from mtlkit.book import kernel_home

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
NAMES = [path.stem for path in NOTEBOOKS]

# The Colab badge and the install cell must name this repository and branch: the one source is
# [tool.mtlkit] in pyproject.toml (scripts/launch_links.py writes them into every notebook).
LAUNCH = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["mtlkit"]
REPO_SLUG = LAUNCH["repository"]
BRANCH = LAUNCH["branch"]
BADGE_RE = re.compile(
    r"https://colab\.research\.google\.com/github/(?P<repo>[\w.-]+/[\w.-]+)/blob/(?P<branch>[\w./-]+?)"
    r"/notebooks/(?P<file>[\w.-]+\.ipynb)"
)
# The GPU tier runs every notebook with its full parameters on CUDA.
GPU_PARAMETERS = {"QUICK": False, "DEVICE": "cuda"}


# --------------------------------------------------------------------------- expectations
class Check:
    """A named predicate on one recorded value, so a failure says what was expected."""

    def __init__(self, description: str, predicate: Callable[[Any], bool]) -> None:
        self.description = description
        self.predicate = predicate

    def __call__(self, value: Any) -> bool:
        try:
            return bool(self.predicate(value))
        except (TypeError, ValueError):
            return False


def below(tolerance: float) -> Check:
    """A finite number <= tolerance (deviations)."""
    return Check(f"finite and <= {tolerance:g}", lambda v: math.isfinite(v) and v <= tolerance)


def between(low: float, high: float) -> Check:
    return Check(f"in [{low:g}, {high:g}]", lambda v: math.isfinite(v) and low <= v <= high)


def equals(expected: Any) -> Check:
    return Check(f"== {expected!r}", lambda v: v == expected)


def at_least(minimum: float) -> Check:
    return Check(f">= {minimum:g}", lambda v: v >= minimum)


def is_true() -> Check:
    return Check("True", lambda v: v is True)


# One entry per notebook: recorded key -> check. Keys are what the notebook's last code cell
# passes to mtlkit.notebook.record_results. Tolerances: float32 unless the notebook says float64.
EXPECTATIONS: dict[str, dict[str, Check]] = {
    "00_tour": {
        "python_executable": equals(sys.executable),  # the "python3" kernel is this interpreter
        "torch": equals(torch.__version__),
        "device": Check("a torch device name", lambda v: v.split(":")[0] in {"cpu", "cuda", "mps"}),
        "matmul_max_deviation": below(1e-3),
        "notebooks_with_parameters": equals(len(NOTEBOOKS)),
        "n_modules": at_least(5),
    },
    "01_attention": {
        "variance_ratio_max_deviation": below(0.1),  # Var(q·k)/d -> 1
        "scaled_variance_max_deviation": below(0.1),  # Var(q·k/sqrt(d)) -> 1
        "saturation_unscaled_max_weight": between(0.8, 1.0),
        "saturation_scaled_max_weight": between(0.0, 0.6),
        "naive_softmax_overflows": is_true(),
        "stable_softmax_max_deviation": below(1e-6),
        "from_scratch_vs_torch_max_deviation": below(1e-5),
        "mtlkit_vs_torch_max_deviation": below(1e-5),
        "mask_max_deviation": below(1e-5),
        "fully_masked_row_max_abs": equals(0.0),
        "mha_inline_vs_mtlkit_max_deviation": below(1e-5),
        "mha_vs_torch_max_deviation": below(1e-5),
        "mha_weights_vs_torch_max_deviation": below(1e-5),
        "fused_vs_scratch_max_deviation": below(1e-5),
    },
    "02_positional_encoding": {
        "permutation_equivariance_max_deviation": below(1e-5),
        "history_bag_invariance_max_deviation": below(1e-5),
        "permutation_with_positions_change": at_least(1e-2),  # positions make order visible
        "sinusoidal_closed_form_max_deviation": below(1e-6),
        "rotation_vs_blocks_max_deviation": below(1e-10),  # float64
        "rotation_max_deviation": below(1e-9),  # PE(p + k) = M_k PE(p), float64
        "rotation_pairs_checked": at_least(1000),
        "rotation_group_max_deviation": below(1e-10),
        "dot_product_offset_max_deviation": below(1e-9),
        "learned_vs_table_max_deviation": below(1e-7),
        "learned_too_long_raises": is_true(),
        "rope_vs_complex_max_deviation": below(1e-5),
        "rope_norm_max_deviation": below(1e-4),
        "rope_vs_relative_rotation_max_deviation": below(1e-5),
        "rope_offset_max_deviation": below(1e-3),
    },
    "04_losses_and_metrics": {
        "bce_vs_torch_max_deviation": below(1e-6),  # the loss deviations are relative
        "bce_vs_likelihood_max_deviation": below(1e-5),
        "bce_gradient_max_deviation": below(1e-7),
        "naive_bce_overflows": is_true(),
        "mse_vs_torch_max_deviation": below(1e-6),
        "mse_vs_gaussian_nll_max_deviation": below(1e-5),
        "masked_bce_max_deviation": below(1e-6),
        "masked_mse_max_deviation": below(1e-6),
        "masked_placeholder_max_deviation": below(1e-7),
        "masked_gradient_unobserved_max_abs": equals(0.0),
        "empty_mask_loss": equals(0.0),
        "masked_cvr": between(0.1, 0.3),  # the true CVR is 0.2; the unmasked estimate is ~0.03
        "naive_cvr": between(0.0, 0.08),
        "mtl_gradient_max_deviation": below(1e-12),  # float64
        "mtl_head_gradient_max_deviation": below(1e-12),
        "auc_pairs_vs_mtlkit_max_deviation": below(1e-12),
        "auc_vs_sklearn_max_deviation": below(1e-12),
        "log_loss_vs_sklearn_max_deviation": below(1e-9),
        "log_loss_vs_bce_max_deviation": below(1e-9),
        "classification_vs_sklearn_max_deviation": below(1e-12),
        "roc_curve_area_vs_auc_max_deviation": below(1e-12),  # trapezoids under the ROC curve = the AUC
        "pr_curve_vs_sklearn_max_deviation": below(1e-12),
        "rmse_mae_vs_sklearn_max_deviation": below(1e-12),
        "gauc_vs_reference_max_deviation": below(1e-12),
        "gauc_user_shift_max_deviation": below(1e-12),
        "ranking_vs_reference_max_deviation": below(1e-12),
        "ndcg_vs_sklearn_max_deviation": below(1e-12),
    },
    "03_sequence_transformer": {
        "layer_norm_vs_torch_max_deviation": below(1e-5),
        "gelu_vs_torch_max_deviation": below(1e-6),
        "pre_ln_zeroed_identity_max_deviation": equals(0.0),  # x + 0 is exactly x
        "post_ln_zeroed_identity_max_deviation": at_least(0.1),  # post-LN still normalises
        "layer_by_hand_vs_mtlkit_max_deviation": below(1e-5),
        "parameter_count_deviation": equals(0),
        "layer_vs_torch_max_deviation": below(1e-5),
        "encoder_vs_torch_max_deviation": below(1e-5),
        "encoder_causal_vs_torch_max_deviation": below(1e-5),
        "bst_by_hand_max_deviation": below(1e-5),
        "padding_invariance_max_deviation": below(1e-6),
        "padded_key_max_weight": equals(0.0),
        "without_mask_change": at_least(1e-2),  # the control: without the mask, padding leaks in
        "attention_row_sum_max_deviation": below(1e-5),
        "fused_vs_weights_path_max_deviation": below(1e-5),
        "widget_default_draws": equals(1),
    },
    "05_task_balancing": {  # float64 toy with the default IMBALANCE = 10
        "gradient_vs_closed_form_max_deviation": below(1e-12),
        "cosine_vs_closed_form_max_deviation": below(1e-12),
        "thales_mismatches": equals(0),  # conflict exactly inside the circle with diameter [a, b]
        "segment_cosine_max_deviation": below(1e-12),
        "front_closed_form_max_deviation": below(1e-12),
        "off_segment_dominated_share": equals(1.0),
        "distance_max_deviation": below(1e-12),
        "weighted_sum_t_max_deviation": below(1e-6),
        "weighted_optimum_max_deviation": below(1e-12),
        "n_strategies": at_least(9),  # every registered strategy ran
        "max_distance_to_front": below(1e-3),
        "t/equal": between(10 / 11 - 1e-6, 10 / 11 + 1e-6),  # t* = kappa / (1 + kappa)
        "t/static": between(0.5 - 1e-6, 0.5 + 1e-6),  # inverse-scale weights land in the middle
        "t/cagrad": between(10 / 11 - 1e-3, 10 / 11 + 1e-3),  # converges to the mean-loss optimum
        "t/mgda": between(0.0, 0.25),  # nearer a than the start's projection (t = 0.25)
        "mgda_closed_form_max_deviation": below(1e-12),
        "pcgrad_orthogonality_max_deviation": below(1e-12),
        "pcgrad_closed_form_max_deviation": below(1e-12),
        "surgery_update_on_segment_max_abs": below(1e-12),
        "cagrad_c0_vs_equal_max_deviation": below(1e-12),
        "cagrad_update_at_equal_optimum_max_abs": below(1e-9),
        "widget_default_draws": equals(1),
    },
    "06_data": {
        "structure_violations": equals(0),
        "ctcvr_identity_max_deviation": below(1e-15),
        "ctr_z_score": between(-4, 4),
        "ctcvr_z_score": between(-4, 4),
        "cvr_z_score": between(-4, 4),
        "selection_bias": at_least(0.05),  # CVR among clicks over-estimates the entire space
        "selection_bias_independent": between(-0.03, 0.03),
        "covariance_identity_max_deviation": below(1e-12),
        "label_mask_violations": equals(0),
        "load_dataset_vs_builder_max_deviation": equals(0.0),
        "cold_rows_train": equals(0),
        "cold_share_test": between(0.05, 0.6),
        "cold_item_index_max": equals(0),  # cold items are OOV (index 0)
        "negatives_per_positive": between(3.9, 4.0),  # N_NEGATIVES = 4
        "negative_sampling_violations": equals(0),
        "history_items_checked": at_least(1000),
        "history_mismatches": equals(0),
        "history_leak_violations": equals(0),
        "target_last_in_history_share": between(0.0, 0.2),
        "leaky_target_last_in_history_share": at_least(0.95),
        "temporal_order_ok": is_true(),
        "leave_last_out_max_test_positives_per_user": equals(1),
        "leave_last_out_users_tested_minus_eligible": equals(0),
        "random_split_future_share": at_least(0.3),
        "embedding_norm_max_deviation": below(1e-5),
        "embedding_vs_reference_max_deviation": below(1e-5),
        "embedding_cache_identical": is_true(),
        "nearest_centroid_accuracy": at_least(0.6),
        "own_log_tasks": equals(4),  # section 10: a hand-written feed, four declared tasks
        "own_log_rows": equals(12),
        "own_log_violations": equals(0),
        "own_log_error_lines": equals(1),
        "own_log_error_names_the_line": is_true(),
    },
    "07_training": {
        "n_models": equals(5),
        "true_ctcvr_identity_max_deviation": below(1e-6),  # the generator's p_ctcvr = p_click * p_cvr
        "oracle_click_auc": between(0.7, 1.0),  # the true probabilities (hidden intent included)
        # sanity bounds only: the quick run trains 2 epochs, too short to rank the models
        **{f"{model}_{task}_auc": between(0.5, 1.0) for model in ("single", "shared-bottom", "mmoe", "ple", "esmm")
           for task in ("click", "purchase")},
        **{f"{model}_rating_rmse": between(0.5, 1.5) for model in ("single", "shared-bottom", "mmoe", "ple", "esmm")},
        "min_binary_logloss": between(0.1, 0.3),
        "max_binary_logloss": between(0.2, 0.5),  # below the click base-rate entropy H(0.18) = 0.47
        "evaluate_vs_sklearn_max_deviation": below(1e-5),
        "ctcvr_logit_identity_max_deviation": below(1e-12),  # float64
        "esmm_product_max_deviation": below(1e-5),
        "click_space_cvr": between(0.3, 0.5),  # selection bias: above the entire-space mean below
        "entire_space_true_cvr": between(0.15, 0.3),
        "esmm_pcvr_true_cvr_corr": between(0.0, 1.0),
        "max_ece_labels": between(0.0, 0.1),
        "max_ece_truth": between(0.0, 0.1),
        "calibration_vs_sklearn_max_deviation": below(1e-12),
        # section 8: the funnel log under a shop's own names, declared tasks
        "own_source": equals("funnel log"),
        "own_vs_recipes_max_deviation": equals(0.0),  # the declarations reproduce the recipes exactly
        "own_trainings": equals(13),  # five architectures, then MMoE with every other strategy
        "own_min_ctr_test_auc": between(0.3, 1.0),  # sanity only: one epoch of small models on 100 users
        "own_max_ctr_test_auc": between(0.5, 1.0),
    },
    "08_visualising": {
        "attention_layers": equals(2),
        "attention_heads": equals(2),
        "attention_row_sum_max_deviation": below(1e-5),
        "attention_padded_key_max_weight": equals(0.0),
        "attention_manual_max_deviation": below(1e-5),
        "gate_row_sum_max_deviation": below(1e-5),
        "gate_min_weight": between(0.0, 1.0),
        "gate_manual_max_deviation": below(1e-5),
        "loss_identity_max_deviation": below(1e-5),  # logged loss = sum_t w_t L_t (relative)
        "task_weight_max_change": at_least(1e-3),  # uncertainty weighting moved the weights
        "grad_cos_manual_max_deviation": below(1e-4),
        "grad_cos_min": between(-1.0, 1.0),
        "grad_cos_max": between(-1.0, 1.0),
        "n_steps_logged": at_least(10),
        "widgets_drawn": is_true(),
        "widgets_respond": is_true(),  # each control redraws its figure and restores the default
    },
    "09_task_relatedness": {
        "rho_max_deviation": below(0.03),  # corr(a.v, b.v) = rho, up to the sampling error of 2,000 users
        "label_fraction_max_deviation": below(0.02),  # the users asked for keep their purchase labels
        "bound_mean_max_standard_errors": below(4.0),  # law of total expectation, within sampling error
        "bound_auc_between_chance_and_truth": is_true(),
        "n_cells": equals(8),  # 2 rho x 2 label shares x 2 seeds
        "n_comparisons": equals(24),  # 4 settings x 2 tasks x 3 shared models
        "models": equals(["single", "shared-bottom", "mmoe", "ple"]),
        "share_of_gap_closed_max": between(-1.0, 1.0),  # no model beats the Bayes-optimal bound
        # the verdicts are recorded, not asserted: two small worlds per cell decide little
        "verdicts": Check("counts of helps/hurts/within noise summing to 24", lambda v: sum(v.values()) == 24),
    },
    "10_recommend": {
        "text_norm_max_deviation": below(1e-5),
        "title_cosine_within_minus_between": at_least(0.1),
        "cold_category_accuracy": at_least(0.8),  # a cold item's category read from its title
        "recommend_items_match_brute_force": is_true(),
        "recommend_vs_brute_force_max_deviation": below(1e-6),
        "recommended_seen_item": equals(False),
        "click_hr_at_10": between(0.0, 1.0),
        "click_ndcg_at_10": between(0.0, 1.0),
        "ranking_vs_brute_force_max_deviation": below(1e-9),
        "fusion_alpha0_vs_ctr_max_deviation": below(1e-9),
        "fusion_alpha_half_vs_ctcvr_max_deviation": below(1e-9),  # alpha = 1/2 ranks like pCTCVR
        "fusion_widget_drawn": is_true(),
        "cold_no_text_vector_spread": equals(0.0),  # without text every cold item is the zero ID vector
        "cold_text_vector_spread": at_least(1e-3),
        "cold_score_spread_without_text": equals(0.0),
        "cold_no_text_hr_vs_random_deviation": below(1e-12),  # all tied = a random order
        "cold_click_auc_with_text": between(0.0, 1.0),
        "cold_click_auc_without_text": between(0.0, 1.0),
    },
    "11_large_model_multitask": {
        "template_mismatches": equals(0),  # assembled tokens == tokenising the template string
        "tokenizer_calls_at_build": equals(1),  # every title in one call
        "tokenizer_calls_in_steps": equals(0),
        "frozen_lm_trained": equals(0),
        "last_n_lm_trained_minus_last_layer": equals(0),
        "lora_share_trained": between(1e-4, 0.01),
        # quick runs are too small to rank the models; the full (GPU) run is where the LM should win on cold items
        "id_warm_click_auc": between(0.0, 1.0),
        "id_cold_click_auc": between(0.0, 1.0),
        "lm_warm_click_auc": between(0.0, 1.0),
        "lm_cold_click_auc": between(0.0, 1.0),
    },
    "12_adversarial_tasks": {
        "grl_forward_max_deviation": equals(0.0),
        "grl_scratch_vs_minus_lambda_max_deviation": below(1e-5),
        "grl_mtlkit_vs_scratch_max_deviation": below(1e-7),
        "reversed_step_raises_adversary_loss": is_true(),
        "plain_step_lowers_adversary_loss": is_true(),
        "n_strengths": equals(4),
        "click_auc_min": between(0.3, 1.0),
        "adversary_auc_min": between(0.0, 1.0),
        "adversary_auc_max": between(0.0, 1.0),
        "probe_auc_min": between(0.0, 1.0),
        "probe_auc_max": between(0.0, 1.0),
        "probe_scores_the_head_rows": is_true(),
        "macro_vs_hand_max_deviation": below(1e-12),
        "micro_auc": between(0.0, 1.0),
        "pooling_auc_with_rmse_refused": is_true(),
    },
}


# Where a notebook's full (GPU) run records different numbers, its entry here replaces those keys.
GPU_EXPECTATIONS: dict[str, dict[str, Check]] = {}


# --------------------------------------------------------------------------- fast source checks
def _load(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def _code_cells(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [cell for cell in nb.cells if cell.cell_type == "code"]


def _markdown(nb: nbformat.NotebookNode) -> str:
    return "\n".join(cell.source for cell in nb.cells if cell.cell_type == "markdown")


def _headings(nb: nbformat.NotebookNode) -> list[str]:
    return [line.lstrip("#").strip() for line in _markdown(nb).splitlines() if line.startswith("#")]


def test_notebooks_exist() -> None:
    assert len(NOTEBOOKS) >= 4, f"expected the numbered notebooks in {NOTEBOOK_DIR}, found {NAMES}"


def test_every_notebook_has_expectations() -> None:
    missing = sorted(set(NAMES) - set(EXPECTATIONS))
    stale = sorted(set(EXPECTATIONS) - set(NAMES))
    assert not missing, f"add an EXPECTATIONS entry in tests/test_notebooks.py for {missing}"
    assert not stale, f"EXPECTATIONS names notebooks that do not exist: {stale}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=NAMES)
def test_committed_without_outputs(path: Path) -> None:
    nb = _load(path)
    nbformat.validate(nb)
    dirty = [
        i
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)
    ]
    assert not dirty, f"{path.name}: cells {dirty} carry outputs or execution counts; clear them before committing"
    assert "papermill" not in nb.metadata, f"{path.name}: committed an executed (papermill) copy"
    raw_cells = json.loads(path.read_text(encoding="utf-8"))["cells"]  # nbformat.read fills in missing ids
    no_id = [i for i, cell in enumerate(raw_cells) if "id" not in cell]
    assert not no_id, f"{path.name}: cells {no_id} have no id (nbformat 4.5 requires one; nbformat.normalize adds them)"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=NAMES)
def test_parameters_cell_is_first_code_cell(path: Path) -> None:
    nb = _load(path)
    tagged = [i for i, cell in enumerate(nb.cells) if "parameters" in cell.metadata.get("tags", [])]
    code = [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code"]
    assert len(tagged) == 1, f"{path.name}: expected exactly one cell tagged 'parameters', found cells {tagged}"
    assert code and tagged[0] == code[0], f"{path.name}: the 'parameters' cell must be the first code cell"
    params = nb.cells[tagged[0]].source
    for name in ("QUICK", "SEED"):
        assert re.search(rf"^{name}\s*=", params, re.M), f"{path.name}: parameters cell lacks {name} = ..."
    setup = [h for h in _headings(nb) if re.match(r"0\.?\s+Set-up", h)]
    assert setup, f"{path.name}: needs a '## 0 Set-up' section holding the parameters cell"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=NAMES)
def test_papermill_reads_every_parameter(path: Path) -> None:
    """papermill parses each assignment of the parameters cell (a quote in a comment breaks it)."""
    papermill = pytest.importorskip("papermill")
    nb = _load(path)
    source = next(c.source for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    assigned = re.findall(r"^([A-Za-z_]\w*)\s*(?::[^=]+)?=", source, re.M)
    inspected = papermill.inspect_notebook(str(path))
    assert sorted(inspected) == sorted(assigned), (
        f"{path.name}: papermill reads {sorted(inspected)} from the parameters cell, which assigns {sorted(assigned)}; "
        "keep one plain `NAME = value  # comment` per line, without quotes in the comment"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=NAMES)
def test_house_style(path: Path) -> None:
    nb = _load(path)
    first = nb.cells[0]
    assert first.cell_type == "markdown" and first.source.startswith("# "), (
        f"{path.name}: the first cell must be markdown starting with an H1 title"
    )
    badges = list(BADGE_RE.finditer(first.source))
    assert badges, f"{path.name}: the first cell needs a Colab badge"
    for badge in badges:
        assert badge.group("file") == path.name, f"{path.name}: the Colab badge points at {badge.group('file')}"
        assert (badge.group("repo"), badge.group("branch")) == (REPO_SLUG, BRANCH), (
            f"{path.name}: the Colab badge must use {REPO_SLUG}@{BRANCH}, got {badge.group(0)}"
        )
    install = [c.source for c in _code_cells(nb) if "google.colab" in c.source]
    assert install, f"{path.name}: needs the Colab-only install cell"
    assert f'"{REPO_SLUG}"' in install[0] and f'"{BRANCH}"' in install[0], (
        f"{path.name}: the install cell must name the badge's repository and branch"
    )
    headings = [h.lower() for h in _headings(nb)]
    for section in ("exercises", "what to remember", "references"):
        assert any(section in h for h in headings), f"{path.name}: needs a '{section}' section"
    last_code = _code_cells(nb)[-1].source
    assert re.search(rf"record_results\(\s*[\"']{path.stem}[\"']", last_code), (
        f"{path.name}: the last code cell must call record_results(\"{path.stem}\", ...)"
    )
    text = "\n".join(cell.source for cell in nb.cells)
    assert not re.search(r"(?<![\w.~])/(home|Users|root)/", text), f"{path.name}: holds an absolute path"


def test_binder_files() -> None:
    """binder/ launches the repository: a CPU torch, the repo's requirements, the package installed."""
    binder = ROOT / "binder"
    assert re.fullmatch(r"python-3\.\d+\n?", (binder / "runtime.txt").read_text()), "runtime.txt must read python-3.X"
    requirements = (binder / "requirements.txt").read_text()
    assert "download.pytorch.org/whl/cpu" in requirements and re.search(r"^torch>=", requirements, re.M)
    assert re.search(r"^-r \.\./requirements\.txt$", requirements, re.M), "binder must install the repo's requirements"
    assert (ROOT / "requirements.txt").is_file()
    post_build = binder / "postBuild"
    assert os.access(post_build, os.X_OK), "binder/postBuild must be executable"
    assert "pip install --no-deps -e ." in post_build.read_text()


# --------------------------------------------------------------------------- execution
@pytest.fixture(scope="session")
def kernel_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Jupyter data folder whose "python3" kernel is this interpreter.

    jupyter_client would pick a user-level "python3" kernelspec (which may point at another
    Python) before this environment's; ``JUPYTER_PATH`` comes first, so the notebooks run
    with the packages under test.
    """
    return kernel_home(tmp_path_factory.mktemp("jupyter"))


def run_notebook(
    name: str,
    run_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    jupyter_dir: Path,
    parameters: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], float]:
    """Execute ``notebooks/<name>.ipynb`` with papermill; returns (recorded results, seconds).

    The kernel starts in ``notebooks/`` (as in JupyterLab) and writes only to ``run_dir``;
    this checkout's ``mtlkit`` comes first on its path.
    """
    papermill = pytest.importorskip("papermill")
    monkeypatch.setenv("MTLKIT_RUN_DIR", str(run_dir))
    monkeypatch.setenv("JUPYTER_PATH", str(jupyter_dir))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's inline backend draws the figures
    before = sorted(p.name for p in NOTEBOOK_DIR.iterdir())
    start = time.perf_counter()
    papermill.execute_notebook(
        str(NOTEBOOK_DIR / f"{name}.ipynb"),
        str(run_dir / f"{name}.executed.ipynb"),
        parameters=dict(parameters or {}),
        kernel_name="python3",
        cwd=str(NOTEBOOK_DIR),
        progress_bar=False,
        request_save_on_cell_execute=False,
        # A guard against a hung cell, not a speed test: 09's quick grid ran past 600 s on a 2-core
        # machine that several other jobs were sharing.
        execution_timeout=1800,
    )
    elapsed = time.perf_counter() - start
    after = sorted(p.name for p in NOTEBOOK_DIR.iterdir())
    assert after == before, f"{name} wrote into notebooks/: {sorted(set(after) - set(before))}"
    recorded = run_dir / f"{name}.json"
    assert recorded.is_file(), f"{name} did not record its results (mtlkit.notebook.record_results)"
    return json.loads(recorded.read_text()), elapsed


def check_expectations(name: str, results: Mapping[str, Any], expectations: Mapping[str, Check]) -> None:
    failures = [
        f"{key} = {results.get(key, '<not recorded>')!r}, expected {check.description}"
        for key, check in expectations.items()
        if key not in results or not check(results[key])
    ]
    assert not failures, f"{name}:\n  " + "\n  ".join(failures)


@pytest.fixture()
def execute(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    kernel_dir: Path,
    record_property: Callable[[str, object], None],
) -> Callable[..., dict[str, Any]]:
    """``execute(name, parameters=None)``: run a notebook for this test, record its run time,
    return what it recorded. A notebook without ``EXPECTATIONS`` fails here."""

    def run(name: str, parameters: Mapping[str, Any] | None = None) -> dict[str, Any]:
        assert name in EXPECTATIONS, f"add an EXPECTATIONS entry in tests/test_notebooks.py for {name}"
        results, elapsed = run_notebook(name, tmp_path, monkeypatch, kernel_dir, parameters)
        record_property("execution_s", round(elapsed, 1))
        print(f"{name}: executed{f' with {parameters}' if parameters else ''} in {elapsed:.1f} s")
        return results

    return run


@pytest.mark.notebook
@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_and_records(name: str, execute: Callable[..., dict[str, Any]]) -> None:
    check_expectations(name, execute(name), EXPECTATIONS[name])


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.notebook
@pytest.mark.parametrize("name", NAMES)
def test_notebook_full_parameters_on_gpu(name: str, execute: Callable[..., dict[str, Any]]) -> None:
    results = execute(name, GPU_PARAMETERS)
    assert results.get("device", "cuda").startswith("cuda"), f"{name} ran on {results.get('device')}, not on the GPU"
    check_expectations(name, results, {**EXPECTATIONS[name], **GPU_EXPECTATIONS.get(name, {})})


# --------------------------------------------------------------------------- the book
@pytest.mark.slow
@pytest.mark.notebook
def test_book_renders_an_executed_notebook_with_an_index(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``make book`` (python -m mtlkit.book) on one notebook: its executed HTML page and the index,
    everything under --out (a relative one too), nothing in notebooks/."""
    pytest.importorskip("nbconvert")
    from mtlkit.book import main, notebook_summary

    name = "00_tour"
    before = sorted(p.name for p in NOTEBOOK_DIR.iterdir())
    monkeypatch.chdir(tmp_path)
    assert main(["--out", "book", "--notebooks", name]) == 0
    assert sorted(p.name for p in NOTEBOOK_DIR.iterdir()) == before, "the book wrote into notebooks/"
    out = capsys.readouterr().out
    assert re.search(rf"^{name}: ok in [\d.]+ s", out, re.M) and re.search(r"^book built in \d+ s \(1 notebooks\)", out, re.M)
    page = (tmp_path / "book" / f"{name}.html").read_text(encoding="utf-8")
    title, goal = notebook_summary(NOTEBOOK_DIR / f"{name}.ipynb")
    assert title == "00 A tour of mtlkit" and goal.startswith("Find your way around the kit")
    assert title in page and "Environment check" in page  # the Markdown
    assert "matmul on" in page and "OK" in page  # an executed output: the printed check
    index = (tmp_path / "book" / "index.html").read_text(encoding="utf-8")
    assert f'href="{name}.html"' in index and title in index
    assert (tmp_path / "book" / "runs" / name / f"{name}.json").is_file()  # record_results wrote there
    assert main(["--out", str(tmp_path / "other"), "--notebooks", "99_missing"]) == 2
