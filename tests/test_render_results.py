"""The README's Results section is rendered from the results files, and its verdicts are computed.

``benchmarks/render_results.py --check`` must pass on the committed README (where a results file
has no sidecar yet, its section is rendered as pending, with the command to run) and fail as soon as a number
between the markers is edited. The helpers that turn per-seed numbers into verdict sentences
are fed hand-made numbers here, so every sentence the README shows is tested for its rule.
"""

from __future__ import annotations

import importlib.util
import json
import math
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"


def load(name: str) -> ModuleType:
    """Import ``benchmarks/<name>.py`` (it imports ``_common`` from its own folder)."""
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def render() -> ModuleType:
    return load("render_results")


@pytest.fixture(scope="module")
def common() -> ModuleType:
    return load("_common")


# --------------------------------------------------------------------------- the renderer
def test_the_committed_readme_matches_the_results_files(render: ModuleType) -> None:
    completed = subprocess.run([sys.executable, str(BENCHMARKS / "render_results.py"), "--check"], cwd=ROOT,
                               capture_output=True, text=True, timeout=120, check=False)
    assert completed.returncode == 0, completed.stdout + completed.stderr


def fake_results(folder: Path, render: ModuleType, *, command: str = "`python benchmarks/x.py`") -> Path:
    """A results folder with a sidecar (one number per section) and every figure of SECTIONS."""
    folder.mkdir()
    for i, section in enumerate(render.SECTIONS):
        provenance = {"commit": "abc123", "dirty": False, "versions": {}, "threads": 1, "device": "CPU (test)",
                      "seeds": [0, 1, 2, 3, 4], "command": command, "wall_seconds": 1.0, "cpu_seconds": 1.0,
                      "date": "2026-01-01 00:00 UTC"}
        readme = ["| model | AUC |", "|---|---:|", f"| m{i} | 0.{7000 + i} ± 0.0010 |", "", f"- m{i} helps."]
        (folder / f"{section.stem}.json").write_text(json.dumps({"provenance": provenance, "readme": readme,
                                                                 "data": None}))
        for figure in section.figures:
            (folder / figure).write_bytes(b"")
    return folder


def test_check_passes_after_rendering_and_fails_when_a_number_is_edited(tmp_path: Path, render: ModuleType,
                                                                       capsys: pytest.CaptureFixture) -> None:
    results = fake_results(tmp_path / "results", render)
    readme = tmp_path / "README.md"
    readme.write_text((ROOT / "README.md").read_text(encoding="utf-8"), encoding="utf-8")
    arguments = ["--readme", str(readme), "--results", str(results)]
    assert render.main(arguments) == 0  # writes the section
    text = readme.read_text(encoding="utf-8")
    assert "| m3 | 0.7003 ± 0.0010 |" in text and "### Training throughput" in text
    assert "Source: [`esmm-cpu.md`](results/esmm-cpu.md)" in text and "seeds 0–4" in text
    assert "![When does sharing help?](results/transfer-cpu.png)" in text
    assert text.split(render.START)[0] == (ROOT / "README.md").read_text(encoding="utf-8").split(render.START)[0]
    assert render.main([*arguments, "--check"]) == 0
    capsys.readouterr()

    readme.write_text(text.replace("0.7003 ± 0.0010", "0.7004 ± 0.0010"), encoding="utf-8")
    assert render.main([*arguments, "--check"]) == 1
    shown = capsys.readouterr().out
    assert "-| m3 | 0.7004 ± 0.0010 |" in shown and "+| m3 | 0.7003 ± 0.0010 |" in shown


def test_rendering_is_deterministic_and_idempotent(tmp_path: Path, render: ModuleType) -> None:
    results = fake_results(tmp_path / "results", render)
    readme = tmp_path / "README.md"
    readme.write_text("# Title\n\n## Results\n\nIntro.\n\n<!-- results:start -->\nstale text\n<!-- results:end -->\n\n## Next\n")
    first = render.render_block(results, readme)
    assert first == render.render_block(results, readme)
    once = render.rewrite(readme.read_text(), first)
    assert render.rewrite(once, first) == once and once.endswith("<!-- results:end -->\n\n## Next\n")
    assert "stale text" not in once and once.startswith("# Title\n\n## Results\n\nIntro.\n\n<!-- results:start -->")


def test_missing_sidecars_quick_runs_and_markers_are_refused(tmp_path: Path, render: ModuleType,
                                                           capsys: pytest.CaptureFixture) -> None:
    results = fake_results(tmp_path / "results", render, command="`python benchmarks/x.py --quick`")
    (results / "esmm-cpu.json").unlink()
    found = render.problems(results)
    assert any("esmm-cpu.json is missing; rerun `python benchmarks/reproduce_esmm.py" in p for p in found)
    assert sum("--quick smoke run" in p for p in found) == len(render.SECTIONS) - 1
    readme = tmp_path / "README.md"
    readme.write_text(f"# T\n\n{render.START}\n{render.END}\n")
    assert render.main(["--readme", str(readme), "--results", str(results), "--check", "--strict"]) == 2
    assert "esmm-cpu.json is missing" in capsys.readouterr().err
    assert render.main(["--readme", str(readme), "--results", str(results)]) == 0  # renders them as pending
    text = readme.read_text()
    assert text.count("_Pending: not yet measured") == len(render.SECTIONS) and "0.70" not in text
    assert "run `python benchmarks/reproduce_esmm.py --threads 1`" in text
    assert render.main(["--readme", str(readme), "--results", str(results), "--check"]) == 0
    readme.write_text("no markers\n")
    assert render.main(["--readme", str(readme), "--results", str(results), "--check"]) == 2
    with pytest.raises(ValueError, match="exactly once"):
        render.rewrite("no markers", "block")


def test_the_fixed_text_holds_no_numbers(render: ModuleType) -> None:
    """Headings and descriptions are fixed text: a number there would not come from a results file."""
    for section in render.SECTIONS:
        assert not re.search(r"\d", section.description), section.stem
        assert not re.search(r"\d", section.heading.replace("MovieLens-100K", "")), section.stem
    assert len({section.stem for section in render.SECTIONS}) == len(render.SECTIONS)


# --------------------------------------------------------------------------- verdict helpers
A, B = [0.70, 0.72, 0.69, 0.71, 0.73], [0.68, 0.69, 0.68, 0.70, 0.70]  # A − B = +0.02 ± 0.0045, 5 of 5


def test_paired_cells_and_words(common: ModuleType) -> None:
    assert common.paired_cell(common.compare(A, B)) == "+0.0200 ± 0.0045 (5/5) helps"
    assert common.paired_cell(common.compare(B, A), 3) == "-0.020 ± 0.004 (0/5) hurts"
    assert common.paired_cell(None) == "n/a" and common.verdict_word(None, "a", "b") == "undefined"
    rmse = common.compare([1.0, 1.1, 0.9], [1.2, 1.3, 1.1], higher_is_better=False)  # lower is better
    assert rmse.verdict == "helps" and common.paired_numbers(rmse, 2) == "-0.20 ± 0.00 (3/3)"
    below = common.compare([1.95, 1.96, 1.97, 1.95, 1.96], [2.0] * 5)
    assert common.verdict_word(below, *common.ABOVE_BELOW) == "below"
    one_seed = common.compare([0.9], [0.1])
    assert common.paired_cell(one_seed) == "+0.8000 ± n/a (1/1) within noise"


def test_compare_pairs_only_the_seeds_where_both_are_defined(common: ModuleType) -> None:
    result = common.compare([0.7, math.nan, 0.72], [0.6, 0.5, 0.61])
    assert result.n == 2 and result.difference == pytest.approx(0.105)
    assert common.compare([math.nan], [0.5]) is None
    with pytest.raises(ValueError):
        common.compare([0.1, 0.2], [0.1])  # not paired


def test_agreement_with_a_paper(common: ModuleType) -> None:
    helps, noise = common.compare(A, B), common.compare([0.1, -0.1, 0.1, -0.1, 0.1], [0.0] * 5)
    hurts = common.compare(B, A)
    assert common.paper_agreement(helps) == "as the paper finds"
    assert common.paper_agreement(noise) == "not resolved (within noise)"
    assert common.paper_agreement(hurts) == "the opposite of the paper's finding"
    assert common.paper_agreement(hurts, expected="hurts") == "as the paper finds"
    assert common.agreement_summary({"income": helps, "marital": noise, "education": helps}) == (
        "as the paper finds on income, education; not resolved (within noise) on marital")


def test_stable_lines_drop_progress_provenance_and_timing(common: ModuleType) -> None:
    output = "\n".join([
        "seed 0: 12 s", "### Title", "", "- data: a", f"- {common.timing_line({'a': [1.0, 2.0]})}",
        "- device: CPU", "- commit abc; torch 2", "- seeds: [0, 1]", "- command: `python x.py`",
        "- run time: 3 s wall, 2 s CPU; today", "| a | 0.5 |",
    ])
    assert common.stable_lines(output) == ["### Title", "", "- data: a", "| a | 0.5 |"]
    assert "seconds per run" in common.timing_line({"a": [1.0, 2.0]}) and "a 1.5" in common.timing_line({"a": [1.0, 2.0]})


# --------------------------------------------------------------------------- scripts' sentences
def wq_run(click: float, rating: float, weight_sum: float, by_epoch: tuple[float, float]) -> dict:
    scores = {"click": click, "rating": rating}
    return {"valid": scores, "test": scores, "weight_sum": weight_sum, "valid_by_epoch": list(by_epoch)}


def test_weighting_quality_states_the_step_size_and_the_confound() -> None:
    module = load("weighting_quality")
    base = [0.50, 0.55, 0.60, 0.52, 0.58]
    results = {
        "equal": [wq_run(c, 1.0, 2.0, (c - 0.01 * (i != 2), c)) for i, c in enumerate(base)],  # improving on 4 of 5
        "static": [wq_run(c + d, 1.0, 2.0, (c, c)) for c, d in zip(base, [0.01, -0.01, 0.005, -0.004, 0.0])],
        "pcgrad": [wq_run(c + d, 1.0, w, (c, c)) for c, d, w in
                   zip(base, [0.02, 0.03, 0.02, 0.025, 0.03], [3.5, 3.6, 3.4, 3.7, 3.6])],
        "uncertainty": [wq_run(c, 1.0, w, (c, c)) for c, w in zip(base, [1.5, 1.6, 1.5, 1.4, 1.5])],
    }
    metric_of = {"click": "auc", "rating": "rmse"}
    [text] = module.step_sentences(results, metric_of)
    assert "equal weighting: T = 2): equal 2.00, static 2.00, pcgrad 3.56, uncertainty 1.50." in text
    assert "Above T: pcgrad; below T: uncertainty." in text and "not normalised" in text
    assert "still improved in the last epoch on 4 of 5 seeds" in text and "pcgrad also takes a larger step" in text
    [click, rating] = module.verdict_lists(results, metric_of)
    assert click.startswith("- click AUC against equal, paired by seed (validation: helps — pcgrad; hurts — none;")
    assert "helps — none; hurts — none" in rating


def test_uncertainty_compares_sigma_hat_with_the_truth_and_the_training_error() -> None:
    module = load("reproduce_uncertainty")
    runs = [{"sigma_hat": [s1, s2], "train_noise_std": [0.5, 2.0], "train_rmse": [r1, r2], "test_rmse": [0.5, 2.0]}
            for s1, s2, r1, r2 in zip([0.49, 0.495, 0.50, 0.492, 0.497], [1.95, 1.96, 1.97, 1.95, 1.96],
                                      [0.60, 0.61, 0.62, 0.60, 0.61], [1.951, 1.962, 1.968, 1.949, 1.961])]
    _, sentences = module.measured(runs, (0.5, 2.0))
    assert sentences[0].startswith("- y1: σ̂ = 0.495 ± 0.004 is below the true σ = 0.5")
    assert "below the model's training RMSE" in sentences[0]
    assert "is below the true σ = 2" in sentences[1] and "within noise of the model's training RMSE" in sentences[1]
    assert sentences[2].startswith("- The learned ratio σ̂_2/σ̂_1 = 3.957 ± 0.016 is below the true 4")


def test_adversarial_sentences_come_from_paired_comparisons() -> None:
    module = load("reproduce_adversarial")
    scores = {
        0.0: {"better probe AUC": [0.78, 0.80, 0.76, 0.79, 0.81], "head AUC": [0.77, 0.78, 0.75, 0.76, 0.79],
              "test macro AUC": [0.62, 0.61, 0.63, 0.62, 0.60]},
        1.0: {"better probe AUC": [0.62, 0.65, 0.60, 0.63, 0.66], "head AUC": [0.40, 0.42, 0.38, 0.41, 0.43],
              "test macro AUC": [0.57, 0.56, 0.58, 0.57, 0.55]},
    }
    text = "\n".join(module.verdict("funnel", "bot", scores))
    assert "Reversal lowers it, paired by seed, at λ ∈ {1}" in text and "never made unrecoverable" in text
    assert "head's own AUC is below chance at λ ∈ {1}" in text and "test macro AUC lower at λ ∈ {1}" in text


def test_census_claims_are_judged_paired_by_seed() -> None:
    module = load("reproduce_census")
    sb = {"income": [0.9540, 0.9542, 0.9545, 0.9541, 0.9543], "marital": [0.9950, 0.9949, 0.9951, 0.9950, 0.9950]}
    mmoe = {"income": [v + d for v, d in zip(sb["income"], [0.0003, 0.0002, 0.0004, 0.0003, 0.0001])],
            "marital": [v + d for v, d in zip(sb["marital"], [0.0001, -0.0001, 0.0, 0.0001, -0.0001])]}
    result = {"tree": {"test": {"income": 0.9561, "marital": 0.9949}},
              "models": {"shared-bottom": {"test": sb, "valid": sb}, "mmoe": {"test": mmoe, "valid": mmoe}}}
    text = "\n".join(module.pair_sentences("income-marital", ("income", "marital"), result))
    assert "mmoe − shared-bottom" in text and "as the paper finds on income" in text
    assert "not resolved (within noise) on marital" in text and "shared-bottom below it on income" in text


def test_census_widths_match_the_shared_bottoms_parameter_count() -> None:
    from mtlkit.data import load_dataset
    from mtlkit.models import build_model

    module = load("reproduce_census")
    schema = load_dataset("synthetic-mmoe", n=200, seed=0).schema
    capacity = module.CAPACITIES["default"]
    target = module.n_parameters(build_model("shared-bottom", schema, **capacity.common, **capacity.reference))
    for name in ("single", "mmoe", "ple"):
        kwargs = module.matched_kwargs(name, schema, capacity)
        count = module.n_parameters(build_model(name, schema, **capacity.common, **kwargs))
        assert abs(count / target - 1) < 0.05, (name, kwargs, count, target)


def test_compare_models_counts_the_seesaw_from_the_verdicts() -> None:
    module = load("compare_models")

    def runs(click: list[float], like: list[float]) -> dict:
        metrics = {"click": {"auc": click}, "like": {"auc": like}}
        return {"valid": metrics, "test": metrics, "best_epoch": [3] * 5}

    single_click, single_like = [0.88, 0.87, 0.89, 0.88, 0.87], [0.78, 0.79, 0.78, 0.77, 0.79]
    scores = {"single": runs(single_click, single_like),
              "ple": runs([c - 0.04 for c in single_click], [v + d for v, d in zip(single_like, [.01, .012, .009, .011, .01])]),
              "mmoe": runs([c - 0.05 for c in single_click], [v + d for v, d in zip(single_like, [.01, -.01, .0, .01, -.01])])}
    columns = [("click", "auc"), ("like", "auc")]
    text = "\n".join(module.model_sentences(scores, columns, ["single", "mmoe", "ple"], "single"))
    assert "- ple − single on test: helps on like AUC" in text and "hurts on click AUC" in text
    assert "A seesaw (helps one task and hurts another on test): ple." in text
    assert "ple − mmoe on test" in text and "on 15 of 15 runs" in text
