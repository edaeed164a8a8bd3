"""The command line: ``python -m mtlkit {train,evaluate,recommend,demo,selfcheck,exercises}``.

Examples::

    python -m mtlkit demo                                   # MMoE vs single-task, offline
    python -m mtlkit train --data synthetic-funnel --model mmoe --weighting equal \\
        --epochs 3 --batch-size 512 --lr 1e-3 --device auto --seed 0 --out runs/mmoe
    python -m mtlkit evaluate --run runs/mmoe --split test
    python -m mtlkit recommend --run runs/mmoe --user 42 --k 10
    python -m mtlkit train --data log.csv --user-col user_id --item-col video_id \\
        --time-col time_ms --task is_click:binary --task is_like:binary:where=is_click \\
        --task play_time_ms:regression:log1p --model ple   # your own log, any tasks
    python -m mtlkit exercises --solutions                  # every notebook exercise's reference passes
    torchrun --nproc_per_node 2 -m mtlkit train ...         # distributed data parallel

This module only parses arguments and prints: :mod:`mtlkit.runs` writes and reads the run
folder (``config.json``, ``checkpoint.pt``, ``metrics.json``, ``history.csv``,
``history_epochs.csv``, all written atomically). With ``--adversary`` the protected attribute is not a model input: MovieLens is
loaded with ``drop_features=("gender",)`` unless ``--keep-protected-input`` is given (the
funnel's bot flag never is an input).

Bad input (an unknown name, a missing data folder, a bad value) prints one line on stderr
and exits with status 2; ``--debug`` shows the traceback instead. Heavy modules (torch)
are imported only when a command runs, so ``--help`` answers at once.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mtlkit.checks import SEED_LIMIT

__all__ = ["main", "build_parser", "format_table"]

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a Ctrl-C
# load_dataset argument -> the option that sets it; each is passed only to data sets that take it.
DATA_FLAGS = {"seed": "--data-seed", "size": "--size", "root": "--data-root", "download": "--no-download"}
DATA_DEFAULTS = {"seed": 0, "size": "quick"}
# load_dataset argument -> the option that sets it, for data sets read from a log by its column
# names (those that take user, item and time: "interactions", a file given as --data).
LOG_FLAGS = {"user": "--user-col", "item": "--item-col", "time": "--time-col", "tasks": "--task"}
SPEC_SUFFIX = ".json"  # --data as a spec file: a JSON object of load_interactions arguments
LOG_PATH_ARGUMENTS = ("log", "user_features", "item_features")  # recorded as absolute paths


# --------------------------------------------------------------------------- parsing helpers
class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line on stderr (exit status 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _data_names() -> tuple[str, ...]:
    from mtlkit.data.datasets import DATASETS

    return tuple(DATASETS)


def _model_names() -> tuple[str, ...]:
    from mtlkit.models import MODELS

    return tuple(MODELS)


def _adversary_names() -> tuple[str, ...]:
    from mtlkit.models.adversarial import PROTECTED_ATTRIBUTES

    return tuple(PROTECTED_ATTRIBUTES)


def _weighting_names() -> tuple[str, ...]:
    from mtlkit.weighting import WEIGHTINGS

    return tuple(WEIGHTINGS)


class _Names:
    """A metavar that lists a registry's names when help is printed (imports lazily)."""

    def __init__(self, names: Callable[[], Sequence[str]]) -> None:
        self._names = names

    def __str__(self) -> str:
        return "{" + ",".join(self._names()) + "}"

    __repr__ = __str__


def _registered(names: Callable[[], Sequence[str]]) -> Callable[[str], str]:
    """An argparse ``type`` accepting only names of a registry (checked lazily)."""

    def check(value: str) -> str:
        known = names()
        if value not in known:
            raise argparse.ArgumentTypeError(f"must be one of {', '.join(known)}; got {value!r}")
        return value

    return check


def _log_suffixes() -> tuple[str, ...]:
    from mtlkit.data.interactions import TABLE_SUFFIXES

    return TABLE_SUFFIXES


def _data_source(value: str) -> str:
    """An argparse ``type`` for --data: a registered name, a log file or a spec file."""
    if value.lower().endswith((*_log_suffixes(), SPEC_SUFFIX)):
        return value
    known = _data_names()
    if value not in known:
        raise argparse.ArgumentTypeError(
            f"must be one of {', '.join(known)} or a {', '.join(_log_suffixes())} log (or {SPEC_SUFFIX} spec) file; "
            f"got {value!r}"
        )
    return value


def _task(value: str) -> Any:
    """An argparse ``type`` for --task: ``COLUMN:KIND[:OPTION]...`` as a TaskColumn."""
    from mtlkit.data.tasks import TaskColumn

    try:
        return TaskColumn.parse(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _json_object(value: str) -> dict[str, Any]:
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"must be a JSON object, got {value!r} ({error.msg})") from None
    if not isinstance(parsed, dict):
        raise argparse.ArgumentTypeError(f"must be a JSON object like '{{\"key\": 1}}', got {value!r}")
    return parsed


def _number(kind: type, *, low: float, high: float | None = None, low_open: bool = False) -> Callable[[str], Any]:
    """An argparse ``type``: the text as ``kind`` (int or float) in range, checked by :mod:`mtlkit.checks`."""
    from mtlkit.checks import check_int, check_number

    def convert(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {'an integer' if kind is int else 'a number'}, got {text!r}") from None
        try:
            if kind is int:
                return check_int("value", value, low=int(low), high=high)
            return check_number("value", value, low=low, high=high, low_open=low_open)
        except ValueError as error:  # "value must be an int >= 1, got 0" -> "must be an int >= 1, got 0"
            raise argparse.ArgumentTypeError(str(error).removeprefix("value ")) from None

    return convert


_positive_int = _number(int, low=1)
_positive_float = _number(float, low=0, low_open=True)
_non_negative_float = _number(float, low=0)
_seed = _number(int, low=0, high=SEED_LIMIT)


# --------------------------------------------------------------------------- the parser
def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m mtlkit`` (cheap: imports nothing heavy)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    common.add_argument("--threads", type=_positive_int, metavar="N",
                        help="CPU threads for torch (default: torch's choice; 1 is often fastest "
                        "for these small models on a busy machine)")

    parser = _Parser(
        prog="mtlkit",
        description="Multi-task learning for recommender systems with Transformers: train, evaluate, recommend.",
        epilog="Run `mtlkit COMMAND --help` for a command's options.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    # ---- train
    train = commands.add_parser(
        "train", parents=[common], help="train a model and write a run folder",
        description="Train a multi-task model; write config.json, history.csv, history_epochs.csv, "
        "metrics.json and checkpoint.pt into --out. Runs under torchrun for data parallelism.",
    )
    _add_data_options(train)
    _add_training_options(train)
    train.add_argument("--out", type=Path, help="run folder (default runs/DATA-MODEL-WEIGHTING-seedS)")
    train.add_argument("--resume", action="store_true",
                       help="continue the run in --out from its checkpoint (the settings must match; more --epochs "
                            "are allowed unless the schedule is cosine)")
    train.add_argument("--overwrite", action="store_true", help="replace a run that --out already holds")

    # ---- evaluate
    evaluate = commands.add_parser(
        "evaluate", parents=[common], help="per-task metrics of a finished run",
        description="Rebuild a finished run (its data, model and checkpoint) and print per-task metrics.",
    )
    evaluate.add_argument("--run", type=Path, required=True, help="a run folder written by `mtlkit train`")
    evaluate.add_argument("--split", choices=("valid", "test"), default="test", help="split to evaluate (default test)")
    evaluate.add_argument("--ranking-k", type=_positive_int, metavar="K",
                          help="also full-catalog ranking metrics HR@K, NDCG@K, recall@K, MRR")
    evaluate.add_argument("--max-users", type=_positive_int, help="rank for a random subset of users only")
    evaluate.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default auto)")

    # ---- recommend
    recommend = commands.add_parser(
        "recommend", parents=[common], help="top-k items for a user of a finished run",
        description="Top-k recommendations for users of a finished run (raw user ids as in the data).",
    )
    recommend.add_argument("--run", type=Path, required=True, help="a run folder written by `mtlkit train`")
    recommend.add_argument("--user", action="append", required=True, metavar="U",
                           help="raw user id (repeat for several users)")
    recommend.add_argument("--k", type=_positive_int, default=10, help="items per user (default 10)")
    recommend.add_argument("--score", default="ctr",
                           help="ctr, ctcvr or a task name: what to rank by (default ctr)")
    recommend.add_argument("--include-seen", action="store_true", help="do not exclude items the user interacted with")
    recommend.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default auto)")

    # ---- demo
    demo = commands.add_parser(
        "demo", parents=[common], help="when does sharing help? the transfer experiment, offline",
        description="The self-check table, then single-task, shared-bottom and MMoE models on the offline "
        "synthetic funnel in two settings (related tasks with purchase labels for 30 % and for 100 % of "
        "the users), over a few seeds: each model's test AUC beside the achievable bound, and the paired gain over the "
        "single-task model with a verdict.",
    )
    demo.add_argument("--seed", type=_seed, default=0, help="first seed (default 0)")
    demo.add_argument("--seeds", type=_positive_int, default=3, help="seeds per setting (default 3)")
    demo.add_argument("--jobs", type=_positive_int, help="worker processes on a CPU (default: one per core)")
    demo.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default auto)")

    # ---- selfcheck
    commands.add_parser(
        "selfcheck", parents=[common], help="check the installation quickly",
        description="Run mtlkit's quick self-check of the installation.",
    )

    # ---- exercises
    exercises = commands.add_parser(
        "exercises", parents=[common], help="list the notebooks' checkable exercises",
        description="List the checkable exercises of the notebooks (check one in a notebook with "
        "mtlkit.exercises.check(id, answer)); --solutions runs every reference solution, from notebooks/solutions/ "
        "of a repository checkout, through its check.",
    )
    exercises.add_argument("--solutions", action="store_true",
                           help="check every reference solution and print a pass table; exit 1 if one fails")
    return parser


def _add_data_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("data")
    group.add_argument("--data", type=_data_source, default="synthetic-funnel",
                       metavar=_Names(lambda: (*_data_names(), "FILE")),
                       help="data set (default synthetic-funnel), or your own log: a .csv, .csv.gz or .parquet file "
                            "(with --user-col, --item-col, --time-col, --task) or a .json spec of load_interactions "
                            "arguments")
    group.add_argument("--user-col", metavar="COLUMN", help="own log: the user id column")
    group.add_argument("--item-col", metavar="COLUMN", help="own log: the item id column")
    group.add_argument("--time-col", metavar="COLUMN", help="own log: the time column (numbers in any unit, or dates)")
    group.add_argument("--task", type=_task, action="append", metavar="COLUMN:KIND[:OPTION]",
                       help="own log: a label column and its kind (binary or regression); repeat for each task. "
                            "Options: where=OTHER (observed only where OTHER is 1), entire=OTHER (OTHER AND COLUMN "
                            "on every row, ESMM's CTCVR), log1p (transform a regression target), name=NAME")
    group.add_argument("--data-root", type=Path,
                       help="folder holding (or receiving) the files of a real data set (MovieLens, Census-Income, "
                            "KuaiRand-Pure)")
    group.add_argument("--size", choices=("quick", "full"), help="synthetic data size (default quick)")
    group.add_argument("--data-seed", type=_seed,
                       help="seed of the synthetic world, split and negative sampling (default 0)")
    group.add_argument("--data-kwargs", type=_json_object, default={}, metavar="JSON",
                       help="more load_dataset arguments, e.g. '{\"seq_len\": 10}'")
    group.add_argument("--no-download", action="store_true", help="never download; the files must be in --data-root")


def _add_training_options(parser: argparse.ArgumentParser) -> None:
    model = parser.add_argument_group("model")
    model.add_argument("--model", type=_registered(_model_names), default="mmoe",
                       metavar=_Names(_model_names), help="architecture (default mmoe)")
    model.add_argument("--model-kwargs", type=_json_object, default={}, metavar="JSON",
                       help="model config fields, e.g. '{\"n_experts\": 8, \"dropout\": 0.2}'")
    train = parser.add_argument_group("training")
    train.add_argument("--weighting", type=_registered(_weighting_names), default="equal",
                       metavar=_Names(_weighting_names), help="task-balancing strategy (default equal)")
    train.add_argument("--weighting-kwargs", type=_json_object, default={}, metavar="JSON",
                       help="strategy arguments, e.g. '{\"weights\": {\"click\": 1, \"purchase\": 5}}'")
    train.add_argument("--epochs", type=_positive_int, default=5, help="epochs (default 5)")
    train.add_argument("--batch-size", type=_positive_int, default=256, help="global batch size (default 256)")
    train.add_argument("--lr", type=_positive_float, default=1e-3, help="learning rate (default 1e-3)")
    train.add_argument("--weight-decay", type=_non_negative_float, default=0.0, help="weight decay (default 0)")
    train.add_argument("--optimizer", choices=("adam", "adamw"), default="adam", help="optimiser (default adam)")
    train.add_argument("--scheduler", choices=("none", "cosine", "step"), default="none",
                       help="learning-rate schedule (default none)")
    train.add_argument("--grad-clip-norm", type=_positive_float, help="clip the gradient norm to this value")
    train.add_argument("--early-stopping", metavar="METRIC",
                       help="epoch-history column to monitor, e.g. valid/click/auc")
    train.add_argument("--patience", type=_positive_int, default=3, help="early-stopping patience in epochs (default 3)")
    train.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default auto)")
    train.add_argument("--amp", choices=("auto", "on", "off"), default="auto",
                       help="bf16 autocast: auto = on CUDA only (default auto)")
    train.add_argument("--compile", action="store_true", help="torch.compile the model")
    train.add_argument("--seed", type=_seed, default=0, help="training seed (default 0)")
    train.add_argument("--record-gradients", action="store_true",
                       help="record per-task gradient norms and cosines in the history")
    train.add_argument("--log-every", type=_positive_int, default=10, help="steps per history row (default 10)")
    train.add_argument("--eval-batch-size", type=_positive_int, default=4096, help="evaluation batch size (default 4096)")
    train.add_argument("--quiet", action="store_true", help="no progress bars")
    train.add_argument("--adversary", type=_registered(_adversary_names), metavar=_Names(_adversary_names),
                       help="train an adversary that predicts this user attribute from the shared representation "
                            "through a gradient-reversal layer (gender: MovieLens; bot: synthetic funnel)")
    train.add_argument("--adversary-strength", type=_non_negative_float, default=1.0, metavar="LAMBDA",
                       help="λ of the gradient reversal (default 1; 0 only measures the attribute's recoverability)")
    train.add_argument("--keep-protected-input", action="store_true",
                       help="with --adversary gender: keep gender as a model input (by default it is dropped, so "
                            "the adversary removes what the other inputs and the behaviour reveal about it)")


# --------------------------------------------------------------------------- tables
def format_table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    """A plain-text table: columns aligned, floats with 4 decimals, NaN as "-"."""

    def cell(value: Any) -> str:
        if isinstance(value, float):
            return "-" if value != value else f"{value:.4f}"
        return "" if value is None else str(value)

    cells = [[cell(v) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    numeric = [bool(rows) and all(_is_number(r[i]) for r in rows) for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if numeric[i] else v.ljust(w) for i, (v, w) in enumerate(zip(values, widths))).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in cells)])


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _metrics_rows(metrics: dict[str, dict[str, dict[str, float]]], splits: Sequence[str]) -> list[list[Any]]:
    """Rows (task, metric, value per split) from {split: {task: {metric: value}}}."""
    first = metrics[splits[0]]
    return [[task, name, *(metrics[s][task][name] for s in splits)] for task in first for name in first[task]]


def _summary_rows(metrics: dict[str, Any], splits: Sequence[str]) -> list[list[Any]]:
    """Rows for the macro/micro averages across tasks and the adversary, when the splits have them."""
    rows: list[list[Any]] = []
    first = metrics[splits[0]]
    for average in ("macro", "micro"):
        for name in first.get("summary", {}).get(average, {}):
            rows.append([f"{average} average", name, *(metrics[s]["summary"][average][name] for s in splits)])
    if "adversary" in first:
        head, probe = "adversary head (held-out users)", "linear probe (held-out users)"
        for label, name, key in ((head, "auc", "auc"), (probe, "auc", "linear_probe_auc"),
                                 (head, "logloss", "logloss")):
            rows.append([label, name, *(metrics[s]["adversary"][key] for s in splits)])
    return rows


# --------------------------------------------------------------------------- commands
def _data_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The load_dataset arguments (stored in config.json so a run can be rebuilt)."""
    if args.data_root is not None and not args.data_root.is_dir():
        raise FileNotFoundError(
            f"--data-root {str(args.data_root)!r} is not a folder; create it or leave --data-root out "
            "to use the default cache folder"
        )
    from mtlkit.data.datasets import dataset_parameters

    name, kwargs = _data_file_kwargs(args.data)
    takes = dataset_parameters(name)
    given = {"seed": args.data_seed, "size": args.size, "download": False if args.no_download else None,
             "root": None if args.data_root is None else str(args.data_root)}
    for key, value in given.items():
        if value is not None and key not in takes:
            raise ValueError(f"{DATA_FLAGS[key]} does not apply to --data {args.data}; it takes {list(takes)}")
        if value is None and key in DATA_DEFAULTS and key in takes and key not in kwargs:
            value = DATA_DEFAULTS[key]  # recorded in config.json, so the run says which world it used
        if value is not None:
            kwargs[key] = value
    reads_log = {"user", "item", "time"} <= set(takes)
    log_flags = {"user": args.user_col, "item": args.item_col, "time": args.time_col,
                 "tasks": None if args.task is None else {task.name: task.spec() for task in args.task}}
    for key, value in log_flags.items():
        if value is not None and not reads_log:
            raise ValueError(f"{LOG_FLAGS[key]} applies to your own log (--data FILE), not to --data {args.data}")
        if value is not None:
            kwargs[key] = value
    reserved = sorted(set(args.data_kwargs) & {"name", *DATA_FLAGS, *(LOG_FLAGS if reads_log else ())})
    if reserved:
        raise ValueError(f"--data-kwargs must not set {reserved}; use the matching options")
    kwargs.update(args.data_kwargs)
    if reads_log:
        absent = [flag for key, flag in LOG_FLAGS.items() if key not in kwargs]
        if absent:
            raise ValueError(f"--data {args.data} needs {', '.join(absent)} (or a {SPEC_SUFFIX} spec file naming them)")
        paths = [key for key in LOG_PATH_ARGUMENTS if isinstance(kwargs.get(key), str)]
        kwargs.update({key: str(Path(kwargs[key]).resolve()) for key in paths})  # load_run works from any folder
    kwargs = {"name": name, **kwargs}
    if args.adversary is None:
        return kwargs
    attribute = _protected_attribute(args.adversary)
    if args.data not in attribute.data_sets:
        raise ValueError(
            f"--adversary {args.adversary} needs a data set whose users carry that attribute "
            f"({', '.join(attribute.data_sets)}), got --data {args.data}"
        )
    field = attribute.input_field
    if field is not None and not args.keep_protected_input:
        kwargs["drop_features"] = list(dict.fromkeys([*kwargs.get("drop_features", ()), field]))
    return kwargs


def _data_file_kwargs(data: str) -> tuple[str, dict[str, Any]]:
    """(registry name, arguments) of --data: a log file is ``interactions`` reading it; a spec
    file holds those arguments (paths in it relative to its folder); a name has none yet."""
    path = Path(data).expanduser()
    if data.lower().endswith(_log_suffixes()):
        return "interactions", {"log": str(path)}
    if not data.lower().endswith(SPEC_SUFFIX):
        return data, {}
    from mtlkit.utils import read_json

    try:
        spec = read_json(path)
    except OSError as error:
        raise FileNotFoundError(f"--data spec file {str(path)!r} cannot be read ({error.strerror})") from None
    except ValueError as error:
        raise ValueError(f"--data spec file {path.name} is not valid JSON ({error})") from None
    if not isinstance(spec, dict) or "log" not in spec:
        raise ValueError(f"--data spec file {path.name} must hold a JSON object of load_interactions arguments "
                         "with 'log'")
    spec.update({key: str(path.parent / spec[key]) for key in LOG_PATH_ARGUMENTS if isinstance(spec.get(key), str)})
    return "interactions", spec


def _protected_attribute(name: str) -> Any:
    from mtlkit.models.adversarial import PROTECTED_ATTRIBUTES

    return PROTECTED_ATTRIBUTES[name]


def _protected_input_note(args: argparse.Namespace) -> str | None:
    """One line on whether the adversary's attribute is a model input (None without --adversary)."""
    if args.adversary is None:
        return None
    field = _protected_attribute(args.adversary).input_field
    if field is None:
        return f"--adversary {args.adversary}: the attribute is not a model input (nothing to drop)"
    if args.keep_protected_input:
        return f"--adversary {args.adversary}: the input field {field!r} is kept (--keep-protected-input)"
    return (f"--adversary {args.adversary}: the input field {field!r} is dropped from the model inputs "
            "(--keep-protected-input keeps it)")


def _train_config(args: argparse.Namespace):
    from mtlkit.training import TrainConfig

    return TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        weight_decay=args.weight_decay,
        optimizer=args.optimizer,
        scheduler=args.scheduler,
        grad_clip_norm=args.grad_clip_norm,
        weighting=args.weighting,
        weighting_kwargs=args.weighting_kwargs,
        device=args.device,
        amp={"auto": "auto", "on": True, "off": False}[args.amp],
        compile=args.compile,
        seed=args.seed,
        early_stopping=args.early_stopping,
        patience=args.patience,
        record_gradients=args.record_gradients,
        log_every=args.log_every,
        eval_batch_size=args.eval_batch_size,
        quiet=args.quiet,
        adversary=args.adversary,
        adversary_strength=args.adversary_strength,
    )


def _print_metrics(metrics: dict[str, Any], title: str) -> None:
    splits = [s for s in ("valid", "test") if s in metrics]
    table = {s: metrics[s]["tasks"] for s in splits}
    print(title)
    print(format_table(_metrics_rows(table, splits) + _summary_rows(metrics, splits), ["task", "metric", *splits]))


def cmd_train(args: argparse.Namespace) -> int:
    from mtlkit.runs import train_run
    from mtlkit.training import shutdown_distributed

    data_kwargs = _data_kwargs(args)
    config = _train_config(args)
    out = args.out or Path("runs") / f"{data_kwargs['name']}-{args.model}-{args.weighting}-seed{args.seed}"
    note = _protected_input_note(args)
    if note is not None:
        print(note)
    try:
        trainer, metrics = train_run(data_kwargs, args.model, args.model_kwargs, config, out, resume=args.resume,
                                     overwrite=args.overwrite)
        if trainer.is_main_process:
            run = metrics["run"]
            _print_metrics(
                metrics,
                f"{run['model']} on {run['data']} ({run['weighting']} weighting, {run['epochs']} epochs, "
                f"{run['train_seconds']:.1f} s) -> {out}",
            )
    finally:
        shutdown_distributed()
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from mtlkit.runs import load_run, split_metrics

    trainer = load_run(args.run, device=args.device)
    if not trainer.finished:
        print(f"mtlkit evaluate: note: {args.run} is a partial run (epoch {trainer.epoch} of "
              f"{trainer.config.epochs}; it was interrupted): continue it with `mtlkit train ... --resume`",
              file=sys.stderr)
    metrics = {args.split: split_metrics(trainer, args.split)}
    _print_metrics(metrics, f"{args.run} ({args.split} split)")
    if args.ranking_k is not None:
        kinds = trainer.data.schema.task_kinds
        if "binary" not in kinds.values():
            raise ValueError(f"--ranking-k needs a binary task to say which items are relevant; this run's tasks "
                             f"are all regression tasks {list(kinds)}")
        from mtlkit.recommend import evaluate_ranking

        ranking = evaluate_ranking(trainer.model, trainer.data, args.ranking_k, split=args.split,
                                   max_users=args.max_users)
        rows = [[name, float(value) if name != "users" else int(value)] for name, value in ranking.items()]
        print(format_table(rows, ["ranking metric", "value"]))
    return 0


def cmd_recommend(args: argparse.Namespace) -> int:
    from mtlkit.recommend import raw_item_ids, recommend, user_indices
    from mtlkit.runs import load_run

    trainer = load_run(args.run, device=args.device)
    data = trainer.data
    users = user_indices(data, args.user)
    items, scores = recommend(trainer.model, data, users, args.k, exclude_seen=not args.include_seen, score=args.score)
    titles = data.schema.item_titles
    raw = raw_item_ids(data, items)
    rows = []
    for u, user in enumerate(args.user):
        for rank in range(items.shape[1]):
            index = int(items[u, rank])
            if index < 0:
                continue
            title = titles[index] if titles is not None and index < len(titles) else ""
            rows.append([user, rank + 1, raw[u][rank], title, float(scores[u, rank])])
    print(format_table(rows, ["user", "rank", "item", "title", f"score ({args.score})"]))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """The README's main job: the math core's self-check table, then the transfer experiment in
    the settings where its answer is stable (:data:`mtlkit.transfer.DEMO_SETTINGS`): each model's
    test AUC beside the achievable bound, and the paired gain over single-task with a verdict."""
    import os

    from mtlkit.selfcheck import main as selfcheck_main
    from mtlkit.stats import VERDICT_RULE
    from mtlkit.transfer import DEMO_MODELS, DEMO_SETTINGS, SPARSE_TASK, report_lines, run_cells
    from mtlkit.utils import resolve_device

    started = time.perf_counter()
    if selfcheck_main(n_trials=5) != 0:
        return 1
    device = resolve_device(args.device)
    seeds = list(range(args.seed, args.seed + args.seeds))
    jobs = (args.jobs or min(len(seeds) * len(DEMO_SETTINGS), os.cpu_count() or 1)) if device.type == "cpu" else 1
    print(f"\nWhen does sharing help? {', '.join(DEMO_MODELS)} on the synthetic funnel, seeds {seeds}, "
          f"{jobs} worker process(es) ...", flush=True)
    settings = list(DEMO_SETTINGS.values())
    cells = run_cells(settings, seeds, DEMO_MODELS, jobs=jobs, device=str(device))
    for (label, setting), start_at in zip(DEMO_SETTINGS.items(), range(0, len(cells), len(seeds))):
        print(f"\n{label}: task relatedness rho = {setting.relatedness:g}, {SPARSE_TASK} labels for "
              f"{setting.label_fraction:.0%} of the users; test split, {len(seeds)} seeds")
        print("\n".join(report_lines(cells[start_at : start_at + len(seeds)])))
    print(f"\nverdict rule: {VERDICT_RULE}")
    print(f"the bound: the Bayes-optimal AUC on the same rows (no model can see the hidden intent); "
          f"total {time.perf_counter() - started:.0f} s")
    return 0


def cmd_selfcheck(args: argparse.Namespace) -> int:
    from mtlkit.selfcheck import main as selfcheck_main

    return selfcheck_main()


def cmd_exercises(args: argparse.Namespace) -> int:
    from mtlkit.exercises import EXERCISES, solution

    if not args.solutions:
        rows = [[item.id, item.notebook, item.kind, item.statement] for item in EXERCISES.values()]
        print(format_table(rows, ["id", "notebook", "kind", "statement"]))
        print(f"\n{len(rows)} exercises; check one in its notebook with mtlkit.exercises.check(id, answer)")
        return 0
    answers = {exercise_id: solution(exercise_id) for exercise_id in EXERCISES}  # every file read before timing
    rows, failed = [], []
    started = time.perf_counter()
    for exercise_id, item in EXERCISES.items():
        start = time.perf_counter()
        result = item.evaluate(answers[exercise_id])
        rows.append([exercise_id, result.status, time.perf_counter() - start])
        if not result.passed:
            failed.append(result)
    print(format_table(rows, ["id", "solution", "seconds"]))
    for result in failed:
        print(result)
    print(f"\n{len(rows) - len(failed)} of {len(rows)} reference solutions pass their checks "
          f"({time.perf_counter() - started:.1f} s)")
    return 1 if failed else 0


COMMANDS = {
    "train": cmd_train,
    "evaluate": cmd_evaluate,
    "recommend": cmd_recommend,
    "demo": cmd_demo,
    "selfcheck": cmd_selfcheck,
    "exercises": cmd_exercises,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0, or 2 on bad input)."""
    args = build_parser().parse_args(argv)
    try:
        if args.threads is not None:
            import torch

            torch.set_num_threads(args.threads)
        return COMMANDS[args.command](args)
    except KeyboardInterrupt as interrupt:  # Ctrl-C; train says where (mtlkit.runs.RunInterrupted)
        if args.debug:
            raise
        print(f"mtlkit {args.command}: {str(interrupt) or 'interrupted'}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (ValueError, TypeError, OSError) as error:
        if args.debug:
            raise
        # an OSError's "[Errno 28] " prefix says nothing a user needs; its text and file do
        text = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        if isinstance(error, OSError) and error.filename and str(error.filename) not in text:
            text = f"{text}: {error.filename}"
        message = " ".join(text.split()) or type(error).__name__
        print(f"mtlkit {args.command}: error: {message}", file=sys.stderr)
        return EXIT_USAGE
