"""Data parallelism with PyTorch's own engine (``torchrun`` + ``DistributedDataParallel``).

Every rank holds the full data set and draws the *same* shuffled order; each global batch
of ``batch_size`` samples is split into N contiguous shards, one per rank. With masked task
losses, averaging the ranks' masked means is *not* the global masked mean (ranks observe
different numbers of labels). So each rank all-reduces its per-task loss sums and label
counts (one small all-reduce per step) and back-propagates

    L_t^(r) = N · (Σ_{i∈shard r} m_it l_it) / (Σ_{all ranks} Σ_i m_it),

whose gradient, averaged over ranks by DDP, is exactly the gradient of the global masked
mean (:func:`global_masked_means`). The value the weighting strategy sees is the global mean
itself (the local term plus a detached correction), so loss-dependent weights (uncertainty,
DWA) are identical on every rank. Hence N ranks with global batch B reproduce
single-process training with batch B (up to float rounding), provided the model has no
batch-dependent layers and dropout is off (with dropout the two runs draw different masks
and agree only in distribution). A last global batch with fewer samples than ranks is
dropped (a rank would get none).

Validation predictions are computed on shards and all-gathered (:func:`all_gather_rows`), so
AUC and gAUC are exact. Only rank 0 writes files and shows progress bars.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from mtlkit.utils import resolve_device

__all__ = [
    "DistributedContext",
    "all_gather_rows",
    "barrier",
    "global_masked_means",
    "setup_distributed",
    "shutdown_distributed",
]


@dataclass(frozen=True)
class DistributedContext:
    """Where this process sits in a ``torchrun`` job (world_size 1: not distributed)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, rows: Tensor) -> Tensor:
        """This rank's contiguous part of ``rows`` (all of it when not distributed)."""
        if not self.enabled:
            return rows
        return torch.tensor_split(rows, self.world_size)[self.rank]

    def usable_batches(self, batches: Sequence[Tensor]) -> list[Tensor]:
        """The global batches every rank gets a share of (a batch smaller than the world is dropped)."""
        return [b for b in batches if len(b) >= self.world_size]


_PROCESS_GROUP_OWNED = False


def setup_distributed(device_name: str | torch.device) -> tuple[DistributedContext, torch.device]:
    """Read RANK / WORLD_SIZE (set by ``torchrun``) and join the process group once.

    The backend is NCCL on CUDA and Gloo on the CPU. Each rank uses ``cuda:LOCAL_RANK``.
    """
    global _PROCESS_GROUP_OWNED
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistributedContext(), resolve_device(device_name)
    import torch.distributed as dist

    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    device = resolve_device(device_name)
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    elif device.type != "cpu":
        raise ValueError(f"device must be 'cpu' or 'cuda' under torchrun, got {str(device)!r}")
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
        _PROCESS_GROUP_OWNED = True
    context = DistributedContext(rank=dist.get_rank(), world_size=dist.get_world_size(), local_rank=local_rank)
    return context, device


def shutdown_distributed() -> None:
    """Leave the process group if the trainer joined it (call once at the end of a script)."""
    global _PROCESS_GROUP_OWNED
    if _PROCESS_GROUP_OWNED:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
        _PROCESS_GROUP_OWNED = False


def barrier(context: DistributedContext) -> None:
    """Wait for every rank (a no-op when not distributed)."""
    if context.enabled:
        import torch.distributed as dist

        dist.barrier()


def global_masked_means(losses: Mapping[str, Tensor], label_mask: Tensor,
                        context: DistributedContext) -> dict[str, Tensor]:
    """Per-task losses whose DDP-averaged gradient is the *global* masked mean's (module doc).

    Args:
        losses: task → this rank's masked mean loss (a scalar with a graph), in label order.
        label_mask: ``(B_r, T)`` this rank's observed-label mask.
        context: the job; returns ``losses`` unchanged when not distributed.
    """
    if not context.enabled:
        return dict(losses)
    import torch.distributed as dist

    names = list(losses)
    counts = label_mask.sum(dim=0).to(torch.float32)  # (T,) local observed labels
    sums = torch.stack([losses[t] for t in names]) * counts  # (T,) local loss sums
    stats = torch.cat([sums.detach(), counts])
    dist.all_reduce(stats)
    total_counts = stats[len(names):].clamp(min=1)
    local = sums * context.world_size / total_counts  # its rank-average is the global mean's gradient
    value = stats[: len(names)] / total_counts  # the global masked mean
    exact = local + (value - local).detach()
    return {task: exact[i] for i, task in enumerate(names)}


def all_gather_rows(values: Tensor, sizes: Sequence[int]) -> Tensor:
    """Concatenate every rank's ``values`` (rank r holds ``sizes[r]`` rows) in rank order."""
    import torch.distributed as dist

    width = max(sizes)
    padded = torch.zeros(width, dtype=values.dtype, device=values.device)
    padded[: len(values)] = values
    gathered = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(gathered, padded)
    return torch.cat([g[:size] for g, size in zip(gathered, sizes)])
