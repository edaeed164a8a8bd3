"""The self-check table that the README's main job prints."""

from __future__ import annotations

import numpy as np

from mtlkit import selfcheck


def test_every_check_is_within_tolerance():
    checks = selfcheck.run_checks(n_trials=3, seed=1)
    assert len(checks) == len(selfcheck.CHECKS)
    failed = [(c.function, c.max_abs_deviation) for c in checks if not c.passed]
    assert not failed


def test_a_wrong_implementation_fails_its_row(monkeypatch):
    def off_by_a_bit(rng, gen):
        yield np.ones(3), np.ones(3) + 1e-3

    monkeypatch.setattr(selfcheck, "CHECKS", [("broken", "ones", off_by_a_bit, 1e-5)])
    (check,) = selfcheck.run_checks(n_trials=2)
    assert not check.passed and abs(check.max_abs_deviation - 1e-3) < 1e-12
    assert "FAIL" in selfcheck.format_table([check])
    assert selfcheck.main(n_trials=1) == 1
