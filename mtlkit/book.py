"""The learning path as a static site: every notebook executed with its quick parameters and
rendered to HTML, with an index page, so a student can read a notebook before running it.

    python -m mtlkit.book --out build/book                    # every notebook (``make book``)
    python -m mtlkit.book --out /tmp/book --notebooks 00_tour # some of them

Each notebook runs top to bottom with papermill in a fresh kernel of this interpreter — a
``python3`` kernelspec written to a temporary ``JUPYTER_PATH``, so a user-level kernel that
points at another Python is never picked — with ``notebooks/`` as its working directory (as in
JupyterLab) and this checkout first on its ``PYTHONPATH``; it writes only under
``<out>/runs/<name>`` (``MTLKIT_RUN_DIR``). nbconvert's HTML exporter renders the executed copy to
``<out>/<name>.html`` with the Markdown images embedded, and ``<out>/index.html`` lists every
notebook with its goal and how long it ran. A notebook that fails is still rendered, showing
the error, and marked in the index; the command then exits 1. The build time is printed.

:func:`kernel_home` and :func:`execute_notebook` are also what ``benchmarks/notebook_runtime.py``
runs notebooks with, and the notebook tests take their kernel from :func:`kernel_home`. papermill and nbconvert (the test tools in
requirements.txt) are imported only when used.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import html
import json
import os
import platform
import re
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["BookEntry", "build_book", "execute_notebook", "kernel_home", "main", "notebook_summary", "render_html"]

#: The checkout's notebooks (``mtlkit`` imported from a checkout: ``<root>/mtlkit`` and ``<root>/notebooks``).
NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOK_GLOB = "[0-9][0-9]_*.ipynb"


def kernel_home(folder: str | os.PathLike[str]) -> Path:
    """A ``JUPYTER_PATH`` folder whose ``python3`` kernel is this interpreter (created in ``folder``)."""
    folder = Path(folder)
    spec = folder / "kernels" / "python3"
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (ipykernel)", "language": "python", "metadata": {"debugger": True},
    }))  # fmt: skip
    return folder


def _set_environment(values: Mapping[str, str | None]) -> None:
    """Set environment variables; None removes one."""
    for key, value in values.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@contextlib.contextmanager
def _environment(values: Mapping[str, str | None]) -> Iterator[None]:
    """The environment variables ``values`` (None: removed) inside the block, restored after it."""
    saved = {key: os.environ.get(key) for key in values}
    try:
        _set_environment(values)
        yield
    finally:
        _set_environment(saved)


def execute_notebook(
    path: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    run_dir: str | os.PathLike[str],
    jupyter_path: str | os.PathLike[str],
    parameters: Mapping[str, Any] | None = None,
    timeout: int = 1800,
) -> float:
    """Run a notebook top to bottom with papermill; returns the wall seconds (kernel start included).

    Args:
        path: the notebook; its folder is the kernel's working directory.
        output: where the executed copy goes (written also when a cell fails).
        run_dir: the notebook's ``MTLKIT_RUN_DIR`` (everything it writes).
        jupyter_path: a folder from :func:`kernel_home`.
        parameters: papermill parameters (None: the notebook's quick defaults).
        timeout: seconds per cell.

    Raises:
        papermill.PapermillExecutionError: a cell failed (the output holds the traceback).
    """
    import papermill

    path = Path(path)
    checkout = str(Path(__file__).resolve().parents[1])
    environment = {
        "MTLKIT_RUN_DIR": str(run_dir),
        "JUPYTER_PATH": str(jupyter_path),
        "PYTHONPATH": os.pathsep.join(filter(None, [checkout, os.environ.get("PYTHONPATH")])),
        "MPLBACKEND": None,  # the kernel's inline backend draws the figures
    }
    start = time.perf_counter()
    with _environment(environment):
        papermill.execute_notebook(
            str(path), str(output), parameters=dict(parameters or {}), kernel_name="python3", cwd=str(path.parent),
            progress_bar=False, request_save_on_cell_execute=False, execution_timeout=timeout,
        )  # fmt: skip
    return time.perf_counter() - start


def render_html(executed: str | os.PathLike[str], target: str | os.PathLike[str], *,
                images_from: str | os.PathLike[str]) -> None:
    """Render an executed notebook to one self-contained HTML page (JupyterLab's look).

    Images the Markdown links to (paths relative to ``images_from``, the notebooks' folder) are
    embedded, so the page can be read anywhere; outputs are embedded already.
    """
    import nbformat
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="lab", embed_images=True)
    notebook = nbformat.read(str(executed), as_version=4)
    body, _ = exporter.from_notebook_node(notebook, resources={"metadata": {"path": str(images_from)}})
    Path(target).write_text(body, encoding="utf-8")


def notebook_summary(path: str | os.PathLike[str], max_chars: int = 240) -> tuple[str, str]:
    """(title, goal) of a notebook: its H1 title and the first sentence of its **Goal.** paragraph
    (cut at a word with "…" beyond ``max_chars``)."""
    cells = json.loads(Path(path).read_text(encoding="utf-8"))["cells"]
    first = "".join(cells[0]["source"]) if cells else ""
    title = next((line[2:].strip() for line in first.splitlines() if line.startswith("# ")), Path(path).stem)
    goal = re.search(r"\*\*Goal\.\*\*\s*(.+?)(?:\n\n|$)", first, re.S)
    text = " ".join(goal.group(1).split()) if goal else ""
    sentence = re.match(r"(.+?\.)(\s|$)", text)
    text = sentence.group(1) if sentence else text
    return title, text if len(text) <= max_chars else text[:max_chars].rsplit(" ", 1)[0] + " …"


@dataclass
class BookEntry:
    """One notebook of the book: where its page is and how its execution went."""

    name: str
    title: str
    goal: str
    seconds: float
    status: str  # "ok" or "failed: <first line of the error>"


def _plain(markdown: str) -> str:
    """Markdown inline code, emphasis and math markers removed, HTML-escaped (for the index)."""
    return html.escape(re.sub(r"[`*$]", "", markdown))


def write_index(out: Path, entries: Sequence[BookEntry], total_seconds: float) -> Path:
    """``out/index.html``: every notebook with its goal, run time and status."""
    rows = "\n".join(
        f'<tr><td><a href="{html.escape(e.name)}.html">{_plain(e.title)}</a><br><small>{_plain(e.goal)}</small></td>'
        f'<td class="n">{e.seconds:.0f} s</td><td>{html.escape(e.status)}</td></tr>'
        for e in entries
    )
    import torch

    built = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>mtlkit: the learning path, executed</title>
<style>body{{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;line-height:1.4}}
td{{padding:.4rem .6rem;vertical-align:top;border-bottom:1px solid #ddd}}td.n{{text-align:right;white-space:nowrap}}
small{{color:#555}}</style></head><body>
<h1>mtlkit: the learning path, executed</h1>
<p>Every notebook of <code>notebooks/</code>, run top to bottom with its quick parameters (the defaults of
its <code>parameters</code> cell) and rendered with its outputs, so it can be read before it is run.
Quick runs train small models briefly; each notebook says where its numbers need the full
parameters. Built {built} with Python {platform.python_version()} and torch {torch.__version__}
on {html.escape(_device_line())}, in {total_seconds:.0f} s.</p>
<table><thead><tr><th>notebook</th><th>run time</th><th>status</th></tr></thead><tbody>
{rows}
</tbody></table></body></html>
"""
    path = out / "index.html"
    path.write_text(page, encoding="utf-8")
    return path


def _device_line() -> str:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"a CPU ({platform.machine()}, {os.cpu_count()} cores)"


def build_book(out: str | os.PathLike[str], names: Sequence[str] | None = None, *,
               notebook_dir: str | os.PathLike[str] = NOTEBOOK_DIR, timeout: int = 1800) -> list[BookEntry]:
    """Execute and render the notebooks ``names`` (default: all) into ``out``; write the index.

    Returns:
        one :class:`BookEntry` per notebook, in order.

    Raises:
        ValueError: a name that is not a notebook of ``notebook_dir``.
    """
    notebook_dir, out = Path(notebook_dir), Path(out).resolve()  # the kernels run in notebook_dir
    available = {p.stem: p for p in sorted(notebook_dir.glob(NOTEBOOK_GLOB))}
    chosen = list(available) if names is None else list(names)
    unknown = [n for n in chosen if n not in available]
    if unknown or not chosen:
        raise ValueError(f"names must be notebooks of {notebook_dir} ({list(available)}), got {names!r}")
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mtlkit-book-") as work:
        jupyter = kernel_home(Path(work) / "jupyter")
        for name in chosen:
            executed = Path(work) / f"{name}.ipynb"
            begin = time.perf_counter()
            try:
                execute_notebook(available[name], executed, run_dir=out / "runs" / name, jupyter_path=jupyter,
                                 timeout=timeout)
                status = "ok"
            except Exception as error:  # noqa: BLE001  (render what ran, mark it, go on)
                first = str(error).strip().splitlines()[0][:160] if str(error).strip() else ""
                status = f"failed: {type(error).__name__}: {first}"
            seconds = time.perf_counter() - begin
            if executed.is_file():
                render_html(executed, out / f"{name}.html", images_from=notebook_dir)
            entries.append(BookEntry(name, *notebook_summary(available[name]), seconds, status))
            print(f"{name}: {status} in {seconds:.1f} s -> {out / (name + '.html')}", flush=True)
    write_index(out, entries, time.perf_counter() - start)
    return entries


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mtlkit.book", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("build") / "book", help="folder of the site (default build/book)")
    parser.add_argument("--notebooks", nargs="+", default=None, help="notebook names without .ipynb (default: all)")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per cell")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        entries = build_book(args.out, args.notebooks, timeout=args.timeout)
    except ValueError as error:
        print(f"mtlkit.book: {error}", file=sys.stderr)
        return 2
    failed = [e.name for e in entries if e.status != "ok"]
    print(f"book built in {time.perf_counter() - start:.0f} s ({len(entries)} notebooks"
          + (f", {len(failed)} failed: {', '.join(failed)}" if failed else "") + f"): {args.out / 'index.html'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
