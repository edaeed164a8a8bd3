"""Every launch path installs what a notebook needs: Colab's install cell, Binder and a local set-up.

On Colab a notebook arrives alone and its install cell is the only installer. The main test
runs each notebook's install cell with a stand-in ``google.colab`` module and a captured
``subprocess.run``, resolves what the captured ``pip install`` commands would install (mtlkit's
dependencies and extras read from this checkout's pyproject.toml, everything else from the
installed packages' metadata, ``--no-deps`` honoured) and checks that it covers every module
the notebook can import: its own imports, and everything those reach inside mtlkit — also
imports inside functions (``from peft import ...`` when LoRA is asked for) and packages
located with ``importlib.util.find_spec`` (the offline text model). The kernel itself
(ipykernel and what it needs) is the only thing assumed present.

The rest checks the one source of the repository and branch (``[tool.mtlkit]``), and that
requirements.txt, scripts/with-env.sh and binder/ install the same optional parts.
"""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import importlib.util
import json
import re
import subprocess
import sys
import types
from collections.abc import Iterable
from functools import cache
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
PACKAGE = ROOT / "mtlkit"
KERNEL = "ipykernel"  # the one distribution a notebook's kernel always has


def _load_script(name: str) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the script runs
    spec.loader.exec_module(module)
    return module


launch_links = _load_script("launch_links")
LAUNCH = launch_links.read_launch(ROOT)


@cache
def pyproject() -> dict:
    return launch_links.tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _code_cells(path: Path) -> list[str]:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]


def notebook_code(path: Path) -> list[str]:
    """The code cells a learner runs after the install cell (which imports only Colab's own modules)."""
    return [s for s in _code_cells(path) if not s.startswith(launch_links.INSTALL_MARKER)]


def install_source(path: Path) -> str:
    sources = [s for s in _code_cells(path) if s.startswith(launch_links.INSTALL_MARKER)]
    assert len(sources) == 1, f"{path.name}: expected one install cell starting {launch_links.INSTALL_MARKER!r}"
    return sources[0]


# --------------------------------------------------------------------------- what a notebook imports
def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _guarded(handlers: list[ast.ExceptHandler]) -> bool:
    """A try whose except catches ImportError: its imports are optional."""
    return any(h.type is not None and re.search(r"\b(ImportError|ModuleNotFoundError)\b", ast.unparse(h.type))
               for h in handlers)


def _imports(tree: ast.AST, package: str | None) -> set[str]:
    """Dotted module names imported anywhere in ``tree`` (function bodies too), skipping
    ``if TYPE_CHECKING:`` blocks and imports guarded by ``except ImportError``; a string
    constant passed to ``find_spec`` counts as an import of that module."""
    constants = {t.id: n.value.value for n in getattr(tree, "body", []) if isinstance(n, ast.Assign)
                 and isinstance(n.value, ast.Constant) and isinstance(n.value.value, str)
                 for t in n.targets if isinstance(t, ast.Name)}  # fmt: skip
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if _is_type_checking(node) or (isinstance(node, ast.Try) and _guarded(node.handlers)):
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = (package or "").split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
        elif isinstance(node, ast.Call) and ast.unparse(node.func).endswith("find_spec") and node.args:
            argument = node.args[0]
            if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
                found.add(argument.value)
            elif isinstance(argument, ast.Name) and argument.id in constants:
                found.add(constants[argument.id])
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _mtlkit_file(module: str) -> Path | None:
    """The source file of an mtlkit module (None: a name imported from a module, not a module)."""
    path = ROOT.joinpath(*module.split("."))
    for candidate in (path / "__init__.py", path.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def _defining_module(dotted: str) -> str | None:
    """Where ``from package import name`` finds ``name``: the module that defines it. Packages
    such as ``mtlkit.data`` re-export lazily (PEP 562 ``__getattr__``), so ask the object."""
    package, _, name = dotted.rpartition(".")
    try:
        value = getattr(importlib.import_module(package), name)
    except (ImportError, AttributeError):
        return None
    defined_in = value.__name__ if isinstance(value, types.ModuleType) else getattr(value, "__module__", None)
    return defined_in if isinstance(defined_in, str) and defined_in.split(".")[0] == "mtlkit" else None


@cache
def _mtlkit_reach(module: str) -> frozenset[str]:
    """Every module an mtlkit module can import, following mtlkit's own modules transitively."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        file = _mtlkit_file(name)
        if file is None:
            defined_in = _defining_module(name)
            if defined_in is not None:
                todo.append(defined_in)
            continue
        package = name if file.name == "__init__.py" else name.rpartition(".")[0]
        parents = [".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)]  # importing a.b.c runs a, a.b
        for imported in _imports(ast.parse(file.read_text(encoding="utf-8")), package) | set(parents):
            if imported.split(".")[0] == "mtlkit":
                todo.append(imported)
            else:
                seen.add(imported)
    return frozenset(seen)


def external_modules(sources: Iterable[str]) -> set[str]:
    """Top-level names of the non-standard-library modules ``sources`` can import, via mtlkit too."""
    reached: set[str] = set()
    for source in sources:
        for module in _imports(ast.parse(source), None):
            reached |= _mtlkit_reach(module) if module.split(".")[0] == "mtlkit" else {module}
    tops = {name.split(".")[0] for name in reached}
    return {top for top in tops if top and top not in sys.stdlib_module_names and top not in ("mtlkit", "__future__")}


# --------------------------------------------------------------------------- what pip would install
def _requirements_of(requirements: Iterable[str], extras: Iterable[str]) -> list[Requirement]:
    """The requirements that apply here for the given extras (markers evaluated)."""
    out = []
    for text in requirements:
        requirement = Requirement(text)
        marker = requirement.marker
        if marker is None or any(marker.evaluate({"extra": extra}) for extra in (*extras, "")):
            out.append(requirement)
    return out


def _mtlkit_requirements(extras: Iterable[str]) -> list[Requirement]:
    project = pyproject()["project"]
    optional = project["optional-dependencies"]
    unknown = sorted(set(extras) - set(optional))
    assert not unknown, f"extras {unknown} are not in pyproject.toml's [project.optional-dependencies] {sorted(optional)}"
    return _requirements_of([*project["dependencies"], *(r for e in extras for r in optional[e])], ())


@cache
def _requires(name: str) -> tuple[str, ...]:
    """The declared requirements of an installed distribution (none when it is not installed
    here, e.g. another platform's dependency: nothing to follow)."""
    try:
        return tuple(importlib.metadata.requires(name) or ())
    except importlib.metadata.PackageNotFoundError:
        return ()


def installed_closure(requirements: Iterable[Requirement], follow: bool = True) -> set[str]:
    """Canonical names of the distributions pip installs for ``requirements`` (with their
    dependencies unless ``follow`` is False), resolved through this environment's metadata."""
    names: set[str] = set()
    todo = list(requirements)
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        if name == "mtlkit":
            todo.extend(_mtlkit_requirements(requirement.extras))
            continue
        if name in names:
            continue
        names.add(name)
        if not follow:
            continue
        todo.extend(_requirements_of(_requires(requirement.name), requirement.extras))
    return names


def pip_installs(commands: list[list[str]]) -> set[str]:
    """What the captured ``python -m pip install ...`` commands install, the kernel included."""
    names = installed_closure([Requirement(KERNEL)])
    for argv in commands:
        assert argv[:4] == [sys.executable, "-m", "pip", "install"], f"not a pip install of this kernel's Python: {argv}"
        options = [a for a in argv[4:] if a.startswith("-")]
        assert set(options) <= {"--quiet", "--no-deps"}, f"unexpected pip options {options}"
        for spec in (a for a in argv[4:] if not a.startswith("-")):
            requirement = Requirement(spec)
            if canonicalize_name(requirement.name) == "mtlkit":
                assert requirement.url == LAUNCH.pip_url, (
                    f"installs mtlkit from {requirement.url}, not from [tool.mtlkit]'s {LAUNCH.pip_url}"
                )
            names |= installed_closure([requirement], follow="--no-deps" not in options)
    return names


@cache
def _packages_distributions() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()  # scans every installed distribution: once


def distributions_of(module: str) -> set[str]:
    """The distributions that provide top-level ``module`` in this environment."""
    providers = {canonicalize_name(d) for d in _packages_distributions().get(module, [])}
    assert providers, f"no installed distribution provides the module {module!r}; install it to check coverage"
    return providers


# --------------------------------------------------------------------------- running the install cell
def run_install_cell(source: str, monkeypatch: pytest.MonkeyPatch, *, on_colab: bool) -> tuple[list[list[str]], int]:
    """Execute an install cell; returns the captured subprocess commands and how many times it
    enabled Colab's custom widget manager."""
    commands: list[list[str]] = []
    enabled: list[bool] = []

    def fake_run(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess:
        assert kwargs.get("check") is True, "an install must fail loudly (check=True)"
        commands.append(list(argv))
        return subprocess.CompletedProcess(argv, 0)

    monkeypatch.setattr(subprocess, "run", fake_run)
    if on_colab:
        google, colab = types.ModuleType("google"), types.ModuleType("google.colab")
        output = types.ModuleType("google.colab.output")
        output.enable_custom_widget_manager = lambda: enabled.append(True)
        colab.output, google.colab = output, colab
        for name, module in (("google", google), ("google.colab", colab), ("google.colab.output", output)):
            monkeypatch.setitem(sys.modules, name, module)
    else:
        for name in ("google.colab", "google.colab.output"):
            monkeypatch.delitem(sys.modules, name, raising=False)
    exec(compile(source, "<install cell>", "exec"), {"__name__": "__main__"})  # noqa: S102
    return commands, len(enabled)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_colab_install_cell_covers_what_the_notebook_imports(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = install_source(path)
    commands, enabled = run_install_cell(source, monkeypatch, on_colab=True)
    assert commands, f"{path.name}: the install cell installs nothing on Colab"
    assert enabled == 1, f"{path.name}: the install cell must enable Colab's custom widget manager once (ipywidgets 8)"
    installed = pip_installs(commands)
    missing = {module: sorted(distributions_of(module)) for module in sorted(external_modules(notebook_code(path)))
               if not distributions_of(module) & installed}  # fmt: skip
    extras = launch_links.cell_extras(source)
    assert not missing, (
        f"{path.name}: on Colab, mtlkit{list(extras) or ''} would leave these imports unsatisfied "
        f"(module: distributions): {missing}; add the extra that provides them to the cell's EXTRAS"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_install_cell_does_nothing_off_colab(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    commands, enabled = run_install_cell(install_source(path), monkeypatch, on_colab=False)
    assert commands == [] and enabled == 0, f"{path.name}: the install cell acted outside Colab: {commands}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_install_cell_asks_only_for_the_extras_it_needs(path: Path) -> None:
    """An extra is installed only where the notebook reaches a module that it alone provides."""
    extras = launch_links.cell_extras(install_source(path))
    modules = external_modules(notebook_code(path))
    providers = set().union(*(distributions_of(m) for m in modules)) if modules else set()
    base = installed_closure(_mtlkit_requirements(()))
    for extra in extras:
        adds = installed_closure(_mtlkit_requirements((extra,))) - base
        assert adds & providers, f"{path.name}: installs the extra {extra!r}, whose packages it never imports"


def test_the_analysis_sees_lazy_imports_and_find_spec() -> None:
    """The closure reaches peft (imported inside a function) and the text model (find_spec)."""
    from mtlkit.data.text import DEFAULT_TEXT_MODEL_PACKAGE

    assert {"peft", "transformers"} <= external_modules(["from mtlkit.models import build_model"])

    assert DEFAULT_TEXT_MODEL_PACKAGE in external_modules(["from mtlkit.data import embed_texts"])
    assert "peft" not in external_modules(["from mtlkit.attention import scaled_dot_product_attention"])


# --------------------------------------------------------------------------- one source, every installer
def test_launch_links_agree_with_pyproject() -> None:
    stale = launch_links.out_of_date(ROOT)
    assert not stale, (
        f"launch links or install cells disagree with [tool.mtlkit] in pyproject.toml in "
        f"{[str(p.relative_to(ROOT)) for p in stale]}: run `make launch-links`"
    )


def test_a_fork_changes_one_place(tmp_path: Path) -> None:
    """Changing [tool.mtlkit] re-points every badge and install cell, and nothing else."""
    for name in ("pyproject.toml", *launch_links.TEXT_FILES):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text((ROOT / name).read_text(encoding="utf-8"), encoding="utf-8")
    for path in NOTEBOOKS:
        (tmp_path / "notebooks" / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    pyproject_file = tmp_path / "pyproject.toml"
    pyproject_file.write_text(pyproject_file.read_text(encoding="utf-8").replace(
        f'repository = "{LAUNCH.repository}"', 'repository = "someone/fork"').replace(
        f'branch = "{LAUNCH.branch}"', 'branch = "teaching-2027"'), encoding="utf-8")  # fmt: skip
    fork = launch_links.read_launch(tmp_path)
    assert (fork.repository, fork.branch) == ("someone/fork", "teaching-2027")
    changed = launch_links.out_of_date(tmp_path)
    assert set(changed) >= {tmp_path / "notebooks" / p.name for p in NOTEBOOKS} | {tmp_path / "README.md"}
    for path, text in changed.items():
        assert LAUNCH.repository not in text, f"{path.name} still names {LAUNCH.repository}"
        if path.suffix == ".ipynb":
            source = "".join("".join(cell["source"]) for cell in json.loads(text)["cells"])
            assert 'REPO, BRANCH = "someone/fork", "teaching-2027"' in source
            assert "colab.research.google.com/github/someone/fork/blob/teaching-2027/notebooks/" in source


def test_read_launch_names_a_bad_key(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.mtlkit]\nrepository = "no-slash"\nbranch = "main"\n')
    with pytest.raises(ValueError, match=r"\[tool.mtlkit\] repository"):
        launch_links.read_launch(tmp_path)


def test_text_model_package_is_the_one_mtlkit_reads() -> None:
    from mtlkit.data.text import DEFAULT_TEXT_MODEL_PACKAGE

    assert canonicalize_name(LAUNCH.text_model) == canonicalize_name(DEFAULT_TEXT_MODEL_PACKAGE), (
        f"[tool.mtlkit] text-model {LAUNCH.text_model!r} is not the package mtlkit reads ({DEFAULT_TEXT_MODEL_PACKAGE})"
    )


@pytest.mark.parametrize("script", ["scripts/with-env.sh", "binder/postBuild"])
def test_local_and_binder_install_the_text_model_without_its_dependencies(script: str) -> None:
    text = (ROOT / script).read_text(encoding="utf-8")
    assert re.search(rf"pip install (-q )?--no-deps {re.escape(LAUNCH.text_model)}\b", text), (
        f"{script} must install {LAUNCH.text_model} with --no-deps, as the Colab install cell does"
    )


# Extras that no notebook uses, so local set-ups and Binder need not install them:
# parquet only lets load_interactions read a .parquet log (the notebooks bring CSV or a DataFrame).
EXTRAS_NO_NOTEBOOK_NEEDS = {"parquet"}


def test_requirements_txt_covers_the_package_and_every_extra() -> None:
    """Local set-ups and Binder install requirements.txt, so it must hold what every notebook may need."""
    listed = {canonicalize_name(Requirement(line).name) for line in (ROOT / "requirements.txt").read_text().splitlines()
              if line.strip() and not line.startswith(("#", "-"))}  # fmt: skip
    project = pyproject()["project"]
    wanted = {canonicalize_name(Requirement(r).name) for r in project["dependencies"]}
    for extra, requirements in project["optional-dependencies"].items():
        if extra not in EXTRAS_NO_NOTEBOOK_NEEDS:
            wanted |= {canonicalize_name(Requirement(r).name) for r in requirements}
    assert wanted <= listed, f"requirements.txt lacks {sorted(wanted - listed)} (from pyproject.toml)"


def test_license_is_an_spdx_expression() -> None:
    """A `project.license` table is deprecated (setuptools warns on every install): PEP 639's SPDX string."""
    license_value = pyproject()["project"]["license"]
    assert isinstance(license_value, str) and re.fullmatch(r"[A-Za-z0-9.+-]+( (AND|OR|WITH) [A-Za-z0-9.+-]+)*",
                                                           license_value), license_value  # fmt: skip
