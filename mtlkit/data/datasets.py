"""Named data sets: a registry from a name to its builder, and :func:`load_dataset`.

Each builder of :data:`DATASETS` takes only its own keyword arguments
(:func:`dataset_parameters` lists them), as a LibMTL-style registry maps a name to one builder;
:func:`load_dataset` dispatches on the name, refuses any argument that builder does not take,
removes ``drop_features`` from the inputs (common to all) and records what was built in
``info``.

* ``"synthetic-funnel"`` — :func:`~mtlkit.data.synthetic.make_recsys_funnel` impressions with
  tasks click, purchase (click AND purchase over all impressions: CTCVR) and rating; temporal
  split (so the cold items, launched late, never reach training), no sampled negatives (the
  unclicked impressions are the negatives). Offline; the default data set. It also takes the
  generator's keyword arguments (e.g. ``n_users``, ``task_relatedness``, ``selection_bias``).
* ``"synthetic-mmoe"`` — the MMoE paper's two regression tasks ``y1``/``y2``
  (:func:`~mtlkit.data.synthetic.make_correlated_tasks` with ``correlation``; also its keyword
  arguments): 100 dense features, no users, items or sequence, random 80/10/10 split.
* ``"movielens-100k"`` / ``"movielens-1m"`` — ratings via
  :func:`~mtlkit.data.movielens.load_movielens` (``root``, ``download``) with tasks click
  (watched: 1 on ratings, 0 on ``n_negatives`` sampled unseen movies, default 1), like
  (rating >= 4) and rating; leave-last-out split; user fields gender, age, occupation; item
  fields year and genres (multi-hot).
* ``"census-income"`` — UCI Census-Income (KDD) via
  :func:`~mtlkit.data.census.load_census_income` (``root``, ``download``) and
  :func:`~mtlkit.data.census.build_census_multitask`: the MMoE paper's binary task pair
  ``tasks`` = ("income", "marital") (default) or ("education", "marital"); train = the
  training file, valid/test = the test file halved with a fixed seed; no users, items or
  sequence.
* ``"interactions"`` — your own log: :func:`~mtlkit.data.interactions.load_interactions`
  (``log`` a .csv/.csv.gz/.parquet path, ``user``, ``item``, ``time``, ``tasks`` a mapping
  label column -> kind or declaration, ...): any feedback columns, any number of tasks.
* ``"kuairand-pure"`` — KuaiRand-Pure (Gao et al., CIKM 2022) from an extracted folder
  (``root``), verified against its documented counts
  (:func:`~mtlkit.data.kuairand.load_kuairand_pure`); tasks is_click, is_like, is_follow,
  long_view and log1p(play_time_ms) by default; ``test_exposures="random"`` tests on the
  randomly exposed videos (:func:`~mtlkit.data.kuairand.build_kuairand_multitask`).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from mtlkit.checks import ArgumentTypeError, check_choice, check_number
from mtlkit.data import columns as C
from mtlkit.data.batch import DENSE, LABEL_MASK, SPARSE, USER
from mtlkit.data.builder import build_multitask_data
from mtlkit.data.interactions import load_interactions
from mtlkit.data.schema import FeatureSchema, TaskSpec
from mtlkit.data.synthetic import make_correlated_tasks, make_recsys_funnel
from mtlkit.data.tensors import MultiTaskData, TensorSamples, split_statistics

__all__ = [
    "DATASETS", "FUNNEL_SIZES", "MMOE_SIZES", "SIZES", "dataset_parameters", "drop_input_fields", "keep_labels_of_users",
    "load_dataset",
]  # fmt: skip

SIZES = ("quick", "full")

# Sizes of the synthetic worlds. "quick" builds in about a second on one CPU core (tests, CI,
# first runs of the notebooks); "full" is for the experiments the notebooks report.
FUNNEL_SIZES = {"quick": dict(n_users=1_000, n_items=400), "full": dict(n_users=10_000, n_items=3_000)}
MMOE_SIZES = {"quick": 12_000, "full": 120_000}  # samples; 80/10/10 random split

_FUNNEL_TASKS = (C.CLICK, C.PURCHASE, C.RATING_TASK)
_MOVIELENS_TASKS = (C.CLICK, C.LIKE, C.RATING_TASK)
_MMOE_TASKS = (TaskSpec("y1", "regression"), TaskSpec("y2", "regression"))

_Builder = Callable[..., MultiTaskData]  # keyword arguments -> the data set


def load_dataset(name: str, *, drop_features: Sequence[str] = (), **kwargs: Any) -> MultiTaskData:
    """Build the data set ``name`` of :data:`DATASETS` with its builder's keyword arguments.

    Args:
        name: one of :data:`DATASETS` (the module docstring describes each).
        drop_features: input fields to remove from the model inputs, by their name in
            ``schema.sparse_fields`` / ``schema.dense_fields`` (a multi-hot field such as
            ``"genres"`` by its name before ``=``). Attributes and labels built from the same
            columns stay: with ``drop_features=("gender",)`` MovieLens keeps ``is_female`` for an
            adversary or a fairness audit, but no model sees gender. The other fields'
            vocabularies and statistics do not change (each is fitted on its own column).
        **kwargs: the builder's own arguments, :func:`dataset_parameters` ``(name)``; e.g.
            ``seed``, ``size`` (``"quick"`` or ``"full"``), ``seq_len``, ``tasks`` for the
            synthetic funnel, ``root`` and ``download`` for the real data sets.

    Returns:
        the data, with ``info["name"]``, ``info["build_seconds"]`` and, where the builder
        has a size, ``info["size"]``.

    Raises:
        TypeError: an argument the builder does not take (the message lists those it takes);
            a :class:`~mtlkit.checks.ArgumentTypeError`, so also a ``ValueError``.
    """
    check_choice("name", name, DATASETS)
    _check_field_names(drop_features)
    parameters = inspect.signature(DATASETS[name]).parameters
    unknown = sorted(set(kwargs) - set(parameters))
    if unknown:
        # a TypeError (as for any unexpected keyword) that is also a ValueError, so callers
        # that catch bad values (the command line) catch it too
        raise ArgumentTypeError(f"{name} got unexpected argument(s) {unknown}; it takes {sorted(parameters)}")
    if "size" in parameters:
        kwargs["size"] = check_choice("size", kwargs.get("size", parameters["size"].default), SIZES)
    started = time.perf_counter()
    data = DATASETS[name](**kwargs)
    if drop_features:
        data = drop_input_fields(data, drop_features, data_name=name)
    data.info["name"] = name
    if "size" in parameters:
        data.info["size"] = kwargs["size"]
    data.info["build_seconds"] = round(time.perf_counter() - started, 3)
    return data


def dataset_parameters(name: str) -> tuple[str, ...]:
    """The keyword arguments the builder of ``name`` takes, in signature order.

    E.g. to pass ``seed`` or ``size`` only to the data sets that have them (census-income has
    neither). The synthetic sets list their generator's keyword arguments too.
    """
    check_choice("name", name, DATASETS)
    return tuple(inspect.signature(DATASETS[name]).parameters)


# --------------------------------------------------------------------------------------------
# The builders: each takes only its own keyword arguments
# --------------------------------------------------------------------------------------------


def _forwarding_to(generator: Callable[..., Any]) -> Callable[[_Builder], _Builder]:
    """Decorate a builder whose ``**generator_kwargs`` go to ``generator``: its signature (what
    :func:`dataset_parameters` and ``help`` show) lists the generator's arguments in place of
    ``**generator_kwargs``, less those the builder names itself."""

    def decorate(builder: _Builder) -> _Builder:
        signature = inspect.signature(builder)
        own = [p for p in signature.parameters.values() if p.kind is not p.VAR_KEYWORD]
        forwarded = [
            p.replace(kind=p.KEYWORD_ONLY)
            for p in inspect.signature(generator).parameters.values()
            if p.name not in signature.parameters
        ]
        builder.__signature__ = signature.replace(parameters=[*own, *forwarded])
        return builder

    return decorate


@_forwarding_to(make_recsys_funnel)
def _synthetic_funnel(
    *,
    size: str = "quick",
    seed: int = 0,
    seq_len: int = 20,
    with_text: bool = False,
    text_model: str | None = None,
    tasks: Sequence[str] | None = None,
    split: str | None = None,
    n_negatives: int | None = None,
    n_eval_negatives: int | None = None,
    **generator_kwargs: Any,
) -> MultiTaskData:
    """The synthetic funnel: ``size`` sets ``n_users`` / ``n_items`` (:data:`FUNNEL_SIZES`)
    unless ``generator_kwargs`` do; ``seed`` seeds the world, the split and the negatives.
    ``None`` means tasks click, purchase, rating, a temporal split and no sampled negatives."""
    world = make_recsys_funnel(**{**FUNNEL_SIZES[size], "seed": seed, **generator_kwargs})
    data = _samples_from_log(
        world.interactions, world.users, world.items,  # fields detected: age_bucket, region, device, category, price
        tasks=_FUNNEL_TASKS if tasks is None else tasks, split=split or "temporal",
        n_negatives=0 if n_negatives is None else n_negatives, n_eval_negatives=n_eval_negatives,
        seq_len=seq_len, with_text=with_text, text_model=text_model, seed=seed,
    )  # fmt: skip
    data.info.update(generator=world.params, cold_start_timestamp=world.cold_start_timestamp)
    return data


def _movielens(
    variant: str,
    *,
    root: str | os.PathLike[str] | None = None,
    download: bool = True,
    seed: int = 0,
    seq_len: int = 20,
    with_text: bool = False,
    text_model: str | None = None,
    tasks: Sequence[str] | None = None,
    split: str | None = None,
    n_negatives: int | None = None,
    n_eval_negatives: int | None = None,
) -> MultiTaskData:
    """MovieLens ``variant`` ("100k" or "1m") from ``root`` (downloaded once if ``download``).
    ``None`` means tasks click, like, rating, a leave-last-out split and one sampled negative
    per rating."""
    from mtlkit.data.movielens import load_movielens

    movielens = load_movielens(variant, root=root, download=download)
    data = _samples_from_log(
        movielens.ratings, movielens.users, movielens.items,
        user_sparse=(C.GENDER, C.AGE, C.OCCUPATION), user_dense=(), item_sparse=(), item_dense=(C.YEAR, C.GENRES),
        tasks=_MOVIELENS_TASKS if tasks is None else tasks, split=split or "leave-last-out",
        n_negatives=1 if n_negatives is None else n_negatives, n_eval_negatives=n_eval_negatives,
        seq_len=seq_len, with_text=with_text, text_model=text_model, seed=seed,
    )  # fmt: skip
    data.info["source"] = str(movielens.path.name)
    return data


def _samples_from_log(
    interactions: pd.DataFrame,
    users: pd.DataFrame,
    items: pd.DataFrame,
    *,
    tasks: Sequence[str],
    with_text: bool,
    text_model: str | None,
    **options: Any,
) -> MultiTaskData:
    """:func:`~mtlkit.data.builder.build_multitask_data` on a log (``options``: its other
    arguments), with the items' title embeddings (:func:`~mtlkit.data.text.embed_texts` with
    ``text_model``) if ``with_text``."""
    text = None
    if with_text:
        from mtlkit.data.text import embed_texts

        text = embed_texts(items[C.TITLE].astype(str).tolist(), model_name_or_path=text_model)
    return build_multitask_data(interactions, users, items, tasks=tuple(tasks), text_embeddings=text, **options)


@_forwarding_to(make_correlated_tasks)
def _synthetic_mmoe(
    *, size: str = "quick", seed: int = 0, correlation: float = 0.5, n: int | None = None, **generator_kwargs: Any
) -> MultiTaskData:
    """The MMoE paper's synthetic pair: ``n`` samples (default :data:`MMOE_SIZES` ``[size]``)
    with task correlation ``correlation``; features z-scored with training statistics;
    ``seed`` seeds the generator and the random 80/10/10 split."""
    n = MMOE_SIZES[size] if n is None else n
    world = make_correlated_tasks(n, correlation, seed=seed, **generator_kwargs)
    perm = np.random.default_rng(seed).permutation(n)
    n_train, n_valid = int(0.8 * n), int(0.1 * n)
    cuts = (n_train, n_train + n_valid)
    parts = {"train": perm[: cuts[0]], "valid": perm[cuts[0] : cuts[1]], "test": perm[cuts[1] :]}
    X = world.X.astype(np.float64)
    mean, std = X[parts["train"]].mean(0), X[parts["train"]].std(0)
    X = ((X - mean) / np.where(std > 0, std, 1.0)).astype(np.float32)
    splits = {
        part: TensorSamples.tabular(np.zeros((len(idx), 0), np.int64), X[idx], world.Y[idx])
        for part, idx in parts.items()
    }
    schema = FeatureSchema(
        n_users=1, n_items=1, sparse_fields=(), sparse_cardinalities=(),
        dense_fields=tuple(f"x{j}" for j in range(X.shape[1])), seq_len=0, tasks=_MMOE_TASKS,
    )  # fmt: skip
    y = world.Y[parts["train"]]
    info = {
        "split": "random",
        "correlation": float(correlation),
        "cosine": world.cosine,
        "label_pearson_train": float(np.corrcoef(y[:, 0], y[:, 1])[0, 1]),
        "splits": {part: split_statistics(samples, schema.task_names) for part, samples in splits.items()},
    }
    return MultiTaskData(schema=schema, **splits, info=info)


def _census_income(
    *, root: str | os.PathLike[str] | None = None, download: bool = True, tasks: Sequence[str] | None = None
) -> MultiTaskData:
    """Census-Income (KDD) from ``root`` (downloaded once if ``download``) with the task pair
    ``tasks`` (one of :data:`~mtlkit.data.census.CENSUS_TASK_PAIRS`; None: the first)."""
    from mtlkit.data.census import CENSUS_TASK_PAIRS, build_census_multitask, load_census_income

    tasks = CENSUS_TASK_PAIRS[0] if tasks is None else tuple(tasks)
    if tasks not in CENSUS_TASK_PAIRS:
        raise ValueError(f"tasks must be one of {CENSUS_TASK_PAIRS} for census-income, got {tasks!r}")
    return build_census_multitask(load_census_income(root, download=download), tasks)


def _kuairand_pure(
    *,
    root: str | os.PathLike[str] | None = None,
    tasks: Mapping[str, Any] | Sequence[str] | None = None,
    test_exposures: str = "standard",
    seq_len: int = 20,
    split_fractions: Sequence[float] = (0.8, 0.1, 0.1),
    verify_counts: bool = True,
    seed: int = 0,
) -> MultiTaskData:
    """KuaiRand-Pure from the extracted folder ``root`` (never downloaded: no checksum is
    published), verified unless ``verify_counts`` is False; ``tasks`` None: is_click, is_like,
    is_follow, long_view, log1p(play_time_ms)."""
    from mtlkit.data.kuairand import build_kuairand_multitask, load_kuairand_pure

    kuairand = load_kuairand_pure(root, random_log=test_exposures == "random", verify_counts=verify_counts)
    return build_kuairand_multitask(
        kuairand, tasks=tasks, test_exposures=test_exposures, seq_len=seq_len, split_fractions=split_fractions,
        seed=seed,
    )  # fmt: skip


#: name -> builder; ``tuple(DATASETS)`` are the names, ``dataset_parameters(name)`` its arguments.
DATASETS: dict[str, _Builder] = {
    "synthetic-funnel": _synthetic_funnel,
    "synthetic-mmoe": _synthetic_mmoe,
    "movielens-100k": functools.partial(_movielens, "100k"),
    "movielens-1m": functools.partial(_movielens, "1m"),
    "census-income": _census_income,
    "interactions": load_interactions,
    "kuairand-pure": _kuairand_pure,
}


# --------------------------------------------------------------------------------------------
# Input fields of a built data set
# --------------------------------------------------------------------------------------------


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


def keep_labels_of_users(data: MultiTaskData, task: str, fraction: float, *, seed: int = 0,
                         splits: Sequence[str] = ("train", "valid")) -> MultiTaskData:
    """``data`` in which ``task``'s labels are observed for a random ``fraction`` of the users only.

    A label-scarcity knob: e.g. purchases observed for 10 % of the users, as when only some
    users' conversions are tracked. The users are drawn once (seeded) from the schema's user
    indices and the same users keep their labels in every split of ``splits``; the other
    users' ``task`` labels become unobserved (``label_mask`` False). Splits not listed (by
    default the test split) keep every label, so a model is scored on everyone.

    Returns a new :class:`~mtlkit.data.tensors.MultiTaskData`; ``info["label_fraction"]``
    records ``{task: fraction}``.
    """
    fraction = check_number("fraction", fraction, low=0.0, high=1.0, low_open=True)
    column = list(data.schema.task_names).index(check_choice("task", task, data.schema.task_names))
    n_users = data.schema.n_users - 1
    kept = torch.zeros(data.schema.n_users, dtype=torch.bool)  # by user index; 0 (unknown) never kept
    chosen = np.random.default_rng(seed).permutation(n_users)[: max(1, round(fraction * n_users))] + 1
    kept[torch.from_numpy(chosen)] = True
    changed = {}
    for part in splits:
        samples = getattr(data, check_choice("splits", part, ("train", "valid", "test")))
        mask = samples[LABEL_MASK].clone()
        mask[:, column] &= kept[samples[USER]]
        changed[part] = TensorSamples({**samples.to_dict(), LABEL_MASK: mask})
    info = dict(data.info, label_fraction={**data.info.get("label_fraction", {}), task: fraction})
    return dataclasses.replace(data, info=info, **changed)
