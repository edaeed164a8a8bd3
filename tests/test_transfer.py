"""The transfer experiment's cell: one world, every model, the same budget, scored beside the bound."""

from __future__ import annotations

import pytest
import torch

from mtlkit.transfer import MODELS, TransferSetting, compare_with_single, run_cell

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = TransferSetting(0.5, 0.3, world={"n_users": 80, "n_items": 30, "n_impressions": 2_000}, seq_len=3, epochs=2)


@pytest.fixture(scope="module")
def cells():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the tests run: float sums depend on the thread count
    yield [run_cell(TINY, seed, models=("single", "shared-bottom")) for seed in (0, 1, 2)]
    torch.set_num_threads(threads)


def test_a_cell_scores_every_model_beside_the_bound(cells):
    cell = cells[0]
    assert cell["seed"] == 0 and cell["setting"]["label_fraction"] == 0.3
    assert set(cell["models"]) == {"single", "shared-bottom"}
    for result in cell["models"].values():
        assert set(result["test"]) == {"click", "purchase"} and 1 <= result["epochs"] <= 2
        assert result["parameters"] > 0 and result["best_epoch"] in (1, 2)
    assert set(cell["bound"]) == {"click", "purchase"} and cell["trivial"]["purchase"]["auc"] == 0.5
    assert cell["bound"]["click"]["logloss"] < cell["trivial"]["click"]["logloss"]


def test_a_cell_is_repeatable_and_seeds_differ(cells):
    again = run_cell(TINY, 0, models=("single", "shared-bottom"))
    for name in again["models"]:
        assert again["models"][name]["test"] == cells[0]["models"][name]["test"]
    assert cells[0]["bound"] != cells[1]["bound"]  # another seed draws another world


def test_compare_with_single_pairs_the_seeds(cells):
    comparison = compare_with_single(cells, "purchase")
    assert set(comparison) == {"shared-bottom"}
    differences = [c["models"]["shared-bottom"]["test"]["purchase"]["auc"] - c["models"]["single"]["test"]["purchase"]["auc"]
                   for c in cells]
    assert comparison["shared-bottom"].difference == pytest.approx(sum(differences) / 3)
    assert comparison["shared-bottom"].n == 3
    assert MODELS[0] == "single"
