"""The expert mix of MMoE and PLE: the former ``einsum`` against the package's broadcast sum.

The gated mix Σ_k g_k · e_k of :func:`mtlkit.models.experts.mix_experts` was first written as
``torch.einsum("bn,bnd->bd", gate, experts)``, which becomes a batched matrix product of B tiny
(1 × n)·(n × d) matrices; it is now ``(gate.unsqueeze(-1) * experts).sum(1)`` (equal up to float
rounding: ``tests/models/test_architectures.py``). This script measures what that changes for a whole
training step: the bound (c) of ``train_throughput.py`` — forward, backward and Adam on pre-made
batches — of MMoE and PLE without the behaviour sequence, with each mix, in interleaved rounds.

    python benchmarks/expert_mix.py             # batch 256 and 2048, writes benchmarks/results/
    python benchmarks/expert_mix.py --quick     # smoke test: one small setting, prints only
"""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Callable

import torch
from _common import NOISE_NOTE, benchmark_parser, publish, set_threads  # noqa: I001  (adds the checkout to sys.path)
from train_throughput import TASKS, Loop, make_data  # noqa: I001

from mtlkit.data import load_dataset
from mtlkit.models import build_model, mmoe, ple
from mtlkit.models.experts import mix_experts


def einsum_mix(gate: torch.Tensor, experts: torch.Tensor) -> torch.Tensor:
    """The former mix: ``(B, n)`` weights and ``(B, n, d)`` outputs → ``(B, d)`` by ``einsum``."""
    return torch.einsum("bn,bnd->bd", gate, experts)


MIXES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {"einsum": einsum_mix,
                                                                           "broadcast sum": mix_experts}
MODULES = (mmoe, ple)  # the modules that call mix_experts by name


def use_mix(mix: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
    for module in MODULES:
        module.mix_experts = mix


def bound(model_name: str, batch_size: int, n_samples: int, rounds: int) -> dict[str, list[float]]:
    """Samples per CPU-second of the bound with each mix, one value per timed round."""
    base = load_dataset("synthetic-funnel", size="quick", seed=0, tasks=TASKS, seq_len=20)
    data = make_data(base, n_samples, with_sequence=False)
    torch.manual_seed(0)
    reference = build_model(model_name, data.schema, keep_attention_weights=False)
    premade = list(data.train.batches(batch_size, shuffle=True, generator=torch.Generator().manual_seed(0)))
    loops = {name: Loop(copy.deepcopy(reference), data, torch.device("cpu"), 1e-3) for name in MIXES}
    speeds: dict[str, list[float]] = {name: [] for name in MIXES}
    try:
        for round_ in range(rounds + 1):  # round 0 warms up
            for name, mix in MIXES.items():
                use_mix(mix)
                start = time.process_time()
                for batch in premade:
                    loops[name].step(batch)
                if round_ > 0:
                    speeds[name].append(n_samples / (time.process_time() - start))
    finally:
        use_mix(mix_experts)
    return speeds


def main(argv: list[str] | None = None) -> str:
    parser = benchmark_parser(__doc__.splitlines()[0], "one small setting, one round; print only")
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds (default 5; 1 with --quick)")
    args = parser.parse_args(argv)
    set_threads(args.threads, True)  # one torch thread: samples per CPU-second
    rounds = args.rounds or (1 if args.quick else 5)
    settings = [("mmoe", 256)] if args.quick else [(m, b) for m in ("mmoe", "ple") for b in (256, 2048)]
    lines = ["| model | batch | einsum (samples per CPU-second) | broadcast sum | speed-up |", "|---|---:|---:|---:|---:|"]
    data = []
    for model_name, batch_size in settings:
        n_samples = 2048 if args.quick else max(16384, 2 * batch_size)
        speeds = bound(model_name, batch_size, n_samples, rounds)
        ratio = statistics.median(b / a for a, b in zip(speeds["einsum"], speeds["broadcast sum"]))
        lines.append(f"| {model_name} | {batch_size:,} | {statistics.median(speeds['einsum']):,.0f} | "
                     f"{statistics.median(speeds['broadcast sum']):,.0f} | {ratio:.2f}× |")
        print(lines[-1], flush=True)
        data.append({"model": model_name, "batch": batch_size, "samples": n_samples, **speeds})
    report, _ = publish(
        "The expert mix of MMoE and PLE: the bound of a training step with einsum and with the broadcast sum",
        torch.device("cpu"),
        ["data: synthetic-funnel (quick world), tasks " + ", ".join(TASKS) + ", no behaviour sequence; "
         "max(16,384, 2 × batch) training rows per round",
         "models: default configs; equal weighting, Adam, fp32; the bound (c) of train_throughput.py: "
         "forward, backward and optimiser step on pre-made batches",
         f"clock: CPU time of this process with one torch thread; median over {rounds} interleaved rounds after a "
         "warm-up round; speed-up = median of the per-round ratios",
         NOISE_NOTE],
        lines, name="expert_mix", quick=args.quick, output=args.output, readme=lines, data=data,
    )
    return report


if __name__ == "__main__":
    main()
