"""Texts per second of the pretrained language-model item embedder, per device and batch size.

``mtlkit.data.text.embed_texts`` (all-MiniLM-L6-v2 by default: mean pooling, L2 norm) on
distinct synthetic item titles, with an empty embedding cache for every measurement (so
every text is really embedded; the model itself stays loaded after a warm-up call). The same
texts are then embedded once more from the now warm cache, which is what a repeated call
(a second epoch, a rerun) costs.

    python benchmarks/embedding_throughput.py            # CPU (and CUDA when present), writes results/
    python benchmarks/embedding_throughput.py --quick    # smoke test: 64 texts, prints only
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from _common import NOISE_NOTE, publish, set_threads  # noqa: I001
from mtlkit.data.synthetic import make_recsys_funnel
from mtlkit.data.text import embed_texts

BATCH_SIZES = (32, 64, 128, 256, 512)


def titles(n: int) -> list[str]:
    """``n`` distinct titles: the funnel's item titles with a running number (no cache hits)."""
    base = make_recsys_funnel(n_users=50, n_items=200, seed=0).items["title"].astype(str).tolist()
    return [f"{base[i % len(base)]} {i}" for i in range(n)]


def texts_per_second(texts: list[str], batch_size: int, device: str, model: str | None) -> dict[str, float]:
    """Texts per wall-clock second and per CPU-second of this process with an empty cache, and per
    wall-clock second when the same texts are embedded again from the warm cache.

    The CPU clock counts only this process's time, so on a CPU shared with other work it
    measures the embedder itself; on a GPU only the wall clock is meaningful.
    """

    def timed() -> tuple[float, float]:
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        wall, cpu = time.perf_counter(), time.process_time()
        embed_texts(texts, model_name_or_path=model, batch_size=batch_size, device=device, cache_dir=cache)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return len(texts) / (time.perf_counter() - wall), len(texts) / (time.process_time() - cpu)

    with tempfile.TemporaryDirectory() as cache:
        wall, cpu = timed()
        cached, _ = timed()
    return {"wall": wall, "cpu": cpu, "cached wall": cached}


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="64 texts, batch sizes 32 and 64; print only")
    parser.add_argument("--devices", nargs="+", default=None, help="default: cpu, and cuda when available")
    parser.add_argument("--texts", type=int, default=None, help="texts per measurement (default 2048)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=None)
    parser.add_argument("--model", default=None, help="model folder or Hub name (default: all-MiniLM-L6-v2)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    set_threads(args.threads, args.quick)
    devices = args.devices or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    n = args.texts or (64 if args.quick else 2048)
    batch_sizes = args.batch_sizes or ((32, 64) if args.quick else BATCH_SIZES)
    texts = titles(n)

    lines = ["| device | batch size | texts/s (wall) | texts per CPU-second | texts/s from the warm cache (wall) |",
             "|---|---:|---:|---:|---:|"]
    rates: dict[str, dict[int, dict[str, float]]] = {}
    for device in devices:
        texts_per_second(texts[:64], 32, device, args.model)  # warm-up: load the model, first kernels
        for batch_size in batch_sizes:
            rate = rates.setdefault(device, {})[batch_size] = texts_per_second(texts, batch_size, device, args.model)
            per_cpu = f"{rate['cpu']:,.0f}" if device == "cpu" else "—"
            lines.append(f"| {device} | {batch_size} | {rate['wall']:,.0f} | {per_cpu} | {rate['cached wall']:,.0f} |")
            print(lines[-1], flush=True)
    sentences = []
    for device, by_batch in rates.items():
        key = "cpu" if device == "cpu" else "wall"
        values = [rate[key] for rate in by_batch.values()]
        speedup = [rate["cached wall"] / rate["wall"] for rate in by_batch.values()]
        sentences.append(
            f"- {device}: {min(values):,.0f}–{max(values):,.0f} texts per {'CPU-' if key == 'cpu' else ''}second "
            f"over batch sizes {min(by_batch)}–{max(by_batch)} (the largest {max(values) / min(values) - 1:.0%} above "
            f"the smallest); from the warm cache the same texts come back {statistics.fmean(speedup):,.0f}× faster "
            "(wall clock), without running the model."
        )
    main_device = torch.device("cuda" if "cuda" in devices else "cpu")
    report, _ = publish(
        "Item-text embedding throughput (`embed_texts`, all-MiniLM-L6-v2)", main_device,
        [
            f"{n:,} distinct synthetic item titles (3–4 words) per measurement, max_length 128, "
            "fresh embedding cache each time, model loaded once beforehand; then the same texts again from that cache",
            f"torch threads {torch.get_num_threads()}; texts per CPU-second = texts / CPU time of "
            "this process (CPU rows only): unlike the wall clock, other work on the machine does "
            "not lower it",
            NOISE_NOTE,
        ],
        [*lines, "", *sentences], name="embedding_throughput", quick=args.quick, output=args.output,
        readme=[*lines, "", *sentences], data=rates,
    )
    return report


if __name__ == "__main__":
    main()
