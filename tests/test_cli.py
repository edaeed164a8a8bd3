"""The command line end to end on a tiny synthetic run, and its one-line errors."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pandas as pd
import pytest
import torch
from kuairand_fixture import write_kuairand_pure
from own_log import OWN_TASKS, make_own_log

from mtlkit import cli

TINY_DATA = json.dumps({"n_users": 50, "n_items": 30, "n_impressions": 700, "seq_len": 4})
TINY_MODEL = json.dumps({"embedding_dim": 4, "d_model": 8, "n_heads": 1, "d_ff": 8, "tower_hidden": [8],
                         "n_experts": 2, "expert_hidden": [8]})
TRAIN = ["train", "--data", "synthetic-funnel", "--data-kwargs", TINY_DATA, "--model", "mmoe",
         "--model-kwargs", TINY_MODEL, "--batch-size", "64", "--lr", "0.01", "--device", "cpu", "--quiet"]


pytestmark = pytest.mark.usefixtures("one_thread")


def run(argv, capsys):
    """cli.main in-process: (exit status, stdout, stderr); argparse errors exit via SystemExit."""
    try:
        status = cli.main(argv)
    except SystemExit as exit_:
        status = exit_.code
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "mmoe"
    assert cli.main([*TRAIN, "--epochs", "2", "--weighting", "uncertainty", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def mmoe_run(tmp_path_factory):
    """A run on a tabular data set: no users, no items, regression tasks only."""
    out = tmp_path_factory.mktemp("runs") / "mmoe-synthetic"
    argv = ["train", "--data", "synthetic-mmoe", "--data-kwargs", '{"n": 300}', "--model", "shared-bottom",
            "--epochs", "1", "--device", "cpu", "--quiet", "--out", str(out)]
    assert cli.main(argv) == 0
    return out


def test_help_is_fast_and_imports_no_torch():
    code = "import sys, mtlkit.cli as c; c.build_parser(); print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "False"
    result = subprocess.run([sys.executable, "-m", "mtlkit", "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "train" in result.stdout and "recommend" in result.stdout


def test_train_writes_the_run_folder(finished_run):
    assert {"config.json", "history.csv", "history_epochs.csv", "metrics.json", "checkpoint.pt"} <= {
        p.name for p in finished_run.iterdir()
    }
    assert not [p for p in finished_run.iterdir() if p.name.startswith(".")]  # no temporary files
    config = json.loads((finished_run / "config.json").read_text())
    assert config["data"]["name"] == "synthetic-funnel" and config["data"]["n_users"] == 50
    assert config["model"]["name"] == "mmoe" and config["model"]["config"]["n_experts"] == 2
    assert config["train"]["weighting"] == "uncertainty" and config["train"]["epochs"] == 2
    assert [t["name"] for t in config["schema"]["tasks"]] == ["click", "purchase", "rating"]
    metrics = json.loads((finished_run / "metrics.json").read_text())
    assert set(metrics["test"]["tasks"]) == {"click", "purchase", "rating"}
    assert set(metrics["test"]["tasks"]["click"]) == {"auc", "logloss", "gauc"}
    assert set(metrics["valid"]["tasks"]["rating"]) == {"rmse", "mae"}
    assert metrics["run"]["epochs"] == 2
    epochs = pd.read_csv(finished_run / "history_epochs.csv")
    assert len(epochs) == 2 and "weight/click" in epochs and "valid/click/auc" in epochs
    assert "loss/rating" in pd.read_csv(finished_run / "history.csv")


def test_evaluate_reprints_the_recorded_metrics(finished_run, capsys):
    status, out, _ = run(["evaluate", "--run", str(finished_run), "--split", "test", "--device", "cpu"], capsys)
    assert status == 0
    recorded = json.loads((finished_run / "metrics.json").read_text())["test"]["tasks"]
    for task, values in recorded.items():
        for metric, value in values.items():
            line = next(line for line in out.splitlines() if line.split()[:2] == [task, metric])
            shown = line.split()[2]
            assert shown == "-" if value is None else float(shown) == pytest.approx(value, abs=1e-4)


def test_evaluate_with_ranking_metrics(finished_run, capsys):
    status, out, _ = run(["evaluate", "--run", str(finished_run), "--ranking-k", "5", "--device", "cpu"], capsys)
    assert status == 0
    for name in ("hr@5", "ndcg@5", "recall@5", "mrr", "users"):
        assert name in out


def test_recommend_prints_k_items_per_user(finished_run, capsys):
    from mtlkit.training import load_run

    data = load_run(finished_run, device="cpu").data
    raw_users = [str(u) for u in list(data.user_index)[:2]]
    status, out, _ = run(["recommend", "--run", str(finished_run), "--user", raw_users[0], "--user", raw_users[1],
                          "--k", "3", "--device", "cpu"], capsys)
    assert status == 0
    rows = [line.split() for line in out.splitlines()[2:]]
    assert len(rows) == 6
    assert [r[0] for r in rows] == [raw_users[0]] * 3 + [raw_users[1]] * 3
    assert [r[1] for r in rows] == ["1", "2", "3"] * 2
    scores = [float(r[-1]) for r in rows[:3]]
    assert scores == sorted(scores, reverse=True)


def test_resume_continues_a_run(tmp_path, capsys):
    out = tmp_path / "run"
    assert run([*TRAIN, "--epochs", "1", "--out", str(out)], capsys)[0] == 0
    assert run([*TRAIN, "--epochs", "2", "--out", str(out), "--resume"], capsys)[0] == 0
    assert list(pd.read_csv(out / "history_epochs.csv")["epoch"]) == [1, 2]


@pytest.mark.parametrize(
    "argv, words",
    [
        (["train", "--model", "nope"], ["--model", "nope"]),
        (["train", "--weighting", "nope"], ["--weighting", "nope"]),
        (["train", "--data", "netflix"], ["--data", "netflix"]),
        (["train", "--epochs", "0"], ["--epochs"]),
        (["train", "--lr", "fast"], ["--lr"]),
        (["train", "--weighting-kwargs", "{oops"], ["--weighting-kwargs", "JSON"]),
        (["train", "--data", "movielens-100k", "--data-root", "MISSING"], ["--data-root", "not a folder"]),
        ([*TRAIN, "--model-kwargs", '{"n_experts": -1}'], ["n_experts"]),
        ([*TRAIN[:-3], "--device", "cuda" if not torch.cuda.is_available() else "tpu"], ["device"]),
        ([*TRAIN, "--weighting", "static", "--weighting-kwargs", '{"weights": {"nope": 1}}'], ["nope"]),
        ([*TRAIN, "--early-stopping", "valid/click/rmse"], ["early_stopping", "valid/click/rmse"]),
        ([*TRAIN, "--adversary", "gender"], ["--adversary gender", "movielens-100k", "synthetic-funnel"]),
        (["evaluate", "--run", "MISSING"], ["config.json"]),
        (["frobnicate"], ["frobnicate"]),
        ([*TRAIN, "--seed", str(2**64)], ["--seed", str(2**64)]),
        (["train", "--data", "census-income", "--data-seed", "3"], ["--data-seed", "census-income"]),
        (["train", "--data", "census-income", "--size", "full"], ["--size", "census-income"]),
        (["train", "--data", "synthetic-funnel", "--data-root", "EXISTING"], ["--data-root", "synthetic-funnel"]),
        ([*TRAIN, "--model", "lm", "--model-kwargs", '{"model_name": "org/not-cached"}'],
         ["'org/not-cached' is not a local folder", "cannot be reached"]),
        (["recommend", "--run", "MMOE_RUN", "--user", "1"], ["users and items", "synthetic-mmoe"]),
        (["evaluate", "--run", "MMOE_RUN", "--ranking-k", "5"], ["--ranking-k", "binary task"]),
    ],
)
def test_bad_input_gives_one_line_and_exit_status_2(argv, words, capsys, tmp_path, mmoe_run):
    places = {"MISSING": tmp_path / "missing", "EXISTING": tmp_path, "MMOE_RUN": mmoe_run}
    argv = [str(places[a]) if a in places else a for a in argv]
    status, out, err = run(argv, capsys)
    assert status == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for word in words:
        assert word in lines[0]


def test_unknown_user_is_one_line(finished_run, capsys):
    status, _, err = run(["recommend", "--run", str(finished_run), "--user", "no-such-user", "--device", "cpu"], capsys)
    assert status == 2 and "no-such-user" in err and len(err.strip().splitlines()) == 1


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(FileNotFoundError):
        cli.main(["evaluate", "--run", str(tmp_path / "missing"), "--debug"])


def test_a_real_process_exits_2_without_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mtlkit", "evaluate", "--run", str(tmp_path / "missing")],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_demo_runs_the_transfer_experiment_and_prints_verdicts(capsys, monkeypatch):
    from mtlkit import transfer

    tiny = {"n_users": 80, "n_items": 30, "n_impressions": 2_000}
    monkeypatch.setattr(transfer, "DEMO_SETTINGS", {
        "related": transfer.TransferSetting(0.9, 0.3, world=tiny, seq_len=3, epochs=1),
        "opposed": transfer.TransferSetting(-0.5, 1.0, world=tiny, seq_len=3, epochs=1),
    })  # fmt: skip
    status, out, _ = run(["demo", "--seeds", "2", "--jobs", "1", "--device", "cpu"], capsys)
    assert status == 0
    assert "all within tolerance" in out  # the self-check table comes first
    for words in ("related: task relatedness rho = 0.9, purchase labels for 30% of the users",
                  "opposed: task relatedness rho = -0.5", "verdict rule:"):
        assert words in out
    for model in transfer.DEMO_MODELS:
        assert any(line.split()[:1] == [model] for line in out.splitlines())
    verdicts = [line for line in out.splitlines() if "− single:" in line]
    assert len(verdicts) == 4 and all(line.rsplit(": ", 1)[1] in ("helps", "hurts", "within noise") for line in verdicts)


def test_selfcheck_prints_the_agreement_table(capsys):
    status, out, _ = run(["selfcheck"], capsys)
    assert status == 0
    assert "| attention.MultiHeadAttention" in out and "sklearn.metrics.ndcg_score" in out
    assert "all within tolerance" in out

def test_train_with_an_adversary_reports_the_probe_next_to_the_head(tmp_path, capsys):
    data = json.dumps({**json.loads(TINY_DATA), "n_users": 100, "bot_fraction": 0.3})
    out = tmp_path / "adversary"
    argv = [*TRAIN, "--data-kwargs", data, "--epochs", "1", "--adversary", "bot", "--out", str(out)]
    status, printed, _ = run(argv, capsys)
    assert status == 0
    assert "--adversary bot: the attribute is not a model input" in printed.splitlines()[0]
    config = json.loads((out / "config.json").read_text())
    assert "drop_features" not in config["data"]  # the funnel's bot flag is never an input:
    assert not [f for f in config["schema"]["sparse_fields"] + config["schema"]["dense_fields"] if "bot" in f]
    metrics = json.loads((out / "metrics.json").read_text())
    for split in ("valid", "test"):
        adversary = metrics[split]["adversary"]
        assert {"auc", "logloss", "linear_probe_auc"} <= set(adversary)
        assert 0.0 <= adversary["linear_probe_auc"] <= 1.0 or math.isnan(adversary["linear_probe_auc"])
    rows = [line.split() for line in printed.splitlines()]
    assert ["linear", "probe", "(held-out", "users)", "auc"] in [row[:5] for row in rows]
    assert ["adversary", "head", "(held-out", "users)", "auc"] in [row[:5] for row in rows]


@pytest.mark.parametrize("keep", [False, True])
def test_adversary_gender_drops_the_gender_input_unless_kept(keep):
    argv = ["train", "--data", "movielens-100k", "--adversary", "gender", "--data-kwargs", '{"drop_features": ["age"]}']
    args = cli.build_parser().parse_args(argv + ["--keep-protected-input"] * keep)
    kwargs = cli._data_kwargs(args)
    assert kwargs["drop_features"] == (["age"] if keep else ["age", "gender"])
    assert ("is kept" if keep else "is dropped") in cli._protected_input_note(args)


# --------------------------------------------------------------------------- your own log
OWN_COLUMNS = ["--user-col", "uid", "--item-col", "video_id", "--time-col", "ts"]
ONE_EPOCH = ["--model-kwargs", TINY_MODEL, "--batch-size", "64", "--lr", "0.01", "--device", "cpu", "--quiet",
             "--epochs", "1"]  # fmt: skip
OWN_TRAIN = [*OWN_COLUMNS, *[arg for task in OWN_TASKS for arg in ("--task", task)], "--data-kwargs",
             '{"seq_len": 4, "context_sparse": ["page"]}', *ONE_EPOCH]  # fmt: skip


@pytest.fixture(scope="module")
def own_log_run(tmp_path_factory):
    """A run trained from the command line on a CSV log (MMoE), and the log's folder."""
    folder = tmp_path_factory.mktemp("own")
    log, users, videos = make_own_log()
    log.to_csv(folder / "log.csv", index=False)
    out = folder / "run"
    assert cli.main(["train", "--data", str(folder / "log.csv"), *OWN_TRAIN, "--model", "mmoe", "--out", str(out)]) == 0
    return out, folder


def test_train_on_a_log_file_records_how_to_rebuild_it(own_log_run):
    out, folder = own_log_run
    data = json.loads((out / "config.json").read_text())["data"]
    assert data["name"] == "interactions" and data["log"] == str((folder / "log.csv").resolve())
    assert (data["user"], data["item"], data["time"], data["seed"]) == ("uid", "video_id", "ts", 0)
    assert data["tasks"] == {
        "is_click": "binary", "is_like": {"kind": "binary", "observed": "where:is_click"},
        "click_like": {"kind": "binary", "observed": "entire:is_click", "column": "is_like"}, "is_follow": "binary",
        "play_time_ms": {"kind": "regression", "transform": "log1p"},
    }  # fmt: skip
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["test"]["tasks"]) == {"is_click", "is_like", "click_like", "is_follow", "play_time_ms"}
    assert set(metrics["test"]["tasks"]["play_time_ms"]) == {"rmse", "mae"}


def test_evaluate_and_recommend_on_a_log_run(own_log_run, capsys, monkeypatch, tmp_path):
    out, _ = own_log_run
    monkeypatch.chdir(tmp_path)  # the recorded path is absolute: the run reloads from anywhere
    status, printed, _ = run(["evaluate", "--run", str(out), "--device", "cpu"], capsys)
    assert status == 0 and any(line.split()[:2] == ["click_like", "auc"] for line in printed.splitlines())
    status, printed, _ = run(["recommend", "--run", str(out), "--user", "101", "--k", "3", "--device", "cpu"], capsys)
    rows = [line.split() for line in printed.splitlines()[2:]]
    assert status == 0 and [row[:2] for row in rows] == [["101", "1"], ["101", "2"], ["101", "3"]]
    assert all(row[2].startswith("v") for row in rows)  # raw item ids of the log


def test_a_spec_file_holds_the_log_arguments(own_log_run, tmp_path, capsys):
    _, folder = own_log_run
    spec = {"log": "log.csv", "user": "uid", "item": "video_id", "time": "ts", "tasks": {"is_click": "binary"},
            "seq_len": 3, "split": "leave-last-out"}  # fmt: skip
    (folder / "spec.json").write_text(json.dumps(spec))
    out = tmp_path / "spec-run"
    argv = ["train", "--data", str(folder / "spec.json"), "--task", "is_follow:binary", "--model", "mmoe",
            *ONE_EPOCH, "--out", str(out)]  # fmt: skip
    status, _, err = run(argv, capsys)
    assert status == 0, err
    data = json.loads((out / "config.json").read_text())["data"]
    assert data["log"] == str(folder / "log.csv") and data["split"] == "leave-last-out"
    assert data["tasks"] == {"is_follow": "binary"}  # the flag overrides the spec


def test_balancing_strategies_from_the_command_line_on_a_log(own_log_run, tmp_path, capsys):
    _, folder = own_log_run
    for weighting in ("uncertainty", "pcgrad"):
        argv = ["train", "--data", str(folder / "log.csv"), *OWN_TRAIN, "--weighting", weighting,
                "--model", "mmoe", "--out", str(tmp_path / weighting)]  # fmt: skip
        assert run(argv, capsys)[0] == 0


def test_kuairand_pure_from_a_local_folder(tmp_path, capsys):
    write_kuairand_pure(tmp_path)
    kwargs = {"verify_counts": False, "seq_len": 4, "test_exposures": "random"}  # a fixture, not the real counts
    argv = ["train", "--data", "kuairand-pure", "--data-root", str(tmp_path), "--data-kwargs", json.dumps(kwargs),
            *ONE_EPOCH, "--out", str(tmp_path / "run")]  # fmt: skip
    status, printed, err = run(argv, capsys)
    assert status == 0, err
    assert json.loads((tmp_path / "run" / "config.json").read_text())["data"] == {
        "name": "kuairand-pure", "seed": 0, "root": str(tmp_path), **kwargs}  # fmt: skip
    assert any(line.split()[:2] == ["play_time_ms", "rmse"] for line in printed.splitlines())


@pytest.mark.parametrize(
    "argv, words",
    [
        (["train", "--data", "synthetic-funnel", "--user-col", "uid"],
         ["--user-col", "your own log", "synthetic-funnel"]),
        (["train", "--data", "census-income", "--task", "income:binary"], ["--task", "census-income"]),
        (["train", "--data", "LOG", "--user-col", "uid"], ["needs --item-col, --time-col, --task"]),
        (["train", "--data", "LOG", *OWN_COLUMNS, "--task", "is_click:binary", "--data-root", "ROOT"],
         ["--data-root does not apply to --data"]),
        (["train", "--data", "LOG", *OWN_COLUMNS, "--task", "is_click:binary", "--data-kwargs", '{"user": "u"}'],
         ["--data-kwargs must not set ['user']"]),
        (["train", "--data", "LOG", *OWN_COLUMNS, "--task", "clicks:binary"], ["no column 'clicks'", "'is_click'"]),
        (["train", "--data", "LOG", *OWN_COLUMNS, "--task", "is_click"], ["--task", "COLUMN:KIND"]),
        (["train", "--data", "log.xlsx"], ["--data", ".csv, .csv.gz, .parquet"]),
        (["train", "--data", "MISSING.csv", *OWN_COLUMNS, "--task", "a:binary"], ["does not exist"]),
        (["train", "--data", "MISSING.json"], ["spec file", "cannot be read"]),
        (["train", "--data", "kuairand-pure", "--data-root", "ROOT"], ["KuaiRand-Pure is not in", "zenodo.org"]),
    ],
)
def test_bad_log_input_gives_one_line(own_log_run, argv, words, capsys, tmp_path):
    swap = {"LOG": str(own_log_run[1] / "log.csv"), "ROOT": str(tmp_path), "MISSING.csv": str(tmp_path / "x.csv"),
            "MISSING.json": str(tmp_path / "x.json")}  # fmt: skip
    status, _, err = run([swap.get(a, a) for a in argv], capsys)
    assert status == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    for word in words:
        assert word in err
