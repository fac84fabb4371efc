"""``resconv-tui show ID`` and ``compare ID ID...``: the run detail and compare screens
on the command line, for a person (text, charts, samples) and a script (JSON, CSV)."""

from __future__ import annotations

import csv
import io
import json
import re
import socket
import sqlite3
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy
import pytest
from seed_runs import ETA_SAYS, READ_AT, T0, curve, detail_runs, eta_case, freeze, new_run

from core.queue import FinalFigures, Repo
from core.queue.comparison import comparison_table
from core.queue.samples import encode_samples
from core.queue.views import render
from resconv_tui.cli import main
from resconv_tui.polling import EXITED_NOTE
from resconv_tui.terminal_output import image_console, print_chart, run_series


@pytest.fixture
def runs(db_url: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    monkeypatch.setenv("COLUMNS", "100")  # the width of a pipe's text
    monkeypatch.setattr(time, "time", lambda: 1_700_000_200.0)  # the seeded runs' clock
    return detail_runs(db_url, freeze(monkeypatch))


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_show_prints_a_succeeded_runs_figures_config_and_passes(
    db_url: str, runs: dict[str, int], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(capsys, "show", str(runs["done"]), "--db", db_url)
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0] == f"Run {runs['done']}  l-3  (demo)  succeeded"
    assert "val loss   0.051200" in lines and "params     37,795" in lines
    assert any(line.startswith("inputs/s   3,100") for line in lines)
    assert any(line.startswith("peak mem   412.0 MiB") for line in lines)
    assert any(line.split()[:2] == ["layers", "3"] for line in lines)  # the config
    # Every validation pass (every 10th step of 640 inputs), then the train curve in brief.
    at = lines.index("validation passes")
    passes = [line.split() for line in lines[at + 2 : at + 11]]
    assert passes[0] == ["6,400", f"{0.25 * 2.718281828 ** (-10 / 15) + 0.06:.6f}"]
    assert [p[0] for p in passes] == [f"{6_400 * k:,}" for k in range(1, 10)]
    assert lines[at + 11].startswith("train loss: 99 points; ")
    assert all(line == line.rstrip() for line in lines)  # no padding in a pipe
    assert "\x1b[" not in out


def test_show_says_why_a_run_failed_and_the_retry_that_fits(
    db_url: str, runs: dict[str, int], capsys: pytest.CaptureFixture[str]
) -> None:
    failed = runs["failed"]
    code, out, _ = cli(capsys, "show", str(failed), "--db", db_url)
    assert code == 0
    text = " ".join(out.split())  # as one line: the advice wraps at the width
    assert "error CUDA out of memory (tried to allocate 2.0 GiB)" in text
    assert "out of memory: retry once the device has room for it" in text
    # The commands it names act on the database it read, as given.
    assert f"resconv-tui retry {failed} --db {db_url} retries it" in text
    assert f"resconv-tui retry --cause oom --db {db_url} retries every run" in text
    # It ended: no pass is to come (not "none yet").
    assert "validation passes: none\n" in out and "train loss: 4 points" in out


def test_show_of_a_running_run_gives_its_last_pass_so_far(
    db_url: str, runs: dict[str, int], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = cli(capsys, "show", str(runs["running"]), "--db", db_url)
    assert code == 0
    assert "12,160 / 64,000 inputs (19%)" in out
    assert "at 12,800 inputs (the last pass so far)" not in out  # step 20 is not recorded
    assert "at 6,400 inputs (the last pass so far)" in out


def info_row(out: str, label: str) -> str | None:
    """The value of ``show``'s info row ``label`` (its lines joined where it folds), or
    None where it has no such row."""
    lines = out.splitlines()
    at = next((i for i, line in enumerate(lines) if line.split(" ", 1)[0] == label), None)
    if at is None:
        return None
    width = len("checkpoint ")  # the labels' column
    parts = [lines[at][width:]]
    for line in lines[at + 1 :]:
        if line[:width].strip() or not line.strip():  # the next row's label, or the end
            break
        parts.append(line[width:].strip())
    return " ".join(parts)


def ls_note(out: str, run_id: int) -> str:
    """``ls``'s note on run ``run_id`` (its last column)."""
    line = next(line for line in out.splitlines() if line.split()[0] == str(run_id))
    return re.split(r" {2,}", line.strip())[-1]


@pytest.mark.parametrize("case", ETA_SAYS)
def test_show_of_a_running_run_gives_the_eta_ls_gives_or_why_none(
    db_url: str,
    runs: dict[str, int],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    case: str,
) -> None:
    # It said "elapsed 17s", "heartbeat 0s ago" and "progress 5,120 / 9,000 inputs (57%)",
    # where the runs table and ls said "ETA 10s": the one thing its reader came for.
    run_id = eta_case(db_url, runs["running"], case)
    monkeypatch.setattr(time, "time", lambda: T0 + READ_AT[case])
    code, out, _ = cli(capsys, "show", str(run_id), "--db", db_url)
    # An exited worker's red line, above, says what ls says; the row does not say it again.
    row = "— (its worker exited)" if case == "exited" else ETA_SAYS[case]
    assert code == 0 and info_row(out, "ETA") == row
    assert out.index("\nprogress ") < out.index("\nETA ") < out.index("\nval loss ")
    _, listed, _ = cli(capsys, "ls", "--db", db_url)
    said = ls_note(listed, run_id)  # as ls says it: "ETA 2m41s", or why there is none
    assert said == (f"ETA {ETA_SAYS[case]}" if case == "forecast" else ETA_SAYS[case])


def test_a_run_whose_worker_was_stopped_gives_the_eta_it_had_before_the_stop(
    db_url: str,
    runs: dict[str, int],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Its worker stopped for 10 minutes (Ctrl-Z, docker pause) after the run's first
    # 40 s, then resumed: the wall time since the claim held the stop, and `show` and
    # `ls` paced the run by it: "ETA 45m28s" where it had "2m51s" before the stop.
    running = runs["running"]
    repo = Repo.open(db_url)
    worker = repo.get_run(running).worker_id
    assert worker is not None
    freeze(monkeypatch).time = lambda: T0 + 735.0  # the repo's clock: resumed, beating
    assert repo.add_metrics(running, [], inputs_done=12_160, owner=worker, paused_s=600.0)
    repo.heartbeat(worker, run_id=running)
    repo.close()
    monkeypatch.setattr(time, "time", lambda: T0 + 735.0 + 15.0)  # as READ_AT's 15 s
    code, out, _ = cli(capsys, "show", str(running), "--db", db_url)
    assert code == 0 and info_row(out, "ETA") == ETA_SAYS["forecast"]
    assert info_row(out, "elapsed") == "10m55s"  # the wall time, stop and all
    assert info_row(out, "paused") == "10m00s (its worker stopped: not counted)"
    _, listed, _ = cli(capsys, "ls", "--db", db_url)
    assert ls_note(listed, running) == f"ETA {ETA_SAYS['forecast']}"
    _, shown, _ = cli(capsys, "show", str(running), "--json", "--db", db_url)
    assert json.loads(shown)["paused_s"] == 600.0  # beside started_at, for a script


def test_show_gives_the_logbook_figures_beside_ours(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # results and compare gave a run's target; its own detail did not.
    from dataclasses import replace

    from core.queue.rows import FinalFigures

    repo = Repo.open(db_url)
    run = new_run(11, experiment="t3")
    target = {"validation_loss": 0.057229, "minutes": 3.02, "params": run.param_count + 2}
    (run_id,) = repo.enqueue([replace(run, target=target)]).added_ids
    (queued,) = repo.enqueue([new_run(3, experiment="t3")]).added_ids  # no target
    worker = repo.register_worker("h", 1, "cpu")
    assert repo.claim(worker) is not None
    repo.finish(run_id, worker, FinalFigures(0.055398, None, 60.0, 3000.0, None, 64_000))
    repo.close()
    out = cli(capsys, "show", str(run_id), "--db", db_url)[1]
    extra = f"{run.param_count + 2:,} params"
    assert info_row(out, "logbook") == f"0.057229 (Δ -0.001831) · 3.02 min · {extra}"
    assert info_row(cli(capsys, "show", str(queued), "--db", db_url)[1], "logbook") is None


def test_show_gives_no_eta_for_a_run_that_is_not_running(
    db_url: str, runs: dict[str, int], capsys: pytest.CaptureFixture[str]
) -> None:
    repo = Repo.open(db_url)
    (queued,) = repo.enqueue([new_run(9)]).added_ids
    repo.close()
    for run_id in (runs["done"], runs["failed"], queued):
        code, out, _ = cli(capsys, "show", str(run_id), "--db", db_url)
        assert code == 0 and info_row(out, "ETA") is None and "\nprogress " in out


def test_show_json_holds_the_run_its_config_and_every_point(
    db_url: str, runs: dict[str, int], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = cli(capsys, "show", str(runs["done"]), "--json", "--db", db_url)
    shown = json.loads(out)
    assert code == 0 and shown["id"] == runs["done"] and shown["status"] == "succeeded"
    assert shown["validation_loss"] == 0.0512 and shown["config"]["layers"] == 3
    assert shown["has_samples"] is True and shown["cause"] is None
    metrics = shown["metrics"]
    assert sorted(metrics) == ["inputs_per_s", "memory_bytes", "train_loss", "val_loss"]
    assert len(metrics["train_loss"]) == 99 and metrics["val_loss"][0] == [6400, pytest.approx(
        0.25 * 2.718281828 ** (-10 / 15) + 0.06)]  # fmt: skip
    # A series is one line, not one line per number.
    assert len(out.splitlines()) < 80


def test_show_curves_are_every_point_as_csv(
    db_url: str, runs: dict[str, int], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = cli(capsys, "show", str(runs["done"]), "--curves", "--db", db_url)
    rows = list(csv.reader(io.StringIO(out)))
    assert code == 0 and rows[0] == ["run", "metric", "step", "inputs", "value"]
    assert len(rows) == 1 + 99 * 3 + 9
    assert rows[1][:4] == [str(runs["done"]), "train_loss", "1", "640"]
    assert float(rows[1][4]) == pytest.approx(0.25 * 2.718281828 ** (-1 / 15) + 0.05)


def test_show_plot_draws_the_loss_chart_in_plain_characters_in_a_pipe(
    db_url: str, runs: dict[str, int], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = cli(capsys, "show", str(runs["done"]), "--plot", "--db", db_url)
    assert code == 0 and "\x1b[" not in out
    chart = out[out.index("train loss (lines) and validation loss (dots)") :].splitlines()
    assert chart[1].lstrip().startswith("┌") and "●" in out and "inputs" in chart[-1]
    assert max(len(line) for line in chart) <= 100


def test_show_samples_draws_the_three_rows_in_colour(
    db_url: str, runs: dict[str, int], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = cli(capsys, "show", str(runs["done"]), "--samples", "--db", db_url)
    assert code == 0
    for label in ("masked input", "output", "target"):
        assert label in out
    assert "\x1b[38;2;" in out and "▄" in out  # truecolour half-blocks, even in a pipe
    code, out, err = cli(capsys, "show", str(runs["failed"]), "--samples", "--db", db_url)
    assert code == 2 and out == ""
    assert err == (
        f"resconv-tui: nothing to show: run {runs['failed']} has no sample reconstructions: "
        "it failed before its final validation pass\n"
    )


def test_show_samples_shrinks_a_tall_image_by_its_height(
    db_url: str, runs: dict[str, int], capsys: pytest.CaptureFixture[str]
) -> None:
    # Shrunk by the width alone, a 256 x 8 image drew 128 lines a row (3 x 129 in all).
    done = runs["done"]
    tall = encode_samples(numpy.full((3, 2, 256, 8), 200, numpy.uint8))
    with sqlite3.connect(db_url.removeprefix("sqlite:///")) as conn:
        conn.execute("UPDATE run SET samples = ? WHERE id = ?", (tall, done))
    code, out, _ = cli(capsys, "show", str(done), "--samples", "--db", db_url)
    assert code == 0
    drawn = out[out.index("masked input") :].splitlines()
    assert len(drawn) == 3 * (1 + 16)  # each label, then 32 pixels high in half-blocks


def test_damaged_values_are_named_not_a_traceback(
    db_url: str, runs: dict[str, int], capsys: pytest.CaptureFixture[str]
) -> None:
    # Edited by hand (SQLite keeps any value in any column): `show --samples` was a numpy
    # traceback, `ls`, `show` and `results` "Unknown format code 'f' for ... 'str'".
    done = runs["done"]
    with sqlite3.connect(db_url.removeprefix("sqlite:///")) as conn:
        conn.execute("UPDATE run SET samples = x'00112233' WHERE id = ?", (done,))
    code, out, err = cli(capsys, "show", str(done), "--samples", "--db", db_url)
    assert code == 2 and "Traceback" not in err
    assert f"run {done}'s sample images are damaged (not a .npy array): " in err
    with sqlite3.connect(db_url.removeprefix("sqlite:///")) as conn:
        conn.execute("UPDATE run SET validation_loss = 'abc' WHERE id = ?", (done,))
    for command in (
        ["ls"],
        ["show", str(done)],
        ["results"],
        ["compare", str(done), str(runs["failed"])],
    ):
        code, out, err = cli(capsys, *command, "--db", db_url)
        assert code == 2 and "Traceback" not in err, command
        assert f"run {done}'s row is damaged (its validation_loss is 'abc', not a number)" in err


def test_a_sample_grid_larger_than_any_run_makes_is_one_line_not_drawn(
    db_url: str, runs: dict[str, int], capsys: pytest.CaptureFixture[str]
) -> None:
    # A valid but hand-made 3 x 1 x 200000 x 1 grid: `show --samples` drew 300,036 lines.
    done = runs["done"]
    tall = encode_samples(numpy.zeros((3, 1, 200_000, 1), numpy.uint8))
    with sqlite3.connect(db_url.removeprefix("sqlite:///")) as conn:
        conn.execute("UPDATE run SET samples = ? WHERE id = ?", (tall, done))
    code, out, err = cli(capsys, "show", str(done), "--samples", "--db", db_url)
    assert code == 2 and "Traceback" not in err and len(err.splitlines()) == 1
    assert f"run {done}'s sample images are damaged (images 200,000 x 1, over 256 a side " in err
    assert "masked input" not in out and len(out.splitlines()) < 100  # the run, no image


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["show", "99"], "unknown run: no run with id 99 in "),
        (["show", "1", "--json", "--plot"], "--plot draws the run as it is: not with --json"),
        (
            ["show", "1", "--follow", "--samples"],
            "--samples draws the run as it is: not with --follow",
        ),
        (
            ["compare", "1", "1"],
            "compare needs two runs or more (run 1 was given 2 times; "
            "resconv-tui show 1 shows one)",
        ),
        (["compare", "1"], "compare needs two runs or more (resconv-tui show 1 shows one)"),
        (["compare", "1", "98", "99"], "unknown run: no runs 98, 99 in "),
        (["compare", "1", "2", "--format", "json", "--plot"], "--plot draws for a person"),
    ],
)
def test_bad_requests_get_one_line(
    db_url: str,
    runs: dict[str, int],
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    message: str,
) -> None:
    code, out, err = cli(capsys, *argv, "--db", db_url)
    lines = err.splitlines()
    assert code == 2 and out == "" and len(lines) == 1 and message in lines[0], err


def test_compare_shows_what_differs_and_the_figures_in_the_order_given(
    db_url: str, runs: dict[str, int], capsys: pytest.CaptureFixture[str]
) -> None:
    ids = [runs["running"], runs["done"], runs["failed"]]
    code, out, _ = cli(capsys, "compare", *map(str, ids), "--db", db_url)
    lines = out.splitlines()
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    assert code == 0 and header[:5] == ["run", "experiment", "name", "status", "layers"]
    assert "activation" not in header  # the same in all three
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]
    assert [row[0] for row in rows] == [str(i) for i in ids]
    assert [row[3] for row in rows] == ["running", "succeeded", "failed"]
    assert [row[4] for row in rows] == ["7", "3", "5"]
    assert rows[1][header.index("validation loss")] == "0.0512" and rows[0][5] == "–"
    code, out, _ = cli(capsys, "compare", *map(str, ids), "--all-config", "--db", db_url)
    assert "| activation |" in out.splitlines()[0]


def test_compare_for_scripts_json_and_curves(
    db_url: str, runs: dict[str, int], capsys: pytest.CaptureFixture[str]
) -> None:
    ids = [str(runs["done"]), str(runs["failed"])]
    code, out, _ = cli(capsys, "compare", *ids, "--format", "json", "--db", db_url)
    rows = json.loads(out)
    assert code == 0 and [row["id"] for row in rows] == [runs["done"], runs["failed"]]
    assert rows[0]["status"] == "succeeded" and rows[0]["name"] == "l-3"
    assert rows[0]["layers"] == 3 and rows[1]["validation_loss"] is None
    code, out, _ = cli(capsys, "compare", *ids, "--curves", "--db", db_url)
    rows = list(csv.reader(io.StringIO(out)))
    assert {row[1] for row in rows[1:]} == {"train_loss", "val_loss"}  # the losses alone
    assert len(rows) == 1 + 99 + 9 + 4


@pytest.mark.parametrize(
    "argv", [["compare", "DONE", "FAILED", "--plot"], ["show", "DONE", "--samples"]]
)
def test_a_reader_that_leaves_early_is_exit_status_0(
    db_url: str, runs: dict[str, int], argv: list[str]
) -> None:
    # `compare 1 2 --plot | head -n 1`: rich's console exited with status 1 (a
    # `set -o pipefail` script failed), where `results | head` gave 0.
    argv = [str(runs["done"]) if a == "DONE" else str(runs["failed"]) if a == "FAILED" else a
            for a in argv]  # fmt: skip
    command = [sys.executable, "-m", "resconv_tui", *argv, "--db", db_url]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        assert process.stdout is not None and process.stdout.readline()
        process.stdout.close()  # `head -n 1` has what it wanted
        _, err = process.communicate(timeout=60)
    assert process.returncode == 0 and err == b"", err


def test_compare_plot_overlays_the_curves_with_a_legend(
    db_url: str, runs: dict[str, int], capsys: pytest.CaptureFixture[str]
) -> None:
    ids = [str(runs["done"]), str(runs["failed"])]
    code, out, _ = cli(capsys, "compare", *ids, "--plot", "--db", db_url)
    lines = out.splitlines()
    assert code == 0 and "train loss (lines) and validation loss (dots)" in out
    # In a pipe no colour tells the curves apart: each run is drawn with its number.
    assert lines[-2:] == [
        f"1 #{runs['done']} l-3  (demo, succeeded)  val 0.051200",
        f"2 #{runs['failed']} l-5  (demo, failed)  val —",
    ]
    # Inside the frame (the axes' labels aside, as wide as they are): run 1's 99
    # points, run 2's 4.
    left = next(line.index("┌") for line in lines if "┌" in line)
    area = "".join(line[left + 1 : -1] for line in lines if line[left : left + 1] in ("│", "┤"))
    assert area.count("1") > 50 and area.count("2") >= 3


def test_comparison_keys_differ_by_value_and_by_absence(db_url: str) -> None:
    repo = Repo.open(db_url)
    repo.enqueue([new_run(3, kernel_size=[3, 5]), new_run(3, experiment="b", kernel_size=[3, 5])])
    first, second = repo.list_runs()
    # Made by an older version: its config has no `precision` key.
    older = json.loads(second.config_json)
    del older["precision"]
    table = comparison_table([first, replace(second, config_json=json.dumps(older))])
    assert table.swept == ("precision",)  # the per-layer kernels are one value in both
    assert table.column("precision") == ["auto", None]
    assert render(table, "csv").splitlines()[0].startswith("run,experiment,name,status,precision")
    repo.close()


def test_show_says_a_running_runs_worker_process_has_exited(
    db_url: str, runs: dict[str, int], capsys: pytest.CaptureFixture[str]
) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # its pid is free now: a worker killed with -9 looks like this
    repo = Repo.open(db_url)
    (lost,) = repo.enqueue([new_run(9)]).added_ids
    worker = repo.register_worker(socket.gethostname(), gone.pid, "cpu")
    assert repo.claim(worker) is not None  # silent since: the clock reads 65 s later
    repo.close()
    code, out, _ = cli(capsys, "show", str(lost), "--db", db_url)
    text = " ".join(out.split())
    # It read "running", its heartbeat ageing, where `ls` says what happened.
    assert code == 0 and f"{EXITED_NOTE}. resconv-tui retry {lost} --db {db_url} queues" in text
    assert text.count(EXITED_NOTE) == 1 and "ETA — (its worker exited)" in text  # said once
    code, out, _ = cli(capsys, "show", str(lost), "--json", "--db", db_url)
    shown = json.loads(out)
    assert shown["worker_exited"] is True and shown["eta_seconds"] is None  # as ls --json
    code, out, _ = cli(capsys, "show", str(runs["running"]), "--db", db_url)
    assert EXITED_NOTE not in out  # its worker on another machine: none can tell


def test_show_json_is_ls_jsons_object_with_its_eta(
    db_url: str,
    runs: dict[str, int],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 5 s after the running run's last beat (at 65 s, its worker reads as silent: no ETA).
    monkeypatch.setattr(time, "time", lambda: 1_700_000_140.0)
    _, out, _ = cli(capsys, "ls", "--json", "--db", db_url)
    listed = {entry["id"]: entry for entry in json.loads(out)}
    for run_id in runs.values():
        _, out, _ = cli(capsys, "show", str(run_id), "--json", "--db", db_url)
        shown = json.loads(out)
        assert {key: shown[key] for key in listed[run_id]} == listed[run_id]
    assert listed[runs["running"]]["eta_seconds"] is not None


def test_show_for_a_person_reads_the_losses_alone(
    db_url: str,
    runs: dict[str, int],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A run records speed, memory and its learning rate at each step too: a long run's
    # text or chart read 4 rows for each it used (3.4 s for 50,000 steps, 1.1 s now).
    asked: list[object] = []
    real = Repo.metrics_since

    def metrics_since(self: Repo, run_id: int, *args: object, **kwargs: object) -> object:
        asked.append(args[1] if len(args) > 1 else kwargs.get("names"))
        return real(self, run_id, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Repo, "metrics_since", metrics_since)
    code, out, _ = cli(capsys, "show", str(runs["done"]), "--plot", "--db", db_url)
    assert code == 0 and "train loss: 99 points" in out and "●" in out
    assert asked == [["train_loss", "val_loss"]]
    code, out, _ = cli(capsys, "show", str(runs["failed"]), "--samples", "--db", db_url)
    assert code == 2 and len(asked) == 1  # refused before reading any curve


def test_show_of_one_point_and_of_a_succeeded_run_without_samples(
    db_url: str, runs: dict[str, int], capsys: pytest.CaptureFixture[str]
) -> None:
    repo = Repo.open(db_url)
    (run_id,) = repo.enqueue([new_run(9)]).added_ids
    worker = repo.register_worker("gpu-box", 99, "cuda:0")
    repo.claim(worker)
    repo.add_metrics(run_id, curve(range(1, 2)), inputs_done=640)
    repo.finish(run_id, worker, FinalFigures(0.3, None, 1.0, 640.0, None, 640))
    repo.close()
    code, out, _ = cli(capsys, "show", str(run_id), "--db", db_url)
    assert "train loss: 1 point; " in out
    code, out, err = cli(capsys, "show", str(run_id), "--samples", "--db", db_url)
    assert code == 2 and err.endswith(": none were saved when it ended\n")  # not "when it ends"


def test_compare_plot_gives_a_running_runs_last_pass_so_far(
    db_url: str, runs: dict[str, int], capsys: pytest.CaptureFixture[str]
) -> None:
    ids = [str(runs["running"]), str(runs["done"])]
    code, out, _ = cli(capsys, "compare", *ids, "--plot", "--db", db_url)
    last_pass = f"{0.25 * 2.718281828 ** (-10 / 15) + 0.06:.6f}"
    assert code == 0 and out.splitlines()[-2] == (
        f"1 #{runs['running']} l-7  (demo, running)  val {last_pass}"  # as the screen's legend
    )
    repo = Repo.open(db_url)
    queued = repo.enqueue([new_run(9), new_run(11)]).added_ids
    repo.close()
    code, out, _ = cli(capsys, "compare", *map(str, queued), "--plot", "--db", db_url)
    assert "(dots): no data yet" in out  # not "none recorded": the queued runs' will come
    assert "┌" not in out  # and no empty frame of 20 lines under it


def test_compare_of_equal_configs_says_so_and_shows_no_empty_columns(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = Repo.open(db_url, create=True)
    repo.enqueue([new_run(3), new_run(3, experiment="again")])
    repo.close()
    code, out, err = cli(capsys, "compare", "1", "2", "--db", db_url)
    header = [cell.strip() for cell in out.splitlines()[0].strip("|").split("|")]
    assert code == 0 and header[:5] == ["run", "experiment", "name", "status", "validation loss"]
    assert err == "their configs are the same (--all-config shows them)\n"
    # Neither has trained: no column of dashes (meter, minutes, in/s, memory), but the
    # loss, which is what is compared.
    assert header[4:] == ["validation loss", "model params"]
    code, out, err = cli(capsys, "compare", "1", "2", "--format", "csv", "--db", db_url)
    assert next(csv.reader(io.StringIO(out)))[-2:] == ["validation loss", "model params"]
    code, out, err = cli(capsys, "compare", "1", "2", "--all-config", "--db", db_url)
    # Every key, and still the note: among them all the reader would look for a difference.
    assert err == "their configs are the same\n" and "| layers |" in out
    repo = Repo.open(db_url)
    repo.enqueue([new_run(5)])
    repo.close()
    code, out, err = cli(capsys, "compare", "1", "3", "--all-config", "--db", db_url)
    assert err == "" and "| layers |" in out


def test_compare_shows_the_targets_as_results_does(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = Repo.open(db_url, create=True)
    target = {"validation_loss": 0.05, "minutes": 0.52}
    done, other, queued = repo.enqueue(
        [replace(new_run(3), target=target), new_run(5), replace(new_run(7), target=target)]
    ).added_ids
    worker = repo.register_worker("gpu-box", 1234, "cpu")
    for run_id, loss in ((done, 0.0512), (other, 0.0498)):
        repo.claim(worker)
        repo.finish(run_id, worker, FinalFigures(loss, None, 92.5, 3100.0, None, 64_000))
    repo.close()
    # One run of two with a target: its target and difference, the other's dashes.
    code, out, _ = cli(capsys, "compare", str(done), str(other), "--db", db_url)
    lines = out.splitlines()
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]
    at = header.index("validation loss")
    assert code == 0 and header[at : at + 3] == ["validation loss", "target", "Δ target"]
    assert rows[0][at : at + 3] == ["0.0512", "0.05", "+0.001200"]
    assert rows[1][at : at + 3] == ["0.0498", "–", "–"]
    assert rows[0][header.index("logbook minutes")] == "0.52"
    code, out, _ = cli(capsys, "compare", str(done), str(other), "--format", "csv", "--db", db_url)
    assert {"target", "Δ target", "logbook minutes"} <= set(next(csv.reader(io.StringIO(out))))
    # JSON: the results table's keys and figures.
    code, out, _ = cli(capsys, "compare", str(done), str(other), "--format", "json", "--db", db_url)
    compared = json.loads(out)
    code, out, _ = cli(capsys, "results", "--format", "json", "--db", db_url)
    result = next(row for row in json.loads(out) if row["id"] == done)
    for key in ("target", "target_diff", "logbook_minutes"):
        assert compared[0][key] == result[key], key
    assert compared[1]["target"] is None and compared[1]["target_diff"] is None
    # A queued run's target, with no loss yet to differ from it: no column of dashes.
    code, out, _ = cli(capsys, "compare", str(other), str(queued), "--db", db_url)
    header = [cell.strip() for cell in out.splitlines()[0].strip("|").split("|")]
    assert "target" in header and "Δ target" not in header
    # Without targets, none of their columns.
    repo = Repo.open(db_url)
    plain = repo.enqueue([new_run(9)]).added_ids[0]
    repo.close()
    code, out, _ = cli(
        capsys, "compare", str(other), str(plain), "--format", "json", "--db", db_url
    )
    assert not {"target", "target_diff", "logbook_minutes"} & set(json.loads(out)[0])


def test_a_usage_error_comes_before_the_databases(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = str(tmp_path / "missing.db")
    code, out, err = cli(capsys, "compare", "1", "2", "--plot", "--format", "csv", "--db", missing)
    assert code == 2 and "--plot draws for a person" in err and "no database" not in err


def test_a_chart_on_a_terminal_keeps_the_terminals_colours(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from rich.console import Console

    series = run_series(curve(range(1, 30)))  # no database: MetricPoints read as rows
    print_chart(Console(force_terminal=True, width=80), "loss", series, "none recorded")
    out = capsys.readouterr().out
    assert "\x1b[38;2;66;165;245m" in out  # the train line's colour, as the screen's
    assert "\x1b[48;5;15m" not in out  # plotext's white canvas, a glaring box on a dark one


@pytest.mark.parametrize(
    ("system", "drawn"),
    [("standard", "truecolor"), ("256", "256"), ("truecolor", "truecolor")],
)
def test_samples_are_drawn_in_truecolour_where_rich_guesses_fewer(system: str, drawn: str) -> None:
    from rich.console import Console

    # TERM=xterm, no COLORTERM: rich guessed 8 colours and drew every grey black or white.
    console = Console(force_terminal=True, color_system=system, width=80)  # type: ignore[arg-type]
    assert image_console(console).color_system == drawn


def test_in_a_pipe_the_text_fits_the_terminal_stderr_writes_to(
    db_url: str, runs: dict[str, int], capsys: pytest.CaptureFixture[str], monkeypatch: Any
) -> None:
    # `show 1 --samples | less -R` is read on the person's terminal: 100 columns of
    # pictures wrapped into broken ones on an 80-column one.
    import os

    monkeypatch.delenv("COLUMNS")
    real = os.get_terminal_size

    def terminal_size(fd: int = 1) -> os.terminal_size:
        if fd == 2:
            return os.terminal_size((64, 20))
        return real(fd)

    monkeypatch.setattr(os, "get_terminal_size", terminal_size)
    code, out, _ = cli(capsys, "show", str(runs["done"]), "--plot", "--samples", "--db", db_url)
    assert code == 0 and max(len(line) for line in plain_lines(out)) <= 64


def plain_lines(out: str) -> list[str]:
    import re

    return re.sub(r"\x1b\[[0-9;]*m", "", out).splitlines()


@pytest.mark.parametrize("columns", ["0", None])
def test_in_a_pipe_a_width_of_0_is_no_width(
    db_url: str,
    runs: dict[str, int],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: Any,
    columns: str | None,
) -> None:
    # COLUMNS=0, or stderr on a terminal whose size was never set (a container's pty
    # reads 0x0): rich drew everything in 0 columns, and `show` printed one empty line.
    import os

    if columns is None:
        monkeypatch.delenv("COLUMNS")
        monkeypatch.setattr(os, "get_terminal_size", lambda fd=1: os.terminal_size((0, 0)))
    else:
        monkeypatch.setenv("COLUMNS", columns)
    code, out, _ = cli(capsys, "show", str(runs["done"]), "--plot", "--db", db_url)
    lines = plain_lines(out)
    assert code == 0 and lines[0] == f"Run {runs['done']}  l-3  (demo)  succeeded"
    assert max(len(line) for line in lines) <= 100


def test_a_large_or_small_value_reads_as_its_run_name_writes_it_everywhere(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # lr 1e12 was shown 1000000000000.0 by show and the queue's note, 1e+12 by compare
    # and the form, beside its run named lr-1e12.
    from rich.console import Console

    from resconv_tui.field_values import format_value
    from resconv_tui.widgets.run_info import config_table

    for name, lr in (("big", "1e12"), ("small", "1e-9")):
        (tmp_path / f"{name}.yml").write_text(
            f"name: {name}\nlayers: 2\nmax_inputs: 512\nlr: {lr}\n"
        )
        assert cli(capsys, "queue", str(tmp_path / f"{name}.yml"), "--db", db_url)[0] == 0
    runs = sorted(Repo.open(db_url).list_runs(), key=lambda run: run.id)
    show = cli(capsys, "show", str(runs[0].id), "--db", db_url)[1]
    assert any(line.split()[-2:] == ["lr", "1e12"] for line in show.splitlines())
    compared = cli(capsys, "compare", str(runs[0].id), str(runs[1].id), "--db", db_url)[1]
    assert [line.split("|")[5].strip() for line in compared.splitlines()[2:]] == [
        "1e12",
        "1e-09",
    ]
    (tmp_path / "other.yml").write_text("name: big\nlayers: 2\nmax_inputs: 512\nlr: 1e-3\n")
    note = cli(capsys, "queue", str(tmp_path / "other.yml"), "--dry-run", "--db", db_url)[1]
    assert "(lr 1e12 there, 0.001 here)" in note
    console = Console(width=100, record=True)
    console.print(config_table(runs[0]))
    assert "lr              1e12" in console.export_text()
    assert format_value(1e12) == "1e12"  # the new-sweep form's field
    # Past 1e16 Python writes 1e+20; the run's name (its slug drops the '+') reads 1e20.
    assert format_value(1e20) == "1e20"
