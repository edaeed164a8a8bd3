"""One call from a data-set name to ready-to-train multi-task samples: :func:`load_dataset`."""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from mtlkit.data import columns as C
from mtlkit.data.samples import (
    DENSE, HISTORY, HISTORY_PADDING_MASK, ITEM, LABEL_MASK, LABELS, SPARSE, USER,
    FeatureSchema, MultiTaskData, TaskSpec, TensorSamples, build_multitask_data,
)  # fmt: skip

__all__ = ["DATASETS", "SIZES", "drop_input_fields", "load_dataset"]

DATASETS = ("synthetic-funnel", "synthetic-mmoe", "movielens-100k", "movielens-1m", "census-income")
SIZES = ("quick", "full")

# Sizes of the synthetic worlds. "quick" builds in about a second on one CPU core (tests, CI,
# first runs of the notebooks); "full" is for the experiments the notebooks report.
FUNNEL_SIZES = {"quick": dict(n_users=1_000, n_items=400), "full": dict(n_users=10_000, n_items=3_000)}
MMOE_SIZES = {"quick": 12_000, "full": 120_000}  # samples; 80/10/10 random split

_DEFAULT_TASKS = {
    "synthetic-funnel": (C.CLICK, C.PURCHASE, C.RATING_TASK),
    "movielens": (C.CLICK, C.LIKE, C.RATING_TASK),
}


def load_dataset(
    name: str,
    *,
    root: str | os.PathLike[str] | None = None,
    seed: int = 0,
    size: str = "quick",
    seq_len: int | None = None,
    with_text: bool = False,
    text_model: str | None = None,
    tasks: tuple[str, ...] | None = None,
    split: str | None = None,
    n_negatives: int | None = None,
    n_eval_negatives: int | None = None,
    download: bool = True,
    correlation: float = 0.5,
    drop_features: Sequence[str] = (),
    **generator_kwargs: Any,
) -> MultiTaskData:
    """Build a named data set as :class:`~mtlkit.data.samples.MultiTaskData`.

    * ``"synthetic-funnel"`` — :func:`~mtlkit.data.synthetic.make_recsys_funnel` impressions
      with tasks click, purchase (click AND purchase over all impressions: CTCVR) and rating;
      temporal split (so the cold items, launched late, never reach training), no sampled
      negatives (the unclicked impressions are the negatives). Offline; the default data set.
      Extra keyword arguments go to the generator (e.g. ``task_relatedness``,
      ``selection_bias``).
    * ``"synthetic-mmoe"`` — the MMoE paper's two regression tasks ``y1``/``y2``
      (:func:`~mtlkit.data.synthetic.make_correlated_tasks` with ``correlation``): 100 dense
      features, no users, items or sequence (``seq_len`` must be 0), random 80/10/10 split.
    * ``"movielens-100k"`` / ``"movielens-1m"`` — ratings via
      :func:`~mtlkit.data.movielens.load_movielens` (``root``, ``download``) with tasks click
      (watched: 1 on ratings, 0 on ``n_negatives`` sampled unseen movies, default 1), like
      (rating >= 4) and rating; leave-last-out split; user fields gender, age, occupation;
      item fields year and genres (multi-hot). ``size`` does not change MovieLens.
    * ``"census-income"`` — UCI Census-Income (KDD) via
      :func:`~mtlkit.data.census.load_census_income` (``root``, ``download``) and
      :func:`~mtlkit.data.census.build_census_multitask`: the MMoE paper's binary task pair
      ``tasks`` = ("income", "marital") (default) or ("education", "marital"); train = the
      training file, valid/test = the test file halved with a fixed seed (``seed`` and
      ``size`` do not change it); no users, items or sequence (``seq_len`` must be 0).

    Args:
        name: one of :data:`DATASETS`.
        root: data folder for MovieLens and census-income (ignored by the synthetic sets).
        seed: seed of the generator, the split and the negative sampling.
        size: ``"quick"`` or ``"full"`` for the synthetic sets.
        seq_len: behaviour-sequence length (default 20; 0 for synthetic-mmoe).
        with_text: add title embeddings (:func:`~mtlkit.data.text.embed_texts`, ``text_model``)
            as ``schema.item_text_embeddings``.
        tasks, split, n_negatives, n_eval_negatives: override the defaults above
            (see :func:`~mtlkit.data.samples.build_multitask_data`).
        download: MovieLens and census-income: allow downloading the files.
        correlation: synthetic-mmoe only: the task correlation p.
        drop_features: input fields to remove from the model inputs, by their name in
            ``schema.sparse_fields`` / ``schema.dense_fields`` (a multi-hot field such as
            ``"genres"`` by its name before ``=``). Attributes and labels built from the same
            columns stay: with ``drop_features=("gender",)`` MovieLens keeps ``is_female`` for an
            adversary or a fairness audit, but no model sees gender. The other fields'
            vocabularies and statistics do not change (each is fitted on its own column).
    """
    if name not in DATASETS:
        raise ValueError(f"name must be one of {DATASETS}, got {name!r}")
    if size not in SIZES:
        raise ValueError(f"size must be one of {SIZES}, got {size!r}")
    _check_field_names(drop_features)
    started = time.perf_counter()
    if name == "census-income":
        data = _census(root, download, seq_len, with_text, tasks, split, generator_kwargs)
    elif name == "synthetic-mmoe":
        data = _mmoe(size, seed, seq_len, correlation, with_text, tasks, split, generator_kwargs)
    else:
        if name.startswith("movielens") and generator_kwargs:
            raise TypeError(f"unexpected keyword argument(s) for {name}: {sorted(generator_kwargs)}")
        data = _interactions(
            name, root, seed, size, 20 if seq_len is None else seq_len, with_text, text_model, tasks,
            split, n_negatives, n_eval_negatives, download, generator_kwargs,
        )
    if drop_features:
        data = drop_input_fields(data, drop_features, data_name=name)
    data.info["name"] = name
    data.info["size"] = size
    data.info["build_seconds"] = round(time.perf_counter() - started, 3)
    return data


def _interactions(
    name, root, seed, size, seq_len, with_text, text_model, tasks, split, n_negatives, n_eval_negatives,
    download, generator_kwargs,
) -> MultiTaskData:
    if name == "synthetic-funnel":
        from mtlkit.data.synthetic import make_recsys_funnel

        world = make_recsys_funnel(**{**FUNNEL_SIZES[size], "seed": seed, **generator_kwargs})
        interactions, users, items = world.interactions, world.users, world.items
        fields: dict[str, Any] = {}  # detected: age_bucket, region, device, category, price
        defaults = dict(tasks=_DEFAULT_TASKS[name], split="temporal", n_negatives=0)
        extra_info = {"generator": world.params, "cold_start_timestamp": world.cold_start_timestamp}
    else:
        from mtlkit.data.movielens import load_movielens

        movielens = load_movielens(name.removeprefix("movielens-"), root=root, download=download)
        interactions, users, items = movielens.ratings, movielens.users, movielens.items
        fields = dict(
            user_sparse=(C.GENDER, C.AGE, C.OCCUPATION), user_dense=(), item_sparse=(),
            item_dense=(C.YEAR, C.GENRES),
        )
        defaults = dict(tasks=_DEFAULT_TASKS["movielens"], split="leave-last-out", n_negatives=1)
        extra_info = {"source": str(movielens.path.name)}
    text = None
    if with_text:
        from mtlkit.data.text import embed_texts

        text = embed_texts(items[C.TITLE].astype(str).tolist(), model_name_or_path=text_model)
    data = build_multitask_data(
        interactions, users, items,
        tasks=tuple(tasks) if tasks is not None else defaults["tasks"],
        split=split or defaults["split"],
        seq_len=seq_len,
        n_negatives=defaults["n_negatives"] if n_negatives is None else n_negatives,
        n_eval_negatives=n_eval_negatives,
        text_embeddings=text,
        seed=seed,
        **fields,
    )  # fmt: skip
    data.info.update(extra_info)
    return data


def _input_field(column: str) -> str:
    """The field a schema column belongs to: a multi-hot column ``"genres=Drama"`` -> ``"genres"``."""
    return column.split("=", 1)[0]


def _check_field_names(drop_features: Sequence[str]) -> None:
    if isinstance(drop_features, str) or not all(isinstance(f, str) for f in drop_features):
        raise TypeError(f"drop_features must be a sequence of field names, got {drop_features!r}")


def drop_input_fields(data: MultiTaskData, drop_features: Sequence[str], *, data_name: str | None = None) -> MultiTaskData:
    """``data`` without the sparse/dense input columns of ``drop_features`` (as in :func:`load_dataset`).

    For a data set already built, e.g. to compare a model with and without some fields on the
    very same rows. ``data_name`` only names the data set in the error for an unknown field.
    """
    _check_field_names(drop_features)
    drop_features = tuple(drop_features)
    name = data_name or data.info.get("name", "the data")
    schema = data.schema
    fields = list(dict.fromkeys([*schema.sparse_fields, *map(_input_field, schema.dense_fields)]))
    unknown = sorted(set(drop_features) - set(fields))
    if unknown:
        raise ValueError(f"drop_features must name input fields of {name} {fields}, got unknown {unknown}")
    keep_sparse = [j for j, f in enumerate(schema.sparse_fields) if f not in drop_features]
    keep_dense = [j for j, f in enumerate(schema.dense_fields) if _input_field(f) not in drop_features]
    splits = {
        part: TensorSamples(
            {
                **samples.to_dict(),
                SPARSE: samples[SPARSE][:, keep_sparse],  # (B, n_sparse) -> (B, len(keep_sparse))
                DENSE: samples[DENSE][:, keep_dense],  # (B, n_dense) -> (B, len(keep_dense))
            }
        )
        for part, samples in data.splits.items()
    }
    schema = dataclasses.replace(
        schema,
        sparse_fields=tuple(schema.sparse_fields[j] for j in keep_sparse),
        sparse_cardinalities=tuple(schema.sparse_cardinalities[j] for j in keep_sparse),
        dense_fields=tuple(schema.dense_fields[j] for j in keep_dense),
    )
    info = dict(data.info, dropped_features=list(drop_features))
    if "dense_stats" in info:
        info["dense_stats"] = {f: v for f, v in info["dense_stats"].items() if f in schema.dense_fields}
    return dataclasses.replace(data, schema=schema, info=info, **splits)


def _census(root, download, seq_len, with_text, tasks, split, generator_kwargs) -> MultiTaskData:
    from mtlkit.data.census import CENSUS_TASK_PAIRS, build_census_multitask, load_census_income

    if seq_len not in (None, 0):
        raise ValueError(f"seq_len must be 0 for census-income (it has no behaviour sequence), got {seq_len!r}")
    if with_text:
        raise ValueError("with_text must be False for census-income (it has no item titles)")
    if split is not None:
        raise ValueError(f"split must be None for census-income (the MMoE paper's split is fixed), got {split!r}")
    if generator_kwargs:
        raise TypeError(f"unexpected keyword argument(s) for census-income: {sorted(generator_kwargs)}")
    tasks = CENSUS_TASK_PAIRS[0] if tasks is None else tuple(tasks)
    if tasks not in CENSUS_TASK_PAIRS:
        raise ValueError(f"tasks must be one of {CENSUS_TASK_PAIRS} for census-income, got {tasks!r}")
    return build_census_multitask(load_census_income(root, download=download), tasks)


def _mmoe(size, seed, seq_len, correlation, with_text, tasks, split, generator_kwargs) -> MultiTaskData:
    from mtlkit.data.synthetic import make_correlated_tasks

    if seq_len not in (None, 0):
        raise ValueError(
            f"seq_len must be 0 for synthetic-mmoe (it has no behaviour sequence), got {seq_len!r}"
        )
    if with_text:
        raise ValueError("with_text must be False for synthetic-mmoe (it has no item titles)")
    if tasks is not None and tuple(tasks) != ("y1", "y2"):
        raise ValueError(f"tasks must be ('y1', 'y2') for synthetic-mmoe, got {tasks!r}")
    if split not in (None, "random"):
        raise ValueError(f"split must be 'random' for synthetic-mmoe, got {split!r}")
    n = generator_kwargs.pop("n", MMOE_SIZES[size])
    world = make_correlated_tasks(n, correlation, seed=seed, **generator_kwargs)
    perm = np.random.default_rng(seed).permutation(n)
    n_train, n_valid = int(0.8 * n), int(0.1 * n)
    cuts = (n_train, n_train + n_valid)
    parts = {"train": perm[: cuts[0]], "valid": perm[cuts[0] : cuts[1]], "test": perm[cuts[1] :]}
    X = world.X.astype(np.float64)
    mean, std = X[parts["train"]].mean(0), X[parts["train"]].std(0)
    X = ((X - mean) / np.where(std > 0, std, 1.0)).astype(np.float32)
    n_features = X.shape[1]
    splits = {}
    for part, idx in parts.items():
        m = len(idx)
        splits[part] = TensorSamples(
            {
                USER: torch.zeros(m, dtype=torch.int64),
                ITEM: torch.zeros(m, dtype=torch.int64),
                SPARSE: torch.zeros(m, 0, dtype=torch.int64),
                DENSE: torch.from_numpy(X[idx]),
                HISTORY: torch.zeros(m, 0, dtype=torch.int64),
                HISTORY_PADDING_MASK: torch.zeros(m, 0, dtype=torch.bool),
                LABELS: torch.from_numpy(np.ascontiguousarray(world.Y[idx])),
                LABEL_MASK: torch.ones(m, 2, dtype=torch.bool),
            }
        )
    schema = FeatureSchema(
        n_users=1, n_items=1, sparse_fields=(), sparse_cardinalities=(),
        dense_fields=tuple(f"x{j}" for j in range(n_features)), seq_len=0,
        tasks=(TaskSpec("y1", "regression"), TaskSpec("y2", "regression")),
    )  # fmt: skip
    y = world.Y[parts["train"]]
    info = {
        "split": "random",
        "correlation": float(correlation),
        "cosine": world.cosine,
        "label_pearson_train": float(np.corrcoef(y[:, 0], y[:, 1])[0, 1]),
        "splits": {part: {"rows": int(len(idx))} for part, idx in parts.items()},
    }
    return MultiTaskData(
        schema=schema, train=splits["train"], valid=splits["valid"], test=splits["test"], info=info
    )
