"""Write the README's Results section from the results files, so its numbers cannot drift.

Every script in ``benchmarks/`` writes, beside its Markdown results file, a JSON sidecar
(``_common.write_report``): the provenance of the run, the ``readme`` lines — the compact
tables and the verdict sentences the script computed, by the one rule of :mod:`mtlkit.stats` —
and the raw per-seed numbers. This script copies them into ``README.md`` between the markers
:data:`START` and :data:`END`, in the fixed order of :data:`SECTIONS`: for each, a heading, a
one-sentence description of what was measured (fixed text: no numbers, no verdicts), the
script's lines, the committed figures, and a source line (the results file, the command,
commit, seeds, device and date). Nothing between the markers is written by hand.

    python benchmarks/render_results.py            # rewrite the section of README.md
    python benchmarks/render_results.py --check    # exit 1 (and show where) if README.md differs

A section whose sidecar or figure is missing, or whose sidecar comes from a ``--quick`` run (a
smoke run, never a result), is rendered as *pending*: its heading, its description and the
command that measures it, and no numbers. ``--strict`` refuses (exit 2) while anything is
pending, listing what to rerun.

    python benchmarks/render_results.py --check --strict   # before a release: every section measured
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import RESULTS, ROOT, VERDICT_LINE  # noqa: I001  (adds the checkout to sys.path)
from mtlkit.utils import atomic_write_text

START, END = "<!-- results:start -->", "<!-- results:end -->"
README = ROOT / "README.md"


@dataclass(frozen=True)
class Section:
    """One results file in the README: ``stem`` names ``<stem>.md`` and its ``<stem>.json`` sidecar."""

    stem: str
    command: str  # the arguments of the run that writes it (the README's numbers come from that run)
    heading: str
    description: str  # what was measured: fixed text, so no numbers and no verdicts
    figures: tuple[str, ...] = ()  # files in the results folder shown below the lines
    environment: str = ""  # variables the command runs with, e.g. "ATEN_CPU_CAPABILITY=default"

    @property
    def command_line(self) -> str:
        """The full command, as the README and the rerun hints show it."""
        return f"{self.environment + ' ' if self.environment else ''}python benchmarks/{self.command}"


SECTIONS = (
    Section("train_throughput-cpu", "train_throughput.py",
            "Training throughput",
            "Samples per CPU-second of the kit's trainer against the common per-sample data-loader loop and "
            "against the bound of pre-made batches, for every model with and without the behaviour sequence."),
    Section("expert_mix-cpu", "expert_mix.py",
            "The expert mix of MMoE and PLE",
            "The bound of one training step of MMoE and PLE with the former einsum mix of the experts and with the "
            "broadcast sum that replaced it, in interleaved rounds."),
    Section("compare_models-movielens-100k-cpu", "compare_models.py --data movielens-100k --threads 1",
            "Every model against SingleTask on MovieLens-100K",
            "Test metrics of the shared models and of one network per task, trained on the same data for the "
            "same short budget and compared seed by seed, with a closed-form bias model for the rating."),
    Section("compare_models-synthetic-funnel-cpu", "compare_models.py --data synthetic-funnel --threads 1",
            "Every model against SingleTask on the synthetic funnel",
            "The same comparison on the synthetic funnel, where every seed draws a new world."),
    Section("transfer-cpu", "reproduce_transfer.py",
            "When does sharing help?",
            "Shared-bottom, MMoE and PLE against single-task models on the funnel, over the relatedness of the "
            "tasks and the share of users whose purchase labels are observed.",
            ("transfer-cpu.png",)),
    Section("transfer-conversion-cpu",
            "reproduce_transfer.py --sparse-task conversion --fractions 1.0 0.3 --models single shared-bottom mmoe",
            "When does sharing help the conversion task?",
            "The same experiment with the conversion task (buy given click, observed on clicked impressions) as "
            "the sparse task: unlike the entire-space purchase, it does not contain the click, so only the "
            "relatedness of the two tasks ties it to the click task.",
            ("transfer-conversion-cpu.png",)),
    Section("weighting_quality-cpu", "weighting_quality.py --threads 1",
            "Task balancing",
            "Every weighting strategy training the same MMoE on the funnel: validation metrics, the effective "
            "step size, and the difference to equal weighting seed by seed."),
    Section("weighting_cost-cpu", "weighting_cost.py --threads 1",
            "Cost of task balancing per step",
            "The time of one training step of each strategy relative to equal weighting, on a small "
            "shared-bottom network."),
    Section("uncertainty-cpu", "reproduce_uncertainty.py --threads 1",
            "Uncertainty weighting (Kendall et al., CVPR)",
            "The noise levels learned by uncertainty weighting on regression tasks of known noise, against the "
            "true ones and against the model's own training error."),
    Section("esmm-cpu", "reproduce_esmm.py --threads 1",
            "ESMM (Ma et al., SIGIR)",
            "A conversion model trained on clicked impressions against ESMM, both scored on every test "
            "impression against the generator's true conversion probability."),
    Section("esmm-generic-kernels-cpu",
            "reproduce_esmm.py --threads 1 --output benchmarks/results/esmm-generic-kernels-cpu.md",
            "ESMM with torch's generic CPU kernels",
            "The same script, commit and seeds with torch's generic CPU kernels instead of the vector kernels of this "
            "CPU: only the float rounding of the arithmetic differs, as between two machines. Reruns on one machine "
            "are bit-identical; set against the section above, this shows how far rounding alone moves the result.",
            environment="ATEN_CPU_CAPABILITY=default"),
    Section("mmoe_synthetic-cpu", "reproduce_mmoe_synthetic.py --threads 1",
            "MMoE synthetic experiment (Ma et al., KDD)",
            "Test error of shared-bottom, MMoE and PLE on tasks of controlled correlation, with the paper's "
            "model sizes and learning-rate grid.",
            ("mmoe_synthetic-cpu.png",)),
    Section("census-cpu", "reproduce_census.py --threads 1",
            "UCI Census-Income (KDD)",
            "The MMoE paper's real-data benchmark, both task pairs, every architecture matched to the shared "
            "bottom's parameter count, against a gradient-boosted tree per task."),
    Section("census-large-cpu", "reproduce_census.py --capacity large --pairs income-marital --threads 1",
            "UCI Census-Income with wider networks",
            "The same protocol with wider embeddings, layers and experts, again at matched parameter counts."),
    Section("reproduce_cold_start-synthetic-funnel-cpu", "reproduce_cold_start.py --data synthetic-funnel --threads 1",
            "Language model for cold start, synthetic funnel",
            "A frozen sentence encoder with MMoE experts against ID models, on items launched after the "
            "training period."),
    Section("reproduce_cold_start-movielens-100k-cpu", "reproduce_cold_start.py --data movielens-100k --epochs 3 --threads 1",
            "Language model for cold start, MovieLens-100K",
            "The same models on the movies first rated after the training period."),
    Section("adversarial-cpu", "reproduce_adversarial.py --threads 1",
            "Adversarial tasks: gradient reversal (Ganin & Lempitsky, ICML)",
            "What fresh probes recover of a user attribute that is never a model input, and what the main tasks "
            "pay, as the strength of the gradient reversal grows."),
    Section("embedding_throughput-cpu", "embedding_throughput.py --threads 1",
            "Item-text embedding",
            "Titles embedded per CPU-second by the default sentence encoder, with an empty and with a warm "
            "embedding cache."),
    Section("notebook_runtime-cpu", "notebook_runtime.py",
            "Notebook runtime",
            "Kernel time of every notebook run top to bottom with its quick parameters."),
)


def problems(results: Path = RESULTS, sections: Sequence[Section] = SECTIONS) -> list[str]:
    """What keeps the section from being rendered: missing sidecars or figures, and sidecars of
    ``--quick`` runs, each with the command to rerun. Empty when everything is there."""
    found = []
    for section in sections:
        sidecar = results / f"{section.stem}.json"
        rerun = f"rerun `{section.command_line}`"
        if not sidecar.is_file():
            found.append(f"{shown(sidecar)} is missing; {rerun}")
            continue
        command = json.loads(sidecar.read_text(encoding="utf-8"))["provenance"]["command"]
        if "--quick" in command.strip("`").split():
            found.append(f"{shown(sidecar)} comes from a --quick smoke run; {rerun}")
        found += [f"{shown(results / name)} is missing; {rerun}" for name in section.figures
                  if not (results / name).is_file()]
    return found


def pending(results: Path = RESULTS, sections: Sequence[Section] = SECTIONS) -> list[Section]:
    """The sections rendered as pending: their sidecar or figure is missing, or from a ``--quick`` run."""
    return [section for section in sections if problems(results, [section])]


def shown(path: Path) -> str:
    """``path`` relative to the checkout where it lies inside it."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def seeds_text(seeds: Sequence[int] | None) -> str:
    """``"seeds 0–4"`` for a consecutive run of seeds, else the list; "" without seeds."""
    if not seeds:
        return ""
    if list(seeds) == list(range(seeds[0], seeds[0] + len(seeds))) and len(seeds) > 1:
        return f"seeds {seeds[0]}–{seeds[-1]}"
    return "seeds " + ", ".join(map(str, seeds))


def pending_lines(section: Section) -> list[str]:
    """A section not measured yet (see :func:`problems`): what it will show and how to measure it."""
    return [f"### {section.heading}", "", section.description, "",
            f"_Pending: not yet measured with a recorded provenance; run `{section.command_line}`._"]


def section_lines(section: Section, record: dict[str, Any], link: str) -> list[str]:
    """One section: heading, description, the script's README lines, figures, source line.

    ``link`` is the results folder as the README links it (relative to the README).
    """
    provenance = record["provenance"]
    source = [f"[`{section.stem}.md`]({link}/{section.stem}.md)", provenance["command"],
              f"commit {provenance['commit']}" + (" (with uncommitted changes)" if provenance["dirty"] else ""),
              seeds_text(provenance["seeds"]), provenance["device"], provenance["date"]]
    lines = [f"### {section.heading}", "", section.description, "", *record["readme"], ""]
    lines += [line for name in section.figures for line in (f"![{section.heading}]({link}/{name})", "")]
    lines.append("Source: " + " · ".join(part for part in source if part) + ".")
    return lines


def render_block(results: Path = RESULTS, readme: Path = README, sections: Sequence[Section] = SECTIONS) -> str:
    """The text between the markers (with them), from the sidecars in ``results``."""
    link = Path(os.path.relpath(results, readme.parent)).as_posix()
    lines = [START, "",
             f"Verdicts: {VERDICT_LINE.removeprefix('verdicts: ')}.", ""]
    for section in sections:
        if problems(results, [section]):
            lines += [*pending_lines(section), ""]
            continue
        record = json.loads((results / f"{section.stem}.json").read_text(encoding="utf-8"))
        lines += [*section_lines(section, record, link), ""]
    return "\n".join([*lines, END])


def rewrite(text: str, block: str) -> str:
    """``text`` with everything from :data:`START` to :data:`END` replaced by ``block``.

    Raises:
        ValueError: the markers are not both there exactly once, in that order.
    """
    if text.count(START) != 1 or text.count(END) != 1 or text.index(START) > text.index(END):
        raise ValueError(f"the README must hold {START} and then {END}, each exactly once")
    return text[:text.index(START)] + block + text[text.index(END) + len(END):]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 where the README differs")
    parser.add_argument("--readme", type=Path, default=README, help="the README to rewrite or check")
    parser.add_argument("--results", type=Path, default=RESULTS, help="the folder of results files and sidecars")
    parser.add_argument("--strict", action="store_true", help="exit 2 while any section is pending")
    args = parser.parse_args(argv)

    found = problems(args.results)
    if found:
        print(("cannot render" if args.strict else "pending sections of") + " the README's Results section "
              "until these are rerun:\n" + "\n".join(f"- {problem}" for problem in found), file=sys.stderr)
        if args.strict:
            return 2
    current = args.readme.read_text(encoding="utf-8")
    try:
        expected = rewrite(current, render_block(args.results, args.readme))
    except ValueError as error:
        print(f"{args.readme}: {error}", file=sys.stderr)
        return 2
    if not args.check:
        if expected != current:
            atomic_write_text(args.readme, expected)
        print(f"{args.readme}: Results section written from {len(SECTIONS) - len(pending(args.results))} "
              f"results files ({len(pending(args.results))} sections pending)")
        return 0
    if expected == current:
        print(f"{args.readme}: the Results section matches the results files")
        return 0
    diff = list(difflib.unified_diff(current.splitlines(), expected.splitlines(), str(args.readme),
                                     "rendered from the results files", n=0, lineterm=""))
    print(f"{args.readme} differs from what the results files give (run "
          "`python benchmarks/render_results.py`; never edit between the markers by hand):\n"
          + "\n".join(diff[:24]) + ("\n…" if len(diff) > 24 else ""))
    return 1


if __name__ == "__main__":
    sys.exit(main())
