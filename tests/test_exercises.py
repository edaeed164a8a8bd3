"""mtlkit.exercises: every reference solution passes its check, every notebook stub reports "not
attempted yet" without raising, and a plausible wrong answer to every exercise fails with the
feedback that names its mistake."""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import mtlkit.exercises
from mtlkit import cli, exercises, metrics
from mtlkit.exercises import EXERCISES, CheckResult, Exercise

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
IDS = list(EXERCISES)
CHECK_CELL = re.compile(r'exercises\.check\("(?P<id>\d\d\.\d+)", (?P<answer>\w+)\)')

pytestmark = pytest.mark.usefixtures("one_thread")


# --------------------------------------------------------------------------- the registry
def test_at_least_three_exercises_per_notebook_with_unique_ids() -> None:
    per_notebook = Counter(item.notebook for item in EXERCISES.values())
    assert {path.stem: per_notebook[path.stem] for path in NOTEBOOKS if per_notebook[path.stem] < 3} == {}
    assert set(per_notebook) <= {path.stem for path in NOTEBOOKS}
    registered = [item.id for module in mtlkit.exercises._MODULES for item in module.EXERCISES]
    assert len(registered) == len(set(registered)) == len(EXERCISES) >= 39


def test_exercises_of_a_notebook() -> None:
    assert exercises.exercises_of("01") == exercises.exercises_of("01_attention")
    assert [item.id for item in exercises.exercises_of("05")] == ["05.1", "05.2", "05.3"]
    with pytest.raises(ValueError, match="notebook must be one of"):
        exercises.exercises_of("42")
    with pytest.raises(ValueError, match="exercise_id must be one of"):
        exercises.check("99.1", None)


def test_an_exercise_refuses_a_bad_id_or_kind() -> None:
    with pytest.raises(ValueError, match="id must be 'NN.k'"):
        Exercise("2.1", "01_attention", "statement", "derive", str)
    with pytest.raises(ValueError, match="kind must be one of"):
        Exercise("01.9", "01_attention", "statement", "guess", str)


# --------------------------------------------------------------------------- reference solutions
@pytest.mark.parametrize("exercise_id", IDS)
def test_reference_solution_passes(exercise_id: str) -> None:
    result = EXERCISES[exercise_id].evaluate(exercises.solution(exercise_id))
    assert result.passed and result.attempted, str(result)


@pytest.mark.parametrize("exercise_id", IDS)
def test_a_check_leaves_the_random_generators_alone(exercise_id: str) -> None:
    answer = exercises.solution(exercise_id)
    torch_state, numpy_state = torch.get_rng_state(), np.random.get_state()[1].copy()
    EXERCISES[exercise_id].evaluate(answer)
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert np.array_equal(np.random.get_state()[1], numpy_state)


def test_missing_solutions_folder_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"notebooks/solutions/ of a repository checkout"):
        exercises.solution("01.1", tmp_path / "absent")


# --------------------------------------------------------------------------- stubs
@pytest.mark.parametrize("exercise_id", IDS)
def test_none_is_not_attempted_yet(exercise_id: str, capsys: pytest.CaptureFixture[str]) -> None:
    result = exercises.check(exercise_id, None)
    assert (result.attempted, result.passed) == (False, False)
    assert capsys.readouterr().out.startswith(f"{exercise_id} not attempted yet")


def _exercise_code_cells(path: Path) -> list[str]:
    """The code cells of a notebook's Exercises section, up to its 'More exercises' cell."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    sources = ["".join(cell["source"]) for cell in cells]
    start = next(i for i, s in enumerate(sources) if cells[i]["cell_type"] == "markdown" and "## Exercises\n" in s)
    end = next(i for i, s in enumerate(sources) if i > start and s.startswith("### More exercises"))
    return [sources[i] for i in range(start, end) if cells[i]["cell_type"] == "code"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_notebook_stubs_report_not_attempted_yet(path: Path) -> None:
    """Run the committed stub and check cells as a kernel would: every check says "not attempted yet"
    (so no solution was committed into a notebook) and nothing raises."""
    namespace: dict[str, Any] = {}
    checked: dict[str, CheckResult] = {}
    for source in _exercise_code_cells(path):
        call = CHECK_CELL.fullmatch(source.strip())
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            if call is None:
                exec(source, namespace)  # the import and the stubs
            else:
                checked[call["id"]] = eval(source, namespace)
        if call is not None:
            assert printed.getvalue().startswith(f"{call['id']} not attempted yet"), printed.getvalue()
    assert sorted(checked) == [item.id for item in exercises.exercises_of(path.stem)]
    assert not any(result.attempted for result in checked.values())


# --------------------------------------------------------------------------- wrong answers
def _stub(*args: Any) -> Any:
    raise NotImplementedError


def _naive_bce(logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    p = torch.sigmoid(logits)
    return (-(labels * p.log() + (1 - labels) * (1 - p).log()) * mask).sum() / mask.sum()


def _unmasked_history(times: np.ndarray, items: np.ndarray, t: int, seq_len: int) -> np.ndarray:
    return items[times <= t][-seq_len:]


def _always_project(g1: np.ndarray, g2: np.ndarray) -> np.ndarray:
    return g1 - (g1 @ g2) / (g2 @ g2) * g2 + g2 - (g2 @ g1) / (g1 @ g1) * g1


def _uniform_negatives(popularity: np.ndarray, interacted: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.choice(np.setdiff1d(np.arange(len(popularity)), interacted), n)


def _inject_without_repr(notebook: dict, parameters: dict) -> dict:
    notebook = copy.deepcopy(notebook)
    source = "".join(f"{name} = {value}\n" for name, value in parameters.items())
    notebook["cells"].insert(2, {"cell_type": "code", "metadata": {"tags": ["injected-parameters"]}, "source": source})
    return notebook


def _causal_without_scale(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    length = q.size(-2)
    blocked = torch.ones(length, length, dtype=torch.bool).triu(1)
    weights = torch.softmax((q @ k.transpose(-1, -2)).masked_fill(blocked, float("-inf")), dim=-1)
    return weights @ v, weights


def _post_ln_as_pre_ln(layer: torch.nn.TransformerEncoderLayer, x: torch.Tensor) -> torch.Tensor:
    h = layer.norm1(x)
    x = x + layer.self_attn(h, h, h, need_weights=False)[0]
    return x + layer.linear2(F.gelu(layer.linear1(layer.norm2(x))))


def _joiner_after_last(candidate: list[int], history: list[list[int]], max_length: int) -> list[int]:
    tokens = [101, *candidate, 102]
    for title in history:
        tokens += [*title, 1025] if title else []
    return (tokens + [102] if any(history) else tokens)[:max_length]


def _gradient_without_retain(loss_a: torch.Tensor, loss_b: torch.Tensor, parameters: list) -> float:
    torch.autograd.grad(loss_a, parameters, allow_unused=True)
    torch.autograd.grad(loss_b, parameters, allow_unused=True)
    return 0.0


def _ema_from_zero(values: np.ndarray, smoothing: float) -> np.ndarray:
    out, average = [], 0.0
    for value in values:
        average = smoothing * average + (1 - smoothing) * value
        out.append(average)
    return np.array(out)


def _shifted_softmax(x: np.ndarray) -> np.ndarray:
    return np.exp(x - x.max()) / np.exp(x - x.max()).sum()


def _micro_with_unobserved(labels: np.ndarray, logits: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    per_task = [metrics.roc_auc(labels[mask[:, j], j], logits[mask[:, j], j]) for j in range(labels.shape[1])]
    return float(np.mean(per_task)), metrics.roc_auc(labels.ravel(), logits.ravel())  # unobserved rows pooled


#: id -> [(a plausible wrong answer, a fragment of the feedback that names its mistake)]
WRONG_ANSWERS: dict[str, list[tuple[Any, str]]] = {
    "00.1": [(lambda n, b: n**3 / (3 * n * n * b), "a multiply and an add each"),
             (lambda n, b: 2 * n / 3, "elements, not bytes")],
    "00.2": [(lambda source: [line.split("=")[0].strip() for line in source.splitlines() if "=" in line],
              "come from a comment")],
    "00.3": [(_inject_without_repr, "write each value with repr()")],
    "01.1": [(lambda d, sigma: 1 / math.sqrt(d), "your scale ignores σ")],
    "01.2": [(_causal_without_scale, "without the 1/√d scale"),
             (lambda q, k, v: (torch.softmax(q @ k.transpose(-1, -2) / 8**0.5, -1) @ v,
                               torch.softmax(q @ k.transpose(-1, -2) / 8**0.5, -1)), "on later keys")],
    "01.3": [(lambda lengths, seq_len: ~exercises.solution("01.3")(lengths, seq_len), "your mask is inverted")],
    "01.4": [(256 * 8 * 2048 * 2048, "not bytes"), (32, "in GiB")],
    "02.1": [(lambda max_len, d: exercises.solution("02.1")(max_len, d)[:, [j ^ 1 for j in range(d)]],
              "even columns hold cosines")],
    "02.2": [(lambda k, d: d / 2 - sum(math.cos(k / 10000 ** (2 * i / d)) for i in range(d // 2)),
              "adds both norms")],
    "02.3": [(lambda x, positions: exercises.solution("02.3")(x, -positions), "clockwise")],
    "02.4": [({"prediction": "yes", "max_deviation": 1e-7}, "the mask stays in place"),
             ({"prediction": "no", "max_deviation": 1e-7}, "pass is_causal=True")],
    "03.1": [(_post_ln_as_pre_ln, "normalises after the residual addition")],
    "03.2": [(288, "not yet more than a million"), (500, "the attention alone")],
    "03.3": [(lambda d: 12 * d, "A V costs another"), (lambda d: d, "ignores the constants")],
    "04.1": [(_naive_bce, "is inf for logit 100"),
             (lambda z, y, m: (F.binary_cross_entropy_with_logits(z, y, reduction="none") * m).mean(),
              "divided by all 200 entries")],
    "04.2": [({"prediction": "no", "max_deviation": 0.0}, "they still agree")],
    "04.3": [(lambda y, t, b: ((t - y).abs() / b).mean(), "normaliser")],
    "04.4": [(lambda y, users: y.astype(float), "within users your scores still rank")],
    "05.1": [({"f1": 3.0, "f2": 1.0}, "ignores the loss scale κ = 10"), ({"f1": 1.0, "f2": 30.0}, "t = 0.9967")],
    "05.2": [(lambda previous, before, tau: 3 * _shifted_softmax(before / previous / tau), "upside down"),
             (lambda previous, before, tau: _shifted_softmax(previous / before / tau), "weights sum to 1")],
    "05.3": [(_always_project, "leaves gradients that do not conflict unchanged"),
             (lambda g1, g2: g1 + g2, "the gradients conflict")],
    "06.1": [(_unmasked_history, "leaks into its features")],
    "06.2": [(_uniform_negatives, "look uniform")],
    "06.3": [({"prediction": "shrinks", "biases": [0.1, 0.14, 0.2]}, "it grows"),
             ({"prediction": "grows", "biases": [0.2, 0.14, 0.1]}, "do not grow")],
    "07.1": [(lambda a, b: torch.logit(torch.sigmoid(a) * torch.sigmoid(b)), "inf at a = b = 20"),
             (lambda a, b: a + b, "product of the *odds*")],
    "07.2": [(lambda prob, label, n_bins=10: np.abs(prob - label).mean(), "mean |p − y| over samples")],
    "07.3": [(lambda logits, labels: 1 / exercises.solution("07.3")(logits, labels), "is 1/T*")],
    "08.1": [(_ema_from_zero, "divide m_t by 1 − s^t")],
    "08.2": [(lambda w: -(w * w.log()).sum(-1).mean(dim=(0, 2)), "0 · log 0 must count as 0")],
    "08.3": [(lambda norm_a, norm_b, cosine: cosine > 0, "a conflict alone does not decide")],
    "09.1": [(lambda z, c: np.einsum("st,utd->usd", c, z), "multiplied by C itself")],
    "09.2": [(lambda s: 1 / (1 + np.exp(-s)), "you returned σ(s)")],
    "09.3": [(lambda a, b: (np.mean(a) - np.mean(b), math.sqrt(np.var(a, ddof=1) / 5 + np.var(b, ddof=1) / 5)),
              "as independent samples")],
    "10.1": [(lambda scores, seen, k: scores.topk(k, dim=1).indices, "already seen")],
    "10.2": [({"hr": 1.0, "recall": 0.5, "ndcg": 0.387, "mrr": 0.5}, "not by K")],
    "10.3": [(lambda n, r, k: min(1.0, k * r / n), "counts a list that holds two relevant items twice")],
    "11.1": [(lambda d, n_layers, rank, n_adapted: n_layers * n_adapted * rank * d, "one of the two factors")],
    "11.2": [(_joiner_after_last, "not after the last one")],
    "11.3": [(lambda x, w, b, a_, b_, alpha: F.linear(x, w, b) + alpha * (x @ a_.T) @ b_.T, "times too large")],
    "12.1": [(lambda h, strength: h, "passes unchanged"), (lambda h, strength: -strength * h, "not h")],
    "12.2": [(_micro_with_unobserved, "pools the unobserved labels")],
    "12.3": [(math.log(2), "predicting ½"), (0.469, "in bits")],
}

WRONG_CASES = [pytest.param(i, answer, fragment, id=f"{i}-{n}")
               for i, answers in WRONG_ANSWERS.items() for n, (answer, fragment) in enumerate(answers)]


def test_every_exercise_has_a_wrong_answer() -> None:
    assert sorted(WRONG_ANSWERS) == sorted(EXERCISES)


@pytest.mark.parametrize(("exercise_id", "answer", "fragment"), WRONG_CASES)
def test_wrong_answer_fails_with_its_specific_feedback(exercise_id: str, answer: Any, fragment: str) -> None:
    result = EXERCISES[exercise_id].evaluate(answer)
    assert result.attempted and not result.passed
    assert fragment in result.feedback, result.feedback


def test_learner_errors_become_feedback() -> None:
    def crashes(*args: Any) -> None:
        return 1 / 0

    result = EXERCISES["01.2"].evaluate(crashes)
    assert not result.passed and "raised ZeroDivisionError" in result.feedback
    assert "not attempted" in EXERCISES["01.2"].evaluate(_stub).status
    assert "must be a number" in EXERCISES["01.4"].evaluate("lots").feedback
    assert "did you forget `return`?" in EXERCISES["01.1"].evaluate(lambda d, sigma: None).feedback
    assert "the answer must be the function" in EXERCISES["01.2"].evaluate(3).feedback


def test_check_prints_once_and_returns_the_result(capsys: pytest.CaptureFixture[str]) -> None:
    result = exercises.check("12.3", exercises.solution("12.3"))
    out = capsys.readouterr().out
    assert out == f"{result}\n" and out.startswith("12.3 passed: ")
    assert result.status == "passed"


# --------------------------------------------------------------------------- the command line
def test_cli_lists_every_exercise(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["exercises"]) == 0
    out = capsys.readouterr().out
    assert all(re.search(rf"^{re.escape(i)}\s", out, re.MULTILINE) for i in IDS)


def test_cli_solutions_table_passes(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["exercises", "--solutions"]) == 0
    out = capsys.readouterr().out
    assert all(re.search(rf"^{re.escape(i)}\s+passed\s+\d", out, re.MULTILINE) for i in IDS)
    assert f"{len(IDS)} of {len(IDS)} reference solutions pass" in out


def test_cli_solutions_exit_1_when_a_check_fails(monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    real = exercises.solution
    monkeypatch.setattr(mtlkit.exercises, "solution", lambda i: 12 if i == "01.4" else real(i))
    assert cli.main(["exercises", "--solutions"]) == 1
    out = capsys.readouterr().out
    assert re.search(r"^01\.4\s+failed", out, re.MULTILINE) and "01.4 failed: 12 bytes" in out


def test_cli_without_the_solutions_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(mtlkit.exercises, "SOLUTIONS_DIR", tmp_path / "absent")
    assert cli.main(["exercises", "--solutions"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "notebooks/solutions/ of a repository checkout" in err


def test_python_m_mtlkit_exercises_solutions_exits_0() -> None:
    result = subprocess.run([sys.executable, "-m", "mtlkit", "exercises", "--solutions", "--threads", "1"],
                            capture_output=True, text=True, timeout=300, cwd=ROOT, check=False)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert all(re.search(rf"^{re.escape(i)}\s+passed", result.stdout, re.MULTILINE) for i in IDS)


def test_the_syllabus_lists_every_checkable_exercise() -> None:
    """notebooks/README.md names each exercise under its notebook, so the instructor's list cannot lag."""
    syllabus = (ROOT / "notebooks" / "README.md").read_text(encoding="utf-8")
    sections = re.split(r"^### ", syllabus, flags=re.MULTILINE)
    for item in EXERCISES.values():
        section = next(s for s in sections if s.startswith(item.id[:2] + " "))
        assert f"{item.id} `" in section, f"{item.id} is missing from the syllabus section of {item.notebook}"
