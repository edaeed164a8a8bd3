"""Top-k recommendation and ranking metrics against brute force on a tiny synthetic funnel."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mtlkit import metrics
from mtlkit.data import load_dataset
from mtlkit.models import build_model
from mtlkit.recommend import (
    build_user_context,
    candidate_batch,
    evaluate_ranking,
    fused_ranking,
    ranking_targets,
    raw_item_ids,
    recommend,
    user_indices,
)

SMALL = dict(embedding_dim=4, d_model=8, n_heads=1, d_ff=8, tower_hidden=(8,), dropout=0.0)
KEYS = ("user", "item", "sparse", "dense", "history", "history_padding_mask", "item_content")

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data():
    return load_dataset("synthetic-funnel", n_users=40, n_items=30, n_impressions=600, seq_len=4)


@pytest.fixture(scope="module")
def model(data):
    torch.manual_seed(0)
    return build_model("mmoe", data.schema, n_experts=2, expert_hidden=(8,), **SMALL).eval()


def all_rows(data):
    """Every sample of every split as numpy arrays, with its split name."""
    out = {}
    for name in ("train", "valid", "test"):
        split = data.splits[name]
        for key in (*KEYS, "labels", "label_mask", "timestamp"):
            out.setdefault(key, []).append(split[key].numpy())
        out.setdefault("split", []).append(np.array([name] * len(split)))
    return {k: np.concatenate(v) for k, v in out.items()}


def seen_items(data, user, before=("train", "valid", "test")):
    """Items the user clicked in the given splits (an independent reading of the data)."""
    rows = all_rows(data)
    click = rows["label_mask"][:, 0] & (rows["labels"][:, 0] == 1)
    sel = (rows["user"] == user) & click & np.isin(rows["split"], before)
    return set(rows["item_content"][sel].tolist())


# --------------------------------------------------------------------------- candidate rows
@pytest.mark.parametrize("at", ["end", "test"])
def test_candidate_rows_reproduce_the_data_rows(data, at):
    """The row built for (user, item) equals the data's own sample of that user and item."""
    rows = all_rows(data)
    context = build_user_context(data, at=at)
    checked = 0
    for user in np.unique(rows["user"]):
        if user == 0:
            continue
        sel = np.flatnonzero((rows["user"] == user) & ((rows["split"] == at) if at != "end" else True))
        if not len(sel):
            continue
        order = np.lexsort((sel, rows["timestamp"][sel]))
        row = sel[order[-1] if at == "end" else order[0]]
        batch = candidate_batch(context, torch.tensor([user]), torch.tensor([rows["item_content"][row]]))
        for key in KEYS:
            np.testing.assert_array_equal(batch[key][0].numpy(), rows[key][row], err_msg=f"{key} of user {user}")
        checked += 1
    assert checked >= 10


def test_item_columns_are_recognised(data):
    context = build_user_context(data)
    fields = dict(zip(data.schema.sparse_fields, context.item_columns_sparse.tolist()))
    assert fields["category"] is True
    assert fields["age_bucket"] is False and fields["region"] is False
    assert dict(zip(data.schema.dense_fields, context.item_columns_dense.tolist()))["price"] is True


# --------------------------------------------------------------------------- recommend
def brute_force(model, data, user, *, exclude=()):
    """{item: score}: every item scored alone (one forward pass each), the excluded dropped."""
    context = build_user_context(data)
    scored = {}
    with torch.no_grad():
        for item in range(1, data.schema.n_items):
            if item not in exclude:
                outputs = model(candidate_batch(context, torch.tensor([user]), torch.tensor([item])))
                scored[item] = float(torch.sigmoid(outputs["click"])[0])
    return scored


def assert_top_k(items, scores, scored, k):
    """items/scores are a valid top-k of the brute-force scores (any order among exact ties)."""
    best = sorted(scored.values(), reverse=True)[:k]
    torch.testing.assert_close(scores, torch.tensor(best), atol=1e-6, rtol=1e-5)
    assert len(set(items.tolist())) == k
    for item, value in zip(items.tolist(), scores.tolist()):
        assert scored[item] == pytest.approx(value, abs=1e-6)


@pytest.mark.parametrize("batch_size", [7, 100_000])
def test_recommend_matches_brute_force_and_excludes_seen(model, data, batch_size):
    users = [u for u in range(1, data.schema.n_users) if seen_items(data, u)][:3]
    items, scores = recommend(model, data, users, k=6, batch_size=batch_size)
    assert items.shape == scores.shape == (3, 6)
    context = build_user_context(data)
    for row, user in enumerate(users):
        history = set(context.history[user][~context.history_padding_mask[user]].tolist())
        seen = seen_items(data, user) | history
        assert not seen & set(items[row].tolist())
        assert_top_k(items[row], scores[row], brute_force(model, data, user, exclude=seen), 6)
        assert torch.all(scores[row, :-1] >= scores[row, 1:])


def test_recommend_without_exclusion_ranks_every_item(model, data):
    items, scores = recommend(model, data, [3], k=5, exclude_seen=False)
    assert_top_k(items[0], scores[0], brute_force(model, data, 3), 5)


def test_candidates_and_padding(model, data):
    candidates = [2, 4, 6, 8]
    items, scores = recommend(model, data, [1, 2], k=6, candidates=candidates, exclude_seen=False)
    assert set(items[0, :4].tolist()) == set(candidates)
    assert items[:, 4:].eq(-1).all() and torch.isneginf(scores[:, 4:]).all()


def test_score_options(data):
    torch.manual_seed(0)
    esmm = build_model("esmm", data.schema, **SMALL).eval()
    user = 4
    # "ctcvr" with ESMM ranks by pCTR · pCVR, the model's purchase output
    context = build_user_context(data)
    batch = candidate_batch(context, torch.tensor([user]), torch.arange(1, data.schema.n_items))
    with torch.no_grad():
        outputs = esmm(batch)
        ctcvr = torch.sigmoid(outputs["click"]) * esmm.predict_cvr(batch)
    torch.testing.assert_close(torch.sigmoid(outputs["purchase"]), ctcvr, atol=1e-6, rtol=1e-5)
    items, scores = recommend(esmm, data, [user], k=5, score="ctcvr", exclude_seen=False)
    top = torch.topk(ctcvr, 5)
    assert items[0].tolist() == (top.indices + 1).tolist()
    torch.testing.assert_close(scores[0], top.values, atol=1e-6, rtol=1e-5)
    # a regression task ranks by its value; a callable gets the output dict
    items_rating, _ = recommend(esmm, data, [user], k=3, score="rating", exclude_seen=False)
    assert items_rating[0].tolist() == (torch.topk(outputs["rating"], 3).indices + 1).tolist()
    items_call, _ = recommend(esmm, data, [user], k=3, score=lambda out: -out["rating"], exclude_seen=False)
    assert items_call[0].tolist() == (torch.topk(-outputs["rating"], 3).indices + 1).tolist()
    with pytest.raises(ValueError, match="score"):
        recommend(esmm, data, [user], score="ctr2")


def test_bad_arguments_name_themselves(model, data):
    with pytest.raises(ValueError, match="users"):
        recommend(model, data, [0])
    with pytest.raises(ValueError, match="users"):
        recommend(model, data, [data.schema.n_users])
    with pytest.raises(ValueError, match="k must"):
        recommend(model, data, [1], k=0)
    with pytest.raises(ValueError, match="candidates"):
        recommend(model, data, [1], candidates=[0])
    with pytest.raises(ValueError, match="at must"):
        build_user_context(data, at="train")


def test_raw_id_mapping(data):
    raw_users = list(data.user_index)[:3]
    assert user_indices(data, raw_users).tolist() == [data.user_index[u] for u in raw_users]
    assert user_indices(data, [str(raw_users[0])]).tolist() == [data.user_index[raw_users[0]]]
    with pytest.raises(ValueError, match="user ids"):
        user_indices(data, ["no-such-user"])
    raw_items = list(data.item_index)[:2]
    indices = [data.item_index[i] for i in raw_items]
    assert raw_item_ids(data, torch.tensor([indices + [-1]])) == [raw_items + [None]]


# --------------------------------------------------------------------------- ranking metrics
def test_evaluate_ranking_matches_a_brute_force_computation(model, data):
    k = 5
    result = evaluate_ranking(model, data, k, split="test", batch_size=50)
    rows = all_rows(data)
    test = rows["split"] == "test"
    click = rows["label_mask"][:, 0] & (rows["labels"][:, 0] == 1)
    users = sorted(set(rows["user"][test & click].tolist()) - {0})
    assert result["users"] == len(users)
    context = build_user_context(data, at="test")
    n_items = data.schema.n_items
    relevance = np.zeros((len(users), n_items - 1))
    scores = np.zeros((len(users), n_items - 1))
    with torch.no_grad():
        for r, user in enumerate(users):
            for item in rows["item_content"][test & click & (rows["user"] == user)]:
                relevance[r, item - 1] = 1
            out = model(candidate_batch(context, torch.tensor([user]), torch.arange(1, n_items)))
            scores[r] = torch.sigmoid(out["click"]).numpy()
            history = set(context.history[user][~context.history_padding_mask[user]].tolist())
            for item in seen_items(data, user, before=("train", "valid")) | history:
                scores[r, item - 1] = np.finfo(np.float32).min
    assert result[f"hr@{k}"] == pytest.approx(metrics.hit_rate_at_k(relevance, scores, k))
    assert result[f"ndcg@{k}"] == pytest.approx(metrics.ndcg_at_k(relevance, scores, k))
    assert result[f"recall@{k}"] == pytest.approx(metrics.recall_at_k(relevance, scores, k))
    assert result["mrr"] == pytest.approx(metrics.mrr(relevance, scores))
    for name, value in result.items():
        if name != "users":
            assert 0.0 <= value <= 1.0


def test_ranking_with_k_covering_the_catalog_finds_everything(model, data):
    result = evaluate_ranking(model, data, data.schema.n_items, split="test")
    assert result[f"hr@{data.schema.n_items}"] == pytest.approx(1.0)
    assert result[f"recall@{data.schema.n_items}"] == pytest.approx(1.0)
    subset = evaluate_ranking(model, data, 5, split="test", max_users=3, seed=1)
    assert subset["users"] == 3


def _restricted(data, users):
    """The data set with every other user's test labels hidden: the brute-force way to evaluate a subset."""
    import dataclasses

    from mtlkit.data.tensors import TensorSamples

    test = data.test
    keep = torch.isin(test["user"], torch.as_tensor(users))
    return dataclasses.replace(data, test=TensorSamples({**test.to_dict(), "label_mask": test["label_mask"] & keep[:, None]}))


def test_evaluate_ranking_on_a_subset_of_users_equals_hiding_the_others(model, data):
    everyone = evaluate_ranking(model, data, 5)
    users = torch.unique(data.test["user"][data.test["labels"][:, 0] == 1])[::2]
    subset = evaluate_ranking(model, data, 5, users=users)
    assert subset == pytest.approx(evaluate_ranking(model, _restricted(data, users), 5))
    assert subset["users"] <= len(users) < everyone["users"]
    has_context = build_user_context(data, at="test").has_context
    clicked = set(data.test["user"][data.test["labels"][:, 0] == 1].tolist())
    without_click = [u for u in range(1, data.schema.n_users) if has_context[u] and u not in clicked]
    assert without_click, "the fixture needs a test user without a click"
    with pytest.raises(ValueError, match="among the users asked for"):
        evaluate_ranking(model, data, 5, users=without_click[:1])
    with pytest.raises(ValueError, match="users must be user indices"):
        evaluate_ranking(model, data, 5, users=[0])


@pytest.fixture(scope="module")
def esmm(data):
    torch.manual_seed(1)
    return build_model("esmm", data.schema, **SMALL).eval()


def test_ranking_targets_are_the_held_out_positives_and_the_earlier_interactions(data):
    context = build_user_context(data, at="test")
    users = torch.nonzero(context.has_context).reshape(-1)[:6]
    relevant, seen = ranking_targets(data, users)
    rows = all_rows(data)
    test = rows["split"] == "test"
    click = rows["label_mask"][:, 0] & (rows["labels"][:, 0] == 1)
    assert relevant.shape == seen.shape == (len(users), data.schema.n_items - 1)
    for r, user in enumerate(users.tolist()):
        expected = set(rows["item_content"][test & click & (rows["user"] == user)].tolist())
        assert set((np.flatnonzero(relevant[r]) + 1).tolist()) == expected
        history = set(context.history[user][~context.history_padding_mask[user]].tolist())
        assert set((np.flatnonzero(seen[r]) + 1).tolist()) == (seen_items(data, user, ("train", "valid")) | history) - {0}


def test_fused_ranking_scores_log_ctr_and_log_cvr_of_every_item(esmm, data):
    context = build_user_context(data, at="test")
    users = torch.nonzero(context.has_context).reshape(-1)[:4]
    fused = fused_ranking(esmm, data, users, batch_size=37)
    items = torch.arange(1, data.schema.n_items)
    with torch.no_grad():
        out = esmm(candidate_batch(context, users, items))
    p_ctr = torch.sigmoid(out["click"]).double().reshape(len(users), -1).numpy()
    p_ctcvr = torch.sigmoid(out["purchase"]).double().reshape(len(users), -1).numpy()
    np.testing.assert_allclose(np.exp(fused.log_ctr), p_ctr, rtol=1e-5)
    np.testing.assert_allclose(np.exp(fused.log_ctr + fused.log_cvr), p_ctcvr, rtol=1e-5)  # pCTR·pCVR = pCTCVR
    np.testing.assert_allclose(fused.scores(0.5), 0.5 * np.log(p_ctcvr), rtol=1e-5)
    relevant, seen = ranking_targets(data, users)
    top, top_scores = fused.top_k(0.3, 5, exclude=seen)
    for r in range(len(users)):
        score = 0.7 * fused.log_ctr[r] + 0.3 * fused.log_cvr[r]
        score[seen[r]] = -np.inf
        np.testing.assert_array_equal(top[r], np.argsort(-score, kind="stable")[:5] + 1)
        np.testing.assert_allclose(top_scores[r], np.exp(np.sort(score)[::-1][:5]))
        assert not seen[r][top[r] - 1].any()


def test_fused_ranking_at_0_and_one_half_is_the_ctr_and_ctcvr_ranking(esmm, data):
    users = torch.unique(data.test["user"][data.test["labels"][:, 0] == 1])
    users = users[build_user_context(data, at="test").has_context[users]]
    fused = fused_ranking(esmm, data, users)
    for alpha, task, score in ((0.0, "click", "ctr"), (0.5, "purchase", "ctcvr")):
        relevant, seen = ranking_targets(data, users, relevance_task=task)
        if not relevant.any():
            continue
        ours = fused.ranking_metrics(alpha, relevant, 5, exclude=seen)
        reference = evaluate_ranking(esmm, data, 5, relevance_task=task, score=score, users=users)
        assert ours == pytest.approx(reference, abs=1e-9), (alpha, task)


def test_fused_ranking_bad_arguments_name_themselves(esmm, data):
    users = torch.nonzero(build_user_context(data, at="test").has_context).reshape(-1)[:2]
    fused = fused_ranking(esmm, data, users)
    with pytest.raises(ValueError, match="alpha"):
        fused.scores(1.5)
    with pytest.raises(ValueError, match="exclude must have shape"):
        fused.top_k(0.5, 3, exclude=np.zeros((1, 2), dtype=bool))
    with pytest.raises(ValueError, match="relevant must mark"):
        fused.ranking_metrics(0.5, np.zeros_like(fused.log_ctr, dtype=bool), 3)
    with pytest.raises(ValueError, match="k must be"):
        fused.top_k(0.5, 0)
