"""01_attention.ipynb in JupyterLab: Run All, the LaTeX renders, and every numeric check passes on screen.

The papermill test checks the numbers the notebook records; this one checks what a learner
sees: MathJax turned the derivations into typeset formulas (``mjx-container`` elements in the
markdown cells, no MathJax error), and every check line the notebook prints
(``<name>: max deviation <d> (tolerance <t>) OK``, from ``mtlkit.notebook.print_check``)
shows a deviation below its tolerance.
"""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.browser

NOTEBOOK = "01_attention.ipynb"
CHECK_RE = re.compile(r"^(?P<name>.+?): max deviation (?P<deviation>\S+) \(tolerance (?P<tolerance>\S+)\) "
                      r"(?P<verdict>OK|FAILED)\s*$", re.MULTILINE)
# The notebook's sections each check at least one derivation; fewer lines means output went missing.
MIN_CHECKS = 8
# Section 1 alone has a dozen inline formulas and a displayed one.
MIN_FORMULAS = 10


@pytest.fixture(scope="module")
def attention_run(lab):
    yield lab.run_notebook(NOTEBOOK)
    lab.server.shutdown_kernels()


def test_attention_notebook_renders_latex_and_passes_its_checks(lab, attention_run, tmp_path):
    assert attention_run.state()["errors"] == []

    # MathJax typesets asynchronously after the markdown is rendered.
    formulas = lab.wait_for(lambda: len(found := lab.css(".jp-MarkdownCell mjx-container")) >= MIN_FORMULAS and found,
                            60, f"MathJax to typeset at least {MIN_FORMULAS} formulas in the markdown cells")
    assert not lab.css(".jp-MarkdownCell mjx-merror"), "MathJax reported an error in a formula"
    untypeset = [cell.text[:200] for cell in lab.css(".jp-MarkdownCell .jp-RenderedMarkdown")
                   if "$$" in cell.text or re.search(r"\\frac|\\sqrt|\\operatorname", cell.text)]
    assert not untypeset, f"LaTeX left untypeset: {untypeset}"

    checks = [m.groupdict() for text in lab.output_texts() for m in CHECK_RE.finditer(text)]
    assert len(checks) >= MIN_CHECKS, f"expected at least {MIN_CHECKS} printed checks, found {checks}"
    for check in checks:
        deviation, tolerance = float(check["deviation"]), float(check["tolerance"])
        assert deviation <= tolerance, f"{check['name'].strip()}: deviation {deviation:g} > tolerance {tolerance:g}"
        assert check["verdict"] == "OK", check

    # The first printed checks, and the final state: section 1's attention formula, typeset, above
    # the cell that checks it against torch.
    first_check = next(o for o in lab.css(".jp-OutputArea-output") if CHECK_RE.search(o.get_attribute("textContent")))
    lab.scroll_into_view(first_check)
    first_check.screenshot(str(tmp_path / "first-checks.png"))
    displayed = [f for f in formulas if f.get_attribute("display") == "true"] or formulas
    lab.scroll_into_view(lab.driver.execute_script("return arguments[0].closest('.jp-Cell')", displayed[0]))
    print(f"{len(formulas)} typeset formulas; checks: "
          + "; ".join(f"{c['name'].strip()} {c['deviation']}<={c['tolerance']}" for c in checks))
    print(lab.timing_report())
