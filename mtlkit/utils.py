"""Small shared helpers: device selection, seeding, atomic file writes and JSON.

Atomic writes follow the usual recipe: write to a temporary file in the *same* folder, flush
and ``fsync`` it, then ``os.replace`` it over the target. ``os.replace`` is atomic on POSIX
and Windows when source and target are on the same file system, so a reader (or a crash)
sees either the old file or the complete new one, never half a checkpoint.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import math
import os
import random
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch

from mtlkit.checks import check_int

__all__ = [
    "resolve_device",
    "seed_everything",
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_torch_save",
    "remove_temporary_files",
    "to_jsonable",
    "write_json",
    "read_json",
]

DEVICE_NAMES = ("auto", "cpu", "cuda", "mps")
TEMPORARY_SUFFIX = ".tmp"  # of the temporary files atomic writes make beside their target


# --------------------------------------------------------------------------- devices
def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """The torch device to run on.

    ``"auto"`` picks CUDA, then Apple MPS, then the CPU. An explicit device ("cpu", "cuda",
    "cuda:1", "mps" or a ``torch.device``) is checked: asking for one that is not available
    raises ``ValueError`` instead of failing later inside the first kernel.
    """
    if isinstance(device, torch.device):
        dev = device
    elif isinstance(device, str):
        if device == "auto":
            if torch.cuda.is_available():
                return torch.device("cuda")
            if _mps_available():
                return torch.device("mps")
            return torch.device("cpu")
        try:
            dev = torch.device(device)
        except RuntimeError:
            raise ValueError(f"device must be one of {list(DEVICE_NAMES)} (or e.g. 'cuda:1'), got {device!r}") from None
    else:
        raise TypeError(f"device must be a str or torch.device, got {type(device).__name__}")

    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {str(dev)!r} was requested but CUDA is not available; use --device auto or cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"device {str(dev)!r} was requested but only {torch.cuda.device_count()} CUDA device(s) exist"
            )
    elif dev.type == "mps":
        if not _mps_available():
            raise ValueError(f"device {str(dev)!r} was requested but Apple MPS is not available; use auto or cpu")
    elif dev.type != "cpu":
        raise ValueError(f"device must be one of {list(DEVICE_NAMES)} (or e.g. 'cuda:1'), got {device!r}")
    return dev


# --------------------------------------------------------------------------- seeding
def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator and torch (CPU and every GPU)."""
    seed = check_int("seed", seed, low=0)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device


# --------------------------------------------------------------------------- atomic writes
@contextlib.contextmanager
def _atomic_target(path: str | os.PathLike, mode: str, **open_kwargs: Any) -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success fsync it and move it over ``path``.

    On any error the temporary file is removed and ``path`` is left as it was; an ``OSError``
    (a full disk, a file-size limit) is raised again as one that names the file and says so.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=TEMPORARY_SUFFIX, dir=target.parent)
    try:
        os.chmod(tmp_name, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        with os.fdopen(fd, mode, **open_kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, target)
    except BaseException as error:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        if isinstance(error, OSError) and not isinstance(error, FileNotFoundError):
            kept = "the previous file is unchanged" if target.exists() else "nothing was written"
            raised = OSError(error.errno, f"could not write {target} ({error.strerror or error}); {kept}")
            raise raised from error
        raise
    _fsync_dir(target.parent)


def remove_temporary_files(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporary files that interrupted atomic writes left in ``folder``; returns them.

    Only files named like :func:`_atomic_target`'s (``.<name>.<random>.tmp``) are touched. Call
    it when no other process is writing into ``folder`` (e.g. when a run starts).
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    orphans = [p for p in folder.iterdir() if p.is_file() and p.name.startswith(".") and p.name.endswith(TEMPORARY_SUFFIX)]
    for orphan in orphans:
        with contextlib.suppress(FileNotFoundError):
            orphan.unlink()
    return orphans


def _umask() -> int:
    mask = os.umask(0)  # reading the umask means setting it; put it straight back
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike, data: bytes | memoryview) -> None:
    """Write ``data`` to ``path`` atomically (temporary file + fsync + ``os.replace``)."""
    with _atomic_target(path, "wb") as handle:
        handle.write(data)


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` atomically."""
    with _atomic_target(path, "w", encoding=encoding, newline="") as handle:
        handle.write(text)


def atomic_torch_save(path: str | os.PathLike, obj: Any) -> None:
    """``torch.save(obj, path)``, atomically: a crash mid-save never leaves a truncated file.

    The object is serialised in memory first, so a failing write (a full disk) surfaces as the
    ``OSError`` it is, not as torch's zip writer's internal error.
    """
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, buffer.getbuffer())


def atomic_write_with(path: str | os.PathLike, writer: Callable[[IO], None], *, text: bool = True) -> None:
    """Atomically write ``path`` with ``writer(handle)`` (e.g. ``DataFrame.to_csv``)."""
    mode = "w" if text else "wb"
    kwargs = {"encoding": "utf-8", "newline": ""} if text else {}
    with _atomic_target(path, mode, **kwargs) as handle:
        writer(handle)


# --------------------------------------------------------------------------- JSON
def to_jsonable(obj: Any) -> Any:
    """Plain JSON-able containers from dataclasses, tuples, paths, NumPy and 0-dim tensors.

    Non-finite floats become ``None`` (JSON has no NaN), so files stay readable everywhere.
    """
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable(dataclasses.asdict(obj))
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, torch.Tensor) and obj.numel() == 1:
        return to_jsonable(obj.item())
    if isinstance(obj, np.generic):
        return to_jsonable(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"obj must be JSON-able, got a {type(obj).__name__}")


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` (see :func:`to_jsonable`) as indented JSON, atomically."""
    atomic_write_text(path, json.dumps(to_jsonable(obj), indent=2, sort_keys=False) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file."""
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)
