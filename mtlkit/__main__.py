"""``python -m mtlkit`` (and the ``mtlkit`` script): see :mod:`mtlkit.cli`."""

from __future__ import annotations

from mtlkit.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
