"""Run ``python -m mtlkit ...`` with one fault injected at a chosen moment (a test helper).

    python tests/fault_injection.py FAULT -- train --data ... --out DIR

Faults (N counts checkpoint saves, 1-based):

* ``none`` — run as is.
* ``kill-before-first-checkpoint`` — SIGKILL when the first checkpoint is about to be saved
  (``config.json`` is written, nothing trained is saved yet).
* ``kill-mid-save:N`` — SIGKILL during the N-th save, after its temporary file is written and
  before it replaces ``checkpoint.pt`` (leaves an orphan temporary file).
* ``kill-after-save:N`` — SIGKILL right after the N-th save.
* ``kill-before-restore-best`` — SIGKILL when early stopping's restore-best save starts: the
  checkpoint of the stopping epoch is on disk, the best weights are not yet.
* ``sigint-after-save:N`` — Ctrl-C (SIGINT) right after the N-th save.
* ``file-size-limit-after-save:N`` — after the N-th save, limit the size of files this process
  may write to 1 kB (``RLIMIT_FSIZE``), so the next checkpoint write fails as on a full disk.

The faults wrap :meth:`mtlkit.training.Trainer.save_checkpoint` and ``os.replace`` in this
process only; the code under test runs unchanged.
"""

from __future__ import annotations

import os
import resource
import signal
import sys

from mtlkit import cli
from mtlkit.training import Trainer


def _kill(sig: int = signal.SIGKILL) -> None:
    os.kill(os.getpid(), sig)


def install(fault: str) -> None:
    name, _, count = fault.partition(":")
    n = int(count) if count else 0
    saves = {"count": 0, "epoch": None}
    real_save = Trainer.save_checkpoint
    real_replace = os.replace

    def save(self: Trainer, path: os.PathLike) -> None:
        restore_best = saves["epoch"] == self.epoch  # a second save in one epoch: the best weights
        if name == "kill-before-first-checkpoint" and saves["count"] == 0:
            _kill()
        if name == "kill-before-restore-best" and restore_best:
            _kill()
        saves["count"] += 1
        saves["epoch"] = self.epoch
        real_save(self, path)
        if saves["count"] == n:
            if name == "kill-after-save":
                _kill()
            elif name == "sigint-after-save":
                _kill(signal.SIGINT)
            elif name == "file-size-limit-after-save":
                signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # fail the write with EFBIG instead
                resource.setrlimit(resource.RLIMIT_FSIZE, (1024, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))

    def replace(source: str | os.PathLike, target: str | os.PathLike) -> None:
        if name == "kill-mid-save" and str(target).endswith("checkpoint.pt") and saves["count"] == n:
            _kill()
        real_replace(source, target)

    Trainer.save_checkpoint = save
    os.replace = replace


if __name__ == "__main__":
    fault, separator, *argv = sys.argv[1:]
    assert separator == "--", "usage: fault_injection.py FAULT -- MTLKIT_ARGS"
    install(fault)
    sys.exit(cli.main(argv))
