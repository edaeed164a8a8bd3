"""What does each task-balancing strategy cost per training step, relative to equal weighting?

Every strategy trains the same small shared-bottom MLP on the same random batch; a step is
``zero_grad → forward → strategy.backward → optimizer.step``. Strategies, with and without
gradient diagnostics, are timed in interleaved rounds (so a busy machine slows them all
alike); the table gives the median step time and the median per-round ratio to equal
weighting, and each strategy's step time is compared with equal weighting's **paired by
round** by the one rule of :mod:`mtlkit.stats` ("slower", "faster" or within noise).

    python benchmarks/weighting_cost.py            # full run, writes benchmarks/results/
    python benchmarks/weighting_cost.py --quick    # smoke test (seconds, 1 thread), prints only
    python benchmarks/weighting_cost.py --device cuda --tasks 2 3

The full run writes ``benchmarks/results/weighting_cost-<device>.md`` (device, torch
version and date in its header). The model is defined here, so the benchmark depends on
``mtlkit.weighting`` only.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from _common import VERDICT_LINE, benchmark_parser, compare, publish, set_threads, verdict_word  # noqa: I001
from mtlkit.weighting import WEIGHTINGS, make_weighting


@dataclass
class Setting:
    batch_size: int = 1024
    d_in: int = 64
    d_hidden: int = 256
    rounds: int = 7
    steps_per_round: int = 5
    warmup: int = 3


QUICK = Setting(batch_size=64, d_in=16, d_hidden=32, rounds=2, steps_per_round=2, warmup=1)


class SharedBottomMLP(nn.Module):
    """A shared two-layer bottom and a two-layer tower per task (binary logits)."""

    def __init__(self, task_names: tuple[str, ...], d_in: int, d_hidden: int) -> None:
        super().__init__()
        self.bottom = nn.Sequential(
            nn.Linear(d_in, d_hidden), nn.ReLU(), nn.Linear(d_hidden, d_hidden), nn.ReLU()
        )
        self.towers = nn.ModuleDict(
            {t: nn.Sequential(nn.Linear(d_hidden, d_hidden // 2), nn.ReLU(), nn.Linear(d_hidden // 2, 1))
             for t in task_names}
        )

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.bottom(x)  # (B, d_hidden)
        return {t: tower(h).squeeze(-1) for t, tower in self.towers.items()}  # (B,) each

    def shared_parameters(self) -> list[nn.Parameter]:
        return list(self.bottom.parameters())

    def last_shared_parameters(self) -> list[nn.Parameter]:
        return list(self.bottom[2].parameters())


def make_problem(n_tasks: int, setting: Setting, device: torch.device, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    task_names = tuple(f"task{i}" for i in range(n_tasks))
    torch.manual_seed(seed)
    model = SharedBottomMLP(task_names, setting.d_in, setting.d_hidden).to(device)
    x = torch.randn(setting.batch_size, setting.d_in, generator=generator).to(device)
    labels = (torch.rand(setting.batch_size, n_tasks, generator=generator) < 0.3).float().to(device)
    return task_names, model, x, labels


def time_strategies(n_tasks: int, setting: Setting, device: torch.device) -> dict[tuple[str, bool], list[float]]:
    """Milliseconds per step, one sample per round, for every (strategy, diagnostics)."""
    runs = {}
    for name in WEIGHTINGS:
        for diagnostics in (False, True):
            task_names, model, x, labels = make_problem(n_tasks, setting, device)
            strategy = make_weighting(name, task_names).to(device)
            optimizer = torch.optim.Adam([*model.parameters(), *strategy.parameters()], lr=1e-3)
            runs[name, diagnostics] = (task_names, model, x, labels, strategy, optimizer)

    def step(run, diagnostics: bool) -> None:
        task_names, model, x, labels, strategy, optimizer = run
        optimizer.zero_grad(set_to_none=True)
        logits = model(x)
        losses = {t: F.binary_cross_entropy_with_logits(logits[t], labels[:, i]) for i, t in enumerate(task_names)}
        strategy.backward(losses, model.shared_parameters(),
                          last_shared_parameters=model.last_shared_parameters(), diagnostics=diagnostics)
        optimizer.step()

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for (_, diagnostics), run in runs.items():
        for _ in range(setting.warmup):
            step(run, diagnostics)
    samples: dict[tuple[str, bool], list[float]] = {key: [] for key in runs}
    for _ in range(setting.rounds):  # interleaved, so a busy machine slows all alike
        for (name, diagnostics), run in runs.items():
            sync()
            start = time.perf_counter()
            for _ in range(setting.steps_per_round):
                step(run, diagnostics)
            sync()
            samples[name, diagnostics].append((time.perf_counter() - start) / setting.steps_per_round * 1e3)
    return samples


def slower(samples: dict[tuple[str, bool], list[float]], name: str, diagnostics: bool):
    """``name``'s ms per step against equal weighting's without diagnostics, paired by round
    ("helps" = faster: lower is better)."""
    return compare(samples[name, diagnostics], samples["equal", False], higher_is_better=False)


def markdown_table(n_tasks: int, samples: dict[tuple[str, bool], list[float]], *, detail: bool = True) -> list[str]:
    """Median ms/step (``detail``), the median over rounds of its ratio to equal weighting's, and
    the verdict paired by round."""
    base = samples["equal", False]
    columns = []
    for diagnostics in (False, True):
        suffix = " with diagnostics" if diagnostics else ""
        columns += ([f"ms/step{suffix}"] if detail else []) + [f"× equal{suffix}", f"paired by round{suffix}"]
    lines = [f"{n_tasks} tasks:" if not detail else f"#### {n_tasks} tasks", "",
             "| strategy | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(columns)]
    for name in WEIGHTINGS:
        cells = []
        for diagnostics in (False, True):
            values = samples[name, diagnostics]
            ratio = statistics.median(v / b for v, b in zip(values, base))
            verdict = ("—" if (name, diagnostics) == ("equal", False)
                       else verdict_word(slower(samples, name, diagnostics), "faster", "slower"))
            cells += ([f"{statistics.median(values):.2f}"] if detail else []) + [f"{ratio:.2f}", verdict]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def cost_sentence(n_tasks: int, samples: dict[tuple[str, bool], list[float]]) -> str:
    """Which strategies are slower than equal weighting per step (paired by round), and the range of
    the per-round ratios of those that need per-task gradients."""
    base = samples["equal", False]
    ratio = {name: statistics.median(v / b for v, b in zip(samples[name, False], base)) for name in WEIGHTINGS}
    verdicts = {name: verdict_word(slower(samples, name, False), "faster", "slower")
                for name in WEIGHTINGS if name != "equal"}
    needs = [name for name in WEIGHTINGS if WEIGHTINGS[name].requires_grads]
    return (
        f"- {n_tasks} tasks: slower than equal weighting per step, paired by round: "
        + (", ".join(f"{n} ({ratio[n]:.2f}×)" for n, v in verdicts.items() if v == "slower") or "none")
        + "; faster: " + (", ".join(f"{n} ({ratio[n]:.2f}×)" for n, v in verdicts.items() if v == "faster") or "none")
        + "; the others within noise. The strategies that need per-task gradients (" + ", ".join(needs)
        + f") cost {min(ratio[n] for n in needs):.2f}–{max(ratio[n] for n in needs):.2f}× a step of equal weighting."
    )


def main(argv: list[str] | None = None) -> str:
    parser = benchmark_parser(__doc__.splitlines()[0], "tiny model, few steps; print only",
                              device="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--tasks", type=int, nargs="+", default=None, help="task counts (default 2 3)")
    args = parser.parse_args(argv)
    set_threads(args.threads, args.quick)
    device = torch.device(args.device)
    setting = QUICK if args.quick else Setting()
    task_counts = args.tasks or ([2] if args.quick else [2, 3])

    samples = {n_tasks: time_strategies(n_tasks, setting, device) for n_tasks in task_counts}
    body, readme = [], ["Step time relative to equal weighting (median of the per-round ratios):", ""]
    for n_tasks, measured in samples.items():
        body += [*markdown_table(n_tasks, measured), ""]
        readme += [*markdown_table(n_tasks, measured, detail=False), ""]
    sentences = [cost_sentence(n_tasks, measured) for n_tasks, measured in samples.items()]
    report, _ = publish(
        "Cost of a training step per weighting strategy", device,
        [
            f"model: shared-bottom MLP ({setting.d_in} → {setting.d_hidden} → {setting.d_hidden}, "
            f"towers {setting.d_hidden} → {setting.d_hidden // 2} → 1), batch {setting.batch_size}, "
            f"Adam; median over {setting.rounds} interleaved rounds of {setting.steps_per_round} steps "
            "(× equal: median of the per-round ratios to equal weighting without diagnostics)",
            "a step is zero_grad + forward + strategy.backward + optimizer.step; "
            "\"with diagnostics\" also records per-task gradient norms and cosines",
            f"paired by round: the strategy's ms/step against equal weighting's (without diagnostics) of the same "
            f"round; {VERDICT_LINE}",
        ],
        [*body, *sentences], name="weighting_cost", quick=args.quick, output=args.output,
        readme=[*readme, *sentences],
        data={str(n_tasks): {f"{name}{' +diagnostics' if diagnostics else ''}": ms
                             for (name, diagnostics), ms in measured.items()} for n_tasks, measured in samples.items()},
    )
    return report


if __name__ == "__main__":
    main()
