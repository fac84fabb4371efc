"""The queue commands through ``resconv_tui.cli.main``: output and every error path."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import pytest
from queue_helpers import beating_behind
from reused_pids import started_with_pid
from sqlalchemy.engine import URL

import core.queue.repo as repo_module
from core.queue import FinalFigures, Repo, RunFilter, RunRow, RunStatus
from core.queue.failures import RETRY_ADVICE, FailureCause
from resconv_tui.cli import build_parser, main

SWEEP = """\
name: smoke
layers: 2
max_inputs: 512
matrix:
  ch: [4, 8]
  lr: [0.001, 0.003]
"""


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RESCONV_DB", raising=False)
    (tmp_path / "sweep.yml").write_text(SWEEP)
    return tmp_path


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str, text: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and text in lines[0], err
    assert lines[0].startswith("resconv-tui: ")


def test_output_an_encoding_cannot_write_is_escaped_not_a_traceback() -> None:
    # PYTHONIOENCODING=ascii and an experiment named 実験: a UnicodeEncodeError traceback.
    Path("jp.yml").write_text("name: 実験\nlayers: 1\n", encoding="utf-8")
    repo_root = str(Path(__file__).parents[3])
    env = {**os.environ, "PYTHONIOENCODING": "ascii", "PYTHONPATH": repo_root}
    done = subprocess.run([sys.executable, "-m", "resconv_tui", "queue", "jp.yml", "--dry-run"],
                          capture_output=True, env=env, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    assert b"1 run in \\u5b9f\\u9a13: 609 parameters" in done.stdout
    # A worker's lines too: its first, naming the database, stopped it with a traceback.
    Path("実験").mkdir()
    worker = [sys.executable, "-m", "core.worker", "--db", "実験/runs.db", "--device", "cpu",
              "--until-empty"]  # fmt: skip
    done = subprocess.run(worker, capture_output=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    assert b"database \\u5b9f\\u9a13/runs.db" in done.stdout and b"queue empty" in done.stdout


@pytest.mark.parametrize("argv", [["ls"], ["status"], ["stop"], ["queue", "t.yml"], []])
def test_a_current_folder_removed_since_is_said_not_a_traceback(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
) -> None:  # fmt: skip
    # `cd /tmp/sweep; rm -rf /tmp/sweep` (from another terminal), then any command:
    # FileNotFoundError's traceback from os.getcwd.
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()
    code, out, err = cli(capsys, *argv)
    assert code == 2 and out == ""
    one_error_line(err, "the current folder no longer exists")
    assert not gone.exists()


def test_dry_run_lists_runs_with_parameter_counts(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "queue", "sweep.yml", "--dry-run")
    lines = out.splitlines()
    assert code == 0 and lines[0].split() == ["#", "name", "swept", "params", "est.", "memory"]
    assert lines[1].split()[:5] == ["1", "ch-4_lr-0.001", "ch=4", "lr=0.001", "383"]
    assert lines[4].split()[-3] == "1,339"
    # The estimate the form previews and slot admission uses, for each run.
    from core.memory import estimate_bytes
    from core.queue.views import format_bytes
    from core.sweep import expand_sweep_file

    runs = expand_sweep_file("sweep.yml")
    memory = [format_bytes(estimate_bytes(r.config, r.param_count)) for r in runs]
    assert [" ".join(line.split()[-2:]) for line in lines[1:5]] == memory
    assert lines[5] == (
        f"4 runs in smoke: 3,444 parameters in total, largest model 1,339, most memory {memory[-1]}"
    )
    assert not Path("runs.db").exists()  # a dry run needs no database


def test_dry_run_swept_column_writes_a_float_as_the_run_name_does(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The name said lr-1e6 beside a swept column of lr=1000000.0.
    text = "name: big\nlayers: 1\nmax_inputs: 128\nmatrix:\n  lr: [1e6, 1.5e6, 999999.0, 0.001]\n"
    Path("big.yml").write_text(text)
    code, out, _ = cli(capsys, "queue", "big.yml", "--dry-run")
    rows = [line.split()[1:3] for line in out.splitlines()[1:5]]
    assert code == 0 and [name.removeprefix("lr-") for name, _ in rows] == [
        swept.removeprefix("lr=") for _, swept in rows
    ]
    assert rows[0] == ["lr-1e6", "lr=1e6"]


def test_queue_notes_runs_that_would_train_alike(capsys: pytest.CaptureFixture[str]) -> None:
    Path("alike.yml").write_text("name: alike\nlayers: 1\nmatrix:\n  act: [relu, tanh]\n")
    note = (
        "note: activation changes nothing in these runs: act-relu and act-tanh build the same "
        "model and train it alike, to the same losses"
    )
    code, out, _ = cli(capsys, "queue", "alike.yml", "--dry-run")
    assert code == 0 and out.splitlines()[-1] == note
    code, out, _ = cli(capsys, "queue", "alike.yml")
    assert code == 0 and note in out.splitlines()  # queued all the same: a note, no refusal
    assert len(Repo.open("runs.db").list_runs()) == 2
    assert "note:" not in cli(capsys, "queue", "sweep.yml", "--dry-run")[1]


def test_queue_notes_an_experiment_that_holds_other_settings(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The name queued again for another sweep: results read both as one, and nothing said so.
    cli(capsys, "queue", "sweep.yml")  # layers 2, max_inputs 512, ch x lr swept
    Path("more.yml").write_text(SWEEP.replace("[4, 8]", "[4, 8, 16]"))
    assert "other settings" not in cli(capsys, "queue", "more.yml")[1]  # more cells: no note
    Path("other.yml").write_text("name: smoke\nlayers: 3\nmax_inputs: 512\nmatrix:\n"
                                 "  ch: [4, 8]\n")  # fmt: skip
    note = (
        "experiment 'smoke' already holds 6 runs of other settings (layers 2 there, 3 "
        "here): its results {} the two sweeps; another name for this one keeps them apart"
    )
    # Said by --dry-run first, where another name can still keep them apart.
    out = cli(capsys, "queue", "other.yml", "--dry-run")[1]
    assert f"note: {note.format('would mix')}" in out.splitlines(), out
    code, out, _ = cli(capsys, "queue", "other.yml")
    assert code == 0 and f"note: {note.format('mix')}" in out.splitlines(), out
    assert "other settings" not in cli(capsys, "queue", "sweep.yml")[1]  # nothing added
    assert "other settings" not in cli(capsys, "queue", "sweep.yml", "--dry-run")[1]


def test_a_per_layer_value_written_another_way_is_said_to_build_the_same_layers(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # "channels 8 there, [8, 8] here" read as two models; silent, the same model was
    # queued twice (not a repeat: the configs differ as written) and read as two cells.
    Path("one.yml").write_text("name: e\nlayers: 2\nchannels: 8\nmax_inputs: 512\n")
    cli(capsys, "queue", "one.yml")
    Path("two.yml").write_text("name: e\nlayers: 2\nchannels: [8, 8]\npadding: [1, 1]\n"
                               "max_inputs: 512\nmatrix:\n  lr: [0.001, 0.003]\n")  # fmt: skip
    out = cli(capsys, "queue", "two.yml", "--dry-run")[1]
    assert (
        "(channels 8 there, [8, 8] here (the same layers, written another way); padding same "
        "there, [1, 1] here (the same layers, written another way))" in out
    ), out
    Path("three.yml").write_text("name: e\nlayers: 2\nchannels: [8, 16]\nmax_inputs: 512\n")
    out = cli(capsys, "queue", "three.yml", "--dry-run")[1]
    assert "(channels 8 there, [8, 16] here)" in out, out


def test_runs_that_give_no_results_are_no_other_settings(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Cancelled (or failed) runs show in no results: "results mix the two sweeps" was false.
    cli(capsys, "queue", "sweep.yml")
    assert cli(capsys, "cancel", "1", "2", "3", "4")[0] == 0
    Path("other.yml").write_text(SWEEP.replace("layers: 2", "layers: 3"))
    assert "other settings" not in cli(capsys, "queue", "other.yml")[1]


def test_a_quick_check_of_a_logbook_table_with_max_inputs(
    capsys: pytest.CaptureFixture[str], in_tmp: Path
) -> None:
    # A logbook table on a CPU meant copying and editing its file, and the copy kept the
    # published targets of 180,000-input runs beside 3,000-input ones.
    t1 = str(Path(__file__).parents[3] / "experiments" / "t1-layers-32.yml")
    code, out, _ = cli(capsys, "queue", t1, "--max-inputs", "3e3")
    assert code == 0 and out.splitlines()[0] == (
        "quick check: every run trains 3,000 inputs, in experiment t1-layers-32-inputs-3000; "
        "the file's targets are left out"
    )
    runs = Repo.open("runs.db").list_runs()
    assert len(runs) == 12 and {r.experiment for r in runs} == {"t1-layers-32-inputs-3000"}
    assert {r.total_inputs for r in runs} == {3000} and not any(r.target for r in runs)
    assert [r.name for r in runs[:2]] == ["l-1", "l-2"]  # named as the full table's runs
    swept = "name: s\nmatrix:\n  max_inputs: [1000, 2000]\n"
    (in_tmp / "swept.yml").write_text(swept)
    code, _, err = cli(capsys, "queue", "swept.yml", "--max-inputs", "500")
    assert code == 2
    one_error_line(err, "swept.yml: --max-inputs: this sweep varies max_inputs itself")
    for bad in ("0", "2.5", "many"):
        with pytest.raises(SystemExit) as exit_info:
            main(["queue", "sweep.yml", "--max-inputs", bad])
        assert exit_info.value.code == 2
        assert f"'{bad}' is not a number of inputs" in capsys.readouterr().err
    code, _, err = cli(capsys, "queue", "sweep.yml", "--max-inputs", "8")  # below one batch
    assert code == 2  # the option's, not a key of the file's
    one_error_line(err, "--max-inputs 8: below this sweep's batch size 64")
    # A file without targets is not said to lose them.
    assert cli(capsys, "queue", "sweep.yml", "--max-inputs", "640", "--dry-run")[1].startswith(
        "quick check: every run trains 640 inputs, in experiment smoke-inputs-640\n"
    )
    (in_tmp / "long.yml").write_text("name: '" + "x" * 95 + " '\nlayers: 2\n")
    code, _, err = cli(capsys, "queue", "long.yml", "--max-inputs", "640")
    assert code == 2
    one_error_line(err, "would be over 100 characters: shorten key 'name' to 89 at most")


def test_dry_run_against_a_database_says_what_queueing_would_do(
    capsys: pytest.CaptureFixture[str],
) -> None:
    repo, worker, run_id = queued_and_claimed(capsys)
    repo.fail(run_id, worker, "boom")
    repo.remove([4])
    lines = cli(capsys, "queue", "sweep.yml", "--dry-run")[1].splitlines()
    assert lines[0].split()[-1] == "queue"
    assert [line.split("MiB")[1].strip() for line in lines[1:5]] == [
        "again #1 failed", "skip #2 queued", "skip #3 queued", "new",
    ]  # fmt: skip
    assert lines[-1] == "queueing would add 1, queue again 1, skip 2"
    assert len(repo.list_runs()) == 3  # nothing was queued
    # --force queues every run anew: the listing says so rather than going quiet.
    forced = cli(capsys, "queue", "sweep.yml", "--dry-run", "--force")[1].splitlines()
    assert [line.split("MiB")[1].strip() for line in forced[1:5]] == ["new"] * 4
    assert forced[-1] == "queueing would add 4, queue again 0, skip 0"
    assert len(repo.list_runs()) == 3


def test_queue_twice_then_extend_then_force(
    capsys: pytest.CaptureFixture[str], in_tmp: Path
) -> None:
    code, out, _ = cli(capsys, "queue", "sweep.yml")
    assert code == 0 and out.splitlines()[0] == "added 4, skipped 0"
    assert cli(capsys, "queue", "sweep.yml")[1].startswith(
        "added 0, skipped 4 (already queued, running or succeeded; --force to queue anyway)"
    )
    (in_tmp / "sweep.yml").write_text(SWEEP.replace("[0.001, 0.003]", "[0.001, 0.003, 0.01]"))
    assert cli(capsys, "queue", "sweep.yml", "--priority", "3")[1].startswith("added 2, skipped 4")
    assert cli(capsys, "queue", "sweep.yml", "--force")[1].splitlines()[0] == "added 6, skipped 0"
    runs = Repo.open("runs.db").list_runs()
    assert len(runs) == 12 and {r.priority for r in runs[4:6]} == {3}


def test_rows_named_with_python_s_booleans_are_the_same_runs_queued_again(
    capsys: pytest.CaptureFixture[str], in_tmp: Path
) -> None:
    # Names once spelled a boolean as Python does (bnp-e-False): queueing the same sweep
    # again knows those rows by their config, and one queued again takes today's name.
    (in_tmp / "sweep.yml").write_text(SWEEP.replace("ch: [4, 8]", "bnp-e: [off, 1]"))
    assert cli(capsys, "queue", "sweep.yml")[1].startswith("added 4, skipped 0")
    with contextlib.closing(sqlite3.connect("runs.db")) as conn, conn:
        conn.execute("UPDATE run SET name = replace(name, 'bnp-e-false', 'bnp-e-False')")
    repo = Repo.open("runs.db")
    old = [run for run in repo.list_runs() if run.name.startswith("bnp-e-False")]
    assert [run.name for run in old] == ["bnp-e-False_lr-0.001", "bnp-e-False_lr-0.003"]
    repo.request_cancel([old[0].id])
    out = cli(capsys, "queue", "sweep.yml")[1]
    assert out.startswith("added 0, queued again 1 (failed or cancelled before), skipped 3")
    names = {run.id: run.name for run in Repo.open("runs.db").list_runs()}
    assert names[old[0].id] == "bnp-e-false_lr-0.001" and names[old[1].id] == old[1].name


def test_queueing_again_says_which_runs_had_diverged(capsys: pytest.CaptureFixture[str]) -> None:
    # As `r` asks first for a diverged run, queueing its sweep again says so.
    cli(capsys, "queue", "sweep.yml")
    repo = Repo.open("runs.db")
    worker = repo.register_worker("h", 1, "cpu")
    for error in ("loss became NaN at step 3", "out of memory at batch 64"):
        run = repo.claim(worker)
        assert run is not None
        repo.fail(run.id, worker, error)
    out = cli(capsys, "queue", "sweep.yml")[1].splitlines()
    assert out[0].startswith("added 0, queued again 2 (failed or cancelled before), skipped 2")
    assert out[1] == (
        "note: run 1 had diverged (loss NaN/inf): the same config and seed most likely "
        "diverge again: a lower lr or another seed is a new run (d duplicates a run in the "
        "dashboard)"
    )
    assert len(out) == 2 or out[2].startswith("no worker")


def test_db_option_env_and_position(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cli(capsys, "queue", "sweep.yml", "--db", "a.db")
    cli(capsys, "--db", "b.db", "queue", "sweep.yml")
    monkeypatch.setenv("RESCONV_DB", "sqlite:///c.db")
    cli(capsys, "queue", "sweep.yml")
    assert all(Path(name).exists() for name in ("a.db", "b.db", "c.db"))
    assert not Path("runs.db").exists()


def queued_and_claimed(capsys: pytest.CaptureFixture[str]) -> tuple[Repo, str, int]:
    """sweep.yml queued (4 runs), run 1 claimed by worker gpu-box pid 4242 on cuda:0."""
    cli(capsys, "queue", "sweep.yml")
    repo = Repo.open("runs.db")
    worker = repo.register_worker("gpu-box", 4242, "cuda:0")
    run = repo.claim(worker)
    assert run is not None
    return repo, worker, run.id


def test_status_counts_running_runs_and_workers(capsys: pytest.CaptureFixture[str]) -> None:
    repo, worker, run_id = queued_and_claimed(capsys)
    run = repo.get_run(run_id)
    repo.add_metrics(run.id, [], inputs_done=128)
    time.sleep(0.01)
    repo.heartbeat(worker, run_id=run.id)  # 128 inputs since the claim: a pace to forecast by
    code, out, _ = cli(capsys, "status")
    assert code == 0
    assert "runs: 3 queued, 1 running, 0 succeeded, 0 failed, 0 cancelled" in out
    assert "#1 smoke/ch-4_lr-0.001  25% (128 of 512 inputs)  worker gpu-box-4242-" in out
    assert "cuda:0  run #1  0 done  last seen" in out and "no GPU stats" in out
    # The dashboard's forecast: run 1's pace so far, the 3 queued runs after it; the
    # ch-8 ones timed from ch-4's alone, the most they can take ("≤").
    assert re.search(r"^queue ETA: ≤\d+s \(smoke ≤\d+s\)$", out, re.MULTILINE), out


def test_status_shows_a_gpu_name_edited_into_pages_of_text_cut(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A GPU's name is what NVML says, tens of characters. One edited by hand into 10 KB
    # of text was printed whole in the worker's status line: pages of it in a pipe.
    from core.queue import GpuSnapshot

    repo, worker, run_id = queued_and_claimed(capsys)
    gpu = GpuSnapshot("H" * 10_240, 97.0, 2**30, 2**34, 61.0)
    repo.heartbeat(worker, run_id=run_id, gpu=gpu)
    code, out, _ = cli(capsys, "status")
    line = next(line for line in out.splitlines() if line.startswith(f"  {worker}  "))
    assert code == 0 and f"  {'H' * 47}… 97% 1.0 GiB / 16.0 GiB 61°C" in line
    assert len(line) < 200


def test_status_shows_a_worker_s_gpu_figures_that_are_missing_as_unknown(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A worker row whose GPU name and temperature were set to NULL by hand, its
    # utilisation kept: status stopped with a TypeError traceback formatting the NULL.
    from core.queue import GpuSnapshot

    repo, worker, run_id = queued_and_claimed(capsys)
    repo.heartbeat(worker, run_id=run_id, gpu=GpuSnapshot(None, 97.0, None, 2**34, None))
    code, out, err = cli(capsys, "status")
    line = next(line for line in out.splitlines() if line.startswith(f"  {worker}  "))
    assert (code, err) == (0, "") and line.endswith("  GPU 97% — / 16.0 GiB —°C")


def test_status_wraps_its_lines_between_words_on_a_terminal(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # At 80 columns the terminal broke them at the edge, mid-word ("...-842" / "8").
    import resconv_tui.terminal_output as terminal_output

    queued_and_claimed(capsys)
    whole = cli(capsys, "status")[1]  # a pipe: every line whole, for grep
    monkeypatch.setattr(terminal_output, "terminal_columns", lambda: 60)
    out = cli(capsys, "status")[1]
    assert all(len(line) <= 60 for line in out.splitlines())
    assert " ".join(out.split()) == " ".join(whole.split())  # the same words, none cut
    assert any(len(line) > 60 for line in whole.splitlines())
    assert "\n      " in out  # a wrapped line goes on under its item, indented


def test_ls_wraps_a_long_note_within_the_terminal() -> None:
    # "validating: its final pass, samples and checkpoints; ETA 52s" ran past 80 columns.
    from resconv_tui.commands.ls import table

    note = "validating: its final pass, samples and checkpoints; ETA 52s"
    lines = [("1", "running", "t1/l-21", "0", "100%", "", "335,907", note),
             ("2", "queued", "t1-layers-32-inputs-640/l-1", "0", "0%", "", "675", ""),
             ("3", "queued", "t1/l-3", "0", "0%", "", "675", "")]  # fmt: skip
    for columns in (80, 100):
        shown = table(lines, columns)
        assert all(len(line) <= columns for line in shown.splitlines()), shown
        assert " ".join(shown.split()) == " ".join(table(lines).split())  # no word lost
    narrow = table(lines, 60).splitlines()  # the row itself is wider: the note under it
    assert narrow[3].startswith("    validating:") and len(narrow[3]) <= 60
    assert "" not in narrow and len(narrow) == 7  # a row with no note takes one line
    beside = table([lines[0]], 80).splitlines()  # room beside the row: under the note column
    assert len(beside) > 2 and beside[2].index("pass") == beside[1].index("validating")
    assert table(lines) == table(lines, 1000)  # room for everything: one line each


def test_ls_cuts_a_long_run_column_to_the_terminal_experiment_first(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A 55-character experiment name made every row 110 cells wide: at 80 columns the
    # terminal wrapped each in two, and the table read as noise.
    import resconv_tui.commands.ls as ls_command

    experiment = "a-rather-long-experiment-name-for-fashion-mnist-halves"
    Path("long.yml").write_text(SWEEP.replace("name: smoke", f"name: {experiment}"))
    cli(capsys, "queue", "long.yml")
    piped = cli(capsys, "ls")[1].splitlines()  # a pipe: whole, for grep
    assert f"{experiment}/ch-4_lr-0.001" in piped[1]
    assert piped[0].split() == ["id", "status", "run", "pri", "progress", "val", "loss", "params"]
    # Below 67 columns pri, params and progress go first (rows ran past 60 and 40 columns).
    for columns, shown in (
        (80, "a-rather-long-expe…/"),
        (60, "a-rather-lo…/"),
        (50, "a-rather-lo…/"),
    ):
        monkeypatch.setattr(ls_command, "terminal_columns", lambda columns=columns: columns)
        out = cli(capsys, "ls")[1].splitlines()
        assert len(out) == 5 and out[1].split()[2] == f"{shown}ch-4_lr-0.001", out
        assert all(len(line) <= columns for line in out), out
    monkeypatch.setattr(ls_command, "terminal_columns", lambda: 40)  # the names cut too
    out = cli(capsys, "ls")[1].splitlines()
    assert len({line.split()[2] for line in out[1:]}) == 4 and all(len(line) <= 40 for line in out)
    monkeypatch.setattr(ls_command, "terminal_columns", lambda: 120)
    assert cli(capsys, "ls")[1].splitlines() == piped  # room for it all: nothing cut


@pytest.mark.parametrize(
    ("columns", "left_out"),
    [(67, []), (66, ["pri"]), (61, ["pri", "params"]), (40, ["pri", "params", "progress"])],
)
def test_ls_leaves_out_columns_a_narrow_terminal_has_no_room_for(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    columns: int,
    left_out: list[str],
) -> None:
    # Below 67 columns every row ran past the edge (the run column kept 20 cells, every
    # other column stayed): each row wrapped in two.
    import resconv_tui.commands.ls as ls_command

    repo, worker, run_id = queued_and_claimed(capsys)
    repo.fail(run_id, worker, "CUDA out of memory (tried to allocate 2.0 GiB)")
    monkeypatch.setattr(ls_command, "terminal_columns", lambda: columns)
    out = cli(capsys, "ls")[1].splitlines()
    kept = [name for name in ls_command.HEADER[:-1] if name not in left_out]
    header = out[0].replace("val loss", "val-loss").split()
    assert [name for name in header if name != "note"] == [name.replace(" ", "-") for name in kept]
    assert all(len(line) <= columns for line in out), out
    assert "oom: CUDA out of memory" in " ".join(out)  # the note kept, wrapped
    rows = [line.split() for line in out if line.split()[0].isdigit()]
    assert len(rows) == 4 and len({row[2] for row in rows}) == 4  # the runs told apart


def test_ls_below_40_columns_leaves_out_a_val_loss_column_no_run_has(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # At 30 columns a queue not yet trained printed "id  status  run   val loss": a header
    # of 37 cells, for a column with nothing in it, past the terminal's edge.
    import resconv_tui.commands.ls as ls_command
    from core.queue.views import cell_len

    Path("long.yml").write_text(SWEEP.replace("name: smoke", "name: exp-with-a-long-name"))
    cli(capsys, "queue", "long.yml")
    monkeypatch.setattr(ls_command, "terminal_columns", lambda: 30)
    out = cli(capsys, "ls")[1].splitlines()
    assert out[0].split() == ["id", "status", "run"]
    assert all(cell_len(line) <= 30 for line in out), out
    assert len({line.split()[2] for line in out[1:]}) == 4  # the runs told apart
    # A run with a loss keeps the column (no room for it: rows past the edge, not the loss).
    repo, worker, run_id = queued_and_claimed(capsys)
    done = FinalFigures(0.05, inputs_done=repo.get_run(run_id).total_inputs)
    assert repo.finish(run_id, worker, done)
    assert "loss" in cli(capsys, "ls")[1].splitlines()[0]


@pytest.mark.parametrize("columns", [70, 65, 63, 55, 45])
def test_ls_cut_names_never_start_inside_a_value(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, columns: int
) -> None:
    # Kept from its end, lr-0.1_kernel_size-3 read "…-0.1_kernel_size-3" at 65 columns
    # (lr -0.1) and "….1_kernel_size-3" at 63 (lr .1).
    import resconv_tui.commands.ls as ls_command

    Path("lr.yml").write_text(
        "name: a-very-long-experiment-name-for-cutting\nlayers: 2\nchannels: 4\n"
        "max_inputs: 64\nmatrix:\n  lr: [0.1, 0.3]\n  kernel_size: [3, 5]\n"
    )
    cli(capsys, "queue", "lr.yml")
    monkeypatch.setattr(ls_command, "terminal_columns", lambda: columns)
    out = cli(capsys, "ls")[1].splitlines()
    names = [line.split()[2].split("/", 1)[1] for line in out[1:]]
    assert len(set(names)) == 4 and all(len(line) <= columns for line in out), out
    for name in names:
        tail = name.removeprefix("…")
        assert not tail.startswith(("-", ".", "1", "3")), names  # not "-0.1", ".1", "1_"
        assert "kernel_size-" not in name or name.startswith("lr-") or tail[0] == "k", names


def test_ls_never_cuts_a_name_or_experiment_inside_a_number(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # At 28 and 38 columns the rows of lr 0.00125 read "ab…/…16_0.001…": lr 0.001, the
    # usual lr (and at 26 "…16_0.00…"); an experiment t1-layers-32 cut read "t1-layers-3…".
    import resconv_tui.commands.ls as ls_command

    for experiment in ("abcdef", "t1-layers-32-inputs-640"):
        Path("lr.yml").write_text(
            f"name: {experiment}\nlayers: 2\nmax_inputs: 64\n"
            "matrix:\n  ch: [16, 32]\n  lr: [0.00125, 0.003]\n"
        )
        cli(capsys, "queue", "lr.yml")
    whole = {line.split()[0]: line.split()[2] for line in cli(capsys, "ls")[1].splitlines()[1:]}
    numbers = re.compile(r"\d[\d.,]*(?:[eE][-+]?\d+)?")
    for columns in range(26, 61):
        monkeypatch.setattr(ls_command, "terminal_columns", lambda columns=columns: columns)
        for line in cli(capsys, "ls")[1].splitlines()[1:]:
            run_id, shown = line.split()[0], line.split()[2]
            written = set(numbers.findall(whole[run_id]))
            assert set(numbers.findall(shown)) <= written, (columns, shown, whole[run_id])


def test_ls_cut_names_show_every_value_that_tells_their_rows_apart(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # At 32 columns lr-0.00125_ch-16 read "t1…/…ch-16", its lr left out: a row of its own
    # only beside lr-0.003_ch-16 and the others shown whole, which "…ch-16" reads as too.
    import resconv_tui.commands.ls as ls_command

    experiment = "t1-layers-32-channels-128-inputs-1000"
    Path("lr.yml").write_text(
        f"name: {experiment}\nlayers: 2\nmax_inputs: 64\n"
        "matrix:\n  lr: [0.00125, 0.003, 1.0e-05, 0.001]\n  ch: [16, 32]\n"
    )
    cli(capsys, "queue", "lr.yml")
    whole = [line.split()[2] for line in cli(capsys, "ls")[1].splitlines()[1:]]
    values = [re.findall(r"-([^_]+)", name.split("/", 1)[1]) for name in whole]
    for columns in range(24, 41):
        monkeypatch.setattr(ls_command, "terminal_columns", lambda columns=columns: columns)
        shown = [line.split()[2] for line in cli(capsys, "ls")[1].splitlines()[1:]]
        for name, lr_ch in zip(shown, values, strict=True):
            assert all(value in name for value in lr_ch), (columns, name, lr_ch)


@pytest.mark.parametrize("columns", [47, 50, 53, 59])
def test_ls_gives_the_experiment_the_room_its_cut_names_leave(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, columns: int
) -> None:
    # The experiment was sized from the names whole (act-gelu_max_inputs-640_seed-0, 30
    # cells), though they were cut to 15 ("act-gelu…seed-0"): at 50 columns every row
    # read "fa…/act-gelu…seed-0", 41 cells wide: 7 cells the experiment could have had.
    import resconv_tui.commands.ls as ls_command

    experiment = "fashion-mnist-halves-first"
    Path("seeds.yml").write_text(
        f"name: {experiment}\nlayers: 2\nchannels: 4\n"
        "matrix:\n  act: [gelu, relu]\n  max_inputs: [640]\nseeds: 3\n"
    )
    cli(capsys, "queue", "seeds.yml")
    monkeypatch.setattr(ls_command, "terminal_columns", lambda: columns)
    out = cli(capsys, "ls")[1].splitlines()
    shown = [line.split()[2] for line in out[1:]]
    assert len(set(shown)) == 6 and all(len(line) <= columns for line in out), out
    # What is left is the gap after the last column, which ls strips.
    assert columns - max(len(line) for line in out) <= 2, out
    cut = shown[0].split("/")[0]
    assert cut.endswith("…") and experiment.startswith(cut[:-1]), out


def test_ls_lines_up_a_joiner_or_variation_selector_that_joins_no_emoji(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # heat-40°‍C (a joiner after the "So" degree sign) was counted 9 cells, warm️-a (U+FE0F
    # after a letter) 7: a terminal draws 10 and 6, so their rows' columns stood a cell
    # right of the others' and a cell left.
    for name in ("heat-40\\u00b0\\u200dC", "heat-40C-ok", "warm\\ufe0f-a"):
        Path("sweep.yml").write_text(SWEEP.replace("name: smoke", f'name: "{name}"'))
        cli(capsys, "queue", "sweep.yml")
    rows = cli(capsys, "ls")[1].splitlines()[1:]
    # Each character here takes a cell but the joiner and U+FE0F, which take none.
    pri_at = {len(re.sub("[\u200d\ufe0f]", "", row.split(" 0 ")[0])) for row in rows}
    assert len(rows) == 12 and len(pri_at) == 1, rows


@pytest.mark.parametrize("columns", [60, 50])
def test_ls_cuts_names_by_the_cells_it_pads_them_with(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, columns: int
) -> None:
    # Joiners between letters (a‍b‍c…): rich's count, which the cuts used, joins each pair
    # as one cell; ls pads by core.queue.views.cell_len (a letter each, as a terminal
    # draws them). The experiment was left whole: at 60 columns the header ran to 69 cells.
    import resconv_tui.commands.ls as ls_command
    from core.queue.views import cell_len

    experiment = "\u200d".join("abcdefghijklmnopqrstuvwxyz") + "-exp"
    Path("zwj.yml").write_text(SWEEP.replace("name: smoke", f'name: "{experiment}"'))
    cli(capsys, "queue", "zwj.yml")
    monkeypatch.setattr(ls_command, "terminal_columns", lambda: columns)
    out = cli(capsys, "ls")[1].splitlines()
    assert len(out) == 5 and all(cell_len(line) <= columns for line in out), out
    assert len({line.split()[2] for line in out[1:]}) == 4, out


@pytest.mark.parametrize("columns", [80, 60])
def test_ls_cut_rows_of_two_experiments_stay_told_apart(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, columns: int
) -> None:
    # Both experiments were cut to one start: rows 1 and 5 read "fashion-mnist-halv…/ch-4…".
    import resconv_tui.commands.ls as ls_command

    for which in ("first", "second"):
        Path(f"{which}.yml").write_text(
            SWEEP.replace("name: smoke", f"name: fashion-mnist-halves-{which}")
        )
        cli(capsys, "queue", f"{which}.yml")
    monkeypatch.setattr(ls_command, "terminal_columns", lambda: columns)
    rows = cli(capsys, "ls")[1].splitlines()[1:]
    assert len({row.split()[2] for row in rows}) == 8, rows


def test_ls_cuts_the_run_column_below_20_cells_only_with_rows_told_apart(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # At 40 columns the run column went to 12 cells: runs 1 and 2 (act-gelu, lr 0.001 and
    # 0.0001) both read "t4…/act-gelu…". Wider than the terminal is better than alike.
    import resconv_tui.commands.ls as ls_command

    Path("t4.yml").write_text(
        "name: t4-batchnorm-position-inputs-1000\nlayers: 2\nchannels: 4\nmax_inputs: 64\n"
        "matrix:\n  act: [gelu, relu]\n  lr: [0.001, 0.0001]\n"
    )
    cli(capsys, "queue", "t4.yml")
    for columns in (40, 44, 60):
        monkeypatch.setattr(ls_command, "terminal_columns", lambda columns=columns: columns)
        rows = [line.split() for line in cli(capsys, "ls")[1].splitlines()[1:]]
        assert len({row[2] for row in rows}) == 4, (columns, rows)


def test_ls_keeps_a_wide_first_character_of_the_experiment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Cut to 2 cells, 実 (2 cells) and its "…" did not fit: the experiment read "…"; cut
    # to 6, rich's truncate padded "実験 …" with a space, split as two words.
    import resconv_tui.commands.ls as ls_command
    from resconv_tui.name_cuts import keep_start

    assert (
        keep_start("実験ファッション", 3) == "実…" and keep_start("実験ファッション", 6) == "実験…"
    )

    Path("jp.yml").write_text(SWEEP.replace("name: smoke", "name: 実験ファッションの長い名前です"))
    cli(capsys, "queue", "jp.yml")
    monkeypatch.setattr(ls_command, "terminal_columns", lambda: 44)  # 6 cells of experiment
    assert cli(capsys, "ls")[1].splitlines()[1].split()[2] == "実験…/ch-4_lr-0.001"


def test_wrapping_counts_a_wide_character_as_two_cells() -> None:
    # textwrap counted 実験 as 2 characters: its lines ran to 106 cells at 80 columns.
    from core.queue.views import cell_len
    from resconv_tui.terminal_output import wrap_cells

    lines = wrap_cells("実験 " * 30, 40, "  ", "    ")
    assert all(cell_len(line) <= 40 for line in lines) and len(lines) == 5
    assert lines[0].startswith("  実験") and lines[1].startswith("    実験")
    # A word wider than the line stays whole, on a line of its own; spaces kept as written.
    assert wrap_cells("run 4  worker vm-gpu-box-98765-18fc  beat", 13) == [
        "run 4  worker",
        "vm-gpu-box-98765-18fc",
        "beat",
    ]
    # A line break or tab within the text is a space (it broke a line without its indent).
    assert wrap_cells("out of\nmemory\tat 64", 40) == ["out of memory at 64"]


def test_status_says_which_queued_runs_no_worker_will_take(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A --max-runs worker leaving runs queued read "no live worker takes runs: stopping".
    cli(capsys, "queue", "sweep.yml")
    repo = Repo.open("runs.db")
    worker = repo.register_worker("gpu-box", 4242, "cuda:0", max_runs=2)
    run = repo.claim(worker)
    assert run is not None
    repo.add_metrics(run.id, [], inputs_done=128)
    time.sleep(0.01)
    repo.heartbeat(worker, run_id=run.id)
    out = cli(capsys, "status")[1]
    said = re.search(r"^queue ETA: — \(2 queued runs beyond the workers' --max-runs; the "
                     r"workers' runs end in \d+s\)$", out, re.MULTILINE)  # fmt: skip
    assert said, out
    repo.update_worker(worker, state="stopping")  # its run goes back: 4 left
    said = "queue ETA: — (4 queued runs left: every live worker is stopping)"
    assert said in cli(capsys, "status")[1]


def test_status_says_a_stalled_worker_s_run_is_stalled(capsys: pytest.CaptureFixture[str]) -> None:
    # The worker's heartbeat saw no training step for 10 min and marked its row.
    repo, worker, _ = queued_and_claimed(capsys)
    repo.update_worker(worker, state="stalled")
    out = cli(capsys, "status")[1]
    assert "#1 smoke/ch-4_lr-0.001  0% (0 of 512 inputs)" in out
    assert "(stalled: no training step for 10 min or more; the worker's log shows" in out
    assert "cuda:0  run #1 stalled  0 done" in out
    listed = cli(capsys, "ls", "--status", "running")[1]
    assert "stalled: no training step for 10 min or more (see its worker's log)" in listed
    stalled = {r["id"]: r["stalled"] for r in json.loads(cli(capsys, "ls", "--json")[1])}
    assert stalled == {1: True, 2: False, 3: False, 4: False}
    # Stopped with SIGTERM in its run's final pass: it read as training on.
    repo.update_worker(worker, state="stopping")
    assert "cuda:0  run #1 stopping  0 done" in cli(capsys, "status")[1]


def test_ls_and_status_say_a_silent_worker_s_run_is_silent_as_the_dashboard_does(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A worker of another box (or a paused one) gone quiet 40 s: the dashboard's row read
    # "running?  silent 40s", ls "ETA 16s" (the forecast frozen at its last beat).
    cli(capsys, "queue", "sweep.yml")
    repo = Repo.open("runs.db")
    real_time = time.time
    with monkeypatch.context() as patch:  # its last beat 40 s ago
        patch.setattr(repo_module, "time", SimpleNamespace(time=lambda: real_time() - 40))
        worker = repo.register_worker("gpu-box", 1111, "cuda:0")
        assert repo.claim(worker) is not None
        repo.heartbeat(worker, run_id=1, inputs_done=128)
    # 40 s, or a few more where this machine is slow between the beat and the read.
    listed = cli(capsys, "ls", "--status", "running")[1]
    assert re.search(r"silent 4\ds: no heartbeat from its worker \(lost\?\)", listed), listed
    assert "ETA" not in listed
    assert json.loads(cli(capsys, "ls", "--json")[1])[0]["eta_seconds"] is None
    # Nor does status count the queue down on it ("queue ETA: 0s").
    out = cli(capsys, "status")[1]
    assert "queue ETA: — (the workers are silent: lost?)" in out
    assert re.search(r"last seen 4\d s ago \(silent: lost\?\)", out), out


def run_1_of_an_exited_worker(capsys: pytest.CaptureFixture[str]) -> tuple[Repo, str]:
    """The sweep queued, and run 1 claimed by a worker of this machine whose process has
    exited (as after `kill -9`), its last beat now."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # its pid is free now
    cli(capsys, "queue", "sweep.yml")
    repo = Repo.open("runs.db")
    worker = repo.register_worker(socket.gethostname(), gone.pid, "cpu")
    assert repo.claim(worker) is not None
    return repo, worker


def test_cancel_of_a_run_whose_worker_has_exited_cancels_it_at_once(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # "cancel requested" while nobody was left to read it: the run stayed running, rm
    # refused it, and a later worker failed it as "worker lost", for retry to queue.
    # Its last beat a moment ago: a cancel in the 10 s before a dashboard would mark
    # the worker lost was lost the same way.
    repo, _ = run_1_of_an_exited_worker(capsys)
    alive = repo.register_worker(socket.gethostname(), os.getpid(), "cpu")
    assert repo.claim(alive) is not None  # run 2: its worker (this process) reads requests
    code, out, _ = cli(capsys, "cancel", "1", "2")
    assert code == 0
    assert out.splitlines() == [
        "run 1: cancelled",
        "run 2: cancel requested (its worker stops it within a few seconds)",
    ]
    assert repo.get_run(1).status == RunStatus.CANCELLED
    assert cli(capsys, "rm", "1")[:2] == (
        0,
        "removed 1 run\nthe checkpoint folders of run 1, if made, stay on disk\n",
    )
    # Run 2 still trains until its worker reads the request (a stack's until the stack
    # ends): ls and status said nothing of it, showing a running run frozen at 0%.
    listed = cli(capsys, "ls")[1]
    assert "cancel requested: its worker stops it" in listed
    assert json.loads(cli(capsys, "ls", "--json")[1])[0]["cancel_requested"] is True
    assert "(cancel requested)" in cli(capsys, "status")[1]


def test_cancel_asks_a_live_run_whose_box_clock_is_behind_and_cancels_a_silent_one(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Run on a box 40 s ahead of the training box, cancel read the live run's beat as
    # 40 s old and said "run 1: cancelled" while its worker trained on, its end refused.
    monkeypatch.setattr(repo_module, "SILENCE_CONFIRM_S", 5.0, raising=False)
    cli(capsys, "queue", "sweep.yml")
    repo = Repo.open("runs.db")
    worker = repo.register_worker("training-box", 4242, "cuda:0")
    assert repo.claim(worker) is not None
    with beating_behind(repo, 1, 40):
        code, out, err = cli(capsys, "cancel", "1")
    assert (code, out) == (
        0,
        "run 1: cancel requested (its worker stops it within a few seconds)\n",
    )
    assert re.fullmatch(  # 40 s, or a little more read under load
        r"resconv-tui: run 1: its last heartbeat reads 4\d s old by this machine's clock; "
        r"watching it up to 5 s for its worker's next one before cancelling it at once\n",
        err,
    ), err
    assert repo.get_run(1).status == RunStatus.RUNNING
    # Its box dies: the beat stays, and the run is cancelled once watched that long.
    monkeypatch.setattr(repo_module, "SILENCE_CONFIRM_S", 0.5)
    assert cli(capsys, "cancel", "1")[:2] == (0, "run 1: cancelled\n")
    assert repo.get_run(1).status == RunStatus.CANCELLED


def test_cancel_of_many_silent_looking_runs_says_why_it_pauses_once(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # `cancel` of a dead box's runs said "its last heartbeat reads ... watching it up to
    # 7 s ..." once per run: 300 lines on stderr for a 300-run sweep.
    monkeypatch.setattr(repo_module, "SILENCE_CONFIRM_S", 1.0)
    cli(capsys, "queue", "sweep.yml")
    repo = Repo.open("runs.db")
    dead = repo.register_worker("dead-box", 4242, "cuda:0")
    for run_id, silent_s in ((1, 40), (2, 45), (3, 200)):
        assert repo.claim(dead) is not None
        with repo._write() as conn:
            conn.execute(repo_module.update(repo_module.RUN).where(repo_module.RUN.c.id == run_id)
                         .values(heartbeat_at=time.time() - silent_s))  # fmt: skip
    code, out, err = cli(capsys, "cancel", "1", "2", "3")
    assert (code, out) == (0, "run 1: cancelled\nrun 2: cancelled\nrun 3: cancelled\n")
    assert re.fullmatch(  # 40 s, or a little more read under load
        r"resconv-tui: runs 1, 2, 3: their last heartbeats read 4\d s to 3 min old by this "
        r"machine's clock; watching them up to 1 s for their workers' next ones before "
        r"cancelling them at once\n",
        err,
    ), err


@pytest.mark.parametrize("meanwhile", ["run 2 succeeds", "run 3 is deleted"])
def test_cancel_says_a_run_that_ended_while_it_watched_and_cancels_the_others(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, meanwhile: str
) -> None:
    # Run 2 succeeded, or queued run 3 was removed (`rm 3`), while cancel watched run 1's
    # old-looking beat: the whole cancel was refused ("run 2 has succeeded: ...; nothing
    # changed", "no run with id 3 ...; nothing changed"), the others left as they were;
    # now that run is named as it ended, the others cancelled.
    monkeypatch.setattr(repo_module, "SILENCE_CONFIRM_S", 0.5)
    cli(capsys, "queue", "sweep.yml")
    repo = Repo.open("runs.db")
    silent = repo.register_worker("dead-box", 4242, "cuda:0")
    live = repo.register_worker("training-box", 4243, "cuda:0")
    assert repo.claim(silent) is not None and repo.claim(live) is not None
    with repo._write() as conn:  # run 1's last beat, 40 s old here: then its box died
        conn.execute(repo_module.update(repo_module.RUN).where(repo_module.RUN.c.id == 1)
                     .values(heartbeat_at=time.time() - 40))  # fmt: skip
    real_sleep = repo_module.sleep

    def one_ends_during_the_watch(seconds: float) -> None:
        if meanwhile == "run 2 succeeds" and repo.get_run(2).status == RunStatus.RUNNING:
            assert repo.finish(2, live, FinalFigures(validation_loss=0.5))
        elif meanwhile == "run 3 is deleted" and repo.list_runs(RunFilter(ids=(3,))):
            assert repo.remove([3]) == 1
        real_sleep(seconds)

    monkeypatch.setattr(repo_module, "sleep", one_ends_during_the_watch)
    code, out, _ = cli(capsys, "cancel", "1", "2", "3")
    queued = RunStatus.QUEUED  # run 4, not named
    if meanwhile == "run 2 succeeds":
        said = ["run 1: cancelled", "run 2 succeeded meanwhile: not cancelled", "run 3: cancelled"]
        statuses = {
            1: RunStatus.CANCELLED,
            2: RunStatus.SUCCEEDED,
            3: RunStatus.CANCELLED,
            4: queued,
        }
    else:
        asked = "run 2: cancel requested (its worker stops it within a few seconds)"
        said = ["run 1: cancelled", asked, "run 3 was deleted meanwhile: not cancelled"]
        statuses = {1: RunStatus.CANCELLED, 2: RunStatus.RUNNING, 4: queued}
    # Exit 1, not all cancelled: `cancel 2 && rm 2` must not remove a run that succeeded.
    assert (code, out.splitlines()) == (1, said)
    assert {run.id: run.status for run in repo.list_runs()} == statuses
    assert repo.get_run(2).cancel_requested == (meanwhile == "run 3 is deleted")


def test_status_names_the_workers_lost_or_stopped_lately_as_the_dashboard_does(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # After a kill -9 the dashboard's panel said "lost" where status named no worker.
    repo = Repo.open("runs.db")
    lost = repo.register_worker("gpu-box", 1111, "cuda:0")
    repo.update_worker(lost, state="lost")
    out = cli(capsys, "status")[1]
    lines = out.splitlines()
    at = lines.index("workers: none live (start one: resconv-tui worker); lately:")
    assert lines[at + 1].startswith(f"  {lost}  cuda:0  lost  0 done  last seen ")
    assert "(silent" not in lines[at + 1]  # its state says it
    alive = repo.register_worker("gpu-box", 2222, "cuda:1")
    lines = cli(capsys, "status")[1].splitlines()
    at = lines.index("workers:")
    assert lines[at + 1].startswith(f"  {alive}  cuda:1  idle") and lost in lines[at + 2]


def test_status_says_a_worker_of_this_machine_has_exited_and_changes_nothing(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # its pid is free now: a worker killed with -9 looks like this
    cli(capsys, "queue", "sweep.yml")
    repo = Repo.open("runs.db")
    real_time = time.time
    with monkeypatch.context() as patch:  # its last beat 12 s ago: silent long enough
        patch.setattr(repo_module, "time", SimpleNamespace(time=lambda: real_time() - 12))
        worker = repo.register_worker(socket.gethostname(), gone.pid, "cpu")
        assert repo.claim(worker) is not None
    code, out, _ = cli(capsys, "status")
    assert code == 0
    exited = "heartbeat 12 s ago (its worker's process has exited: worker lost)"
    assert f"worker {worker}  {exited}" in out
    assert "cpu  run #1  0 done  last seen 12 s ago (its process has exited: lost; " in out
    assert "queue ETA: — (no live worker)" in out  # it trains nothing any more
    listed = cli(capsys, "ls", "--status", "running")[1]
    assert "its worker's process has exited: worker lost" in listed and "ETA" not in listed
    assert json.loads(cli(capsys, "ls", "--json")[1])[0]["worker_exited"] is True
    assert repo.get_run(1).status == RunStatus.RUNNING  # status and ls only read
    # retry records it lost, as they say it is, and queues it again: it said "run 1 is
    # running" until a worker or a dashboard had recorded it.
    # A retry of other ids leaves it alone: `retry 3` of a queued run recorded run 1
    # lost, then said "nothing changed".
    code, out, err = cli(capsys, "retry", "3")
    assert code == 2 and out == "" and "nothing changed" in err
    assert repo.get_run(1).status == RunStatus.RUNNING
    code, out, _ = cli(capsys, "retry", "--cause", "worker-lost")
    assert (code, out) == (0, "run 1: worker lost (its worker's process has exited)\n"
                              "queued again: 1\n")  # fmt: skip
    assert repo.get_run(1).status == RunStatus.QUEUED


def test_retry_right_after_a_kill_says_when_the_run_can_be_retried(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # `retry 1` a moment after `kill -9` said "not allowed: run 1 is running".
    repo, _ = run_1_of_an_exited_worker(capsys)  # its last beat: now
    code, _, err = cli(capsys, "retry", "1")
    assert code == 2
    one_error_line(err, "not allowed: run 1's worker has exited; the run is recorded lost once")
    assert re.search(r"retry in (9|10) s$", err.strip()), err
    assert repo.get_run(1).status == RunStatus.RUNNING


def test_results_markdown_csv_json(capsys: pytest.CaptureFixture[str]) -> None:
    cli(capsys, "queue", "sweep.yml")
    repo = Repo.open("runs.db")
    worker = repo.register_worker("h", 1, "cpu")
    for loss in (0.05, 0.04, 0.06):
        run = repo.claim(worker)
        assert run is not None
        repo.finish(run.id, worker, FinalFigures(validation_loss=loss, train_seconds=90.0))
    code, out, _ = cli(capsys, "results", "--format", "markdown")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 5
    assert lines[0].split("|")[1:-1] == [
        " run ", " ch ", "    lr ", " validation loss ", " model params ",
        " train time (minutes) ", " meter                 ",
    ]  # fmt: skip
    assert lines[2].startswith("|   2 |  4 | 0.003 |            0.04 |          383 |")
    code, out, _ = cli(capsys, "results", "--sort", "-lr", "ch", "--columns", "lr", "ch", "loss",
                       "--format", "csv")  # fmt: skip
    assert out.splitlines() == [
        "lr,ch,validation loss", "0.003,4,0.04", "0.001,4,0.05", "0.001,8,0.06",
    ]  # fmt: skip
    # Given again, --sort and --columns add to their lists, as one option given them all
    # would: the last one alone was used (sorted by ch only, the ch column only).
    code, out, _ = cli(capsys, "results", "--sort", "-lr", "--sort", "ch", "--columns", "lr",
                       "--columns", "ch", "loss", "--format", "csv")  # fmt: skip
    assert out.splitlines() == [
        "lr,ch,validation loss", "0.003,4,0.04", "0.001,4,0.05", "0.001,8,0.06",
    ]  # fmt: skip
    code, out, _ = cli(capsys, "results", "--sort", "loss", "--sort", "-loss", "--columns",
                       "loss", "--format", "csv")  # fmt: skip
    assert out.splitlines() == ["validation loss", "0.04", "0.05", "0.06"]  # the first: primary
    code, out, _ = cli(capsys, "results", "--columns", "-meter", "--columns", "-params",
                       "--format", "csv")  # fmt: skip
    assert out.splitlines()[0] == "run,ch,lr,validation loss,train time (minutes)"
    # Hiding beside showing is refused, given in one option or in two.
    code, _, err = cli(capsys, "results", "--columns", "lr", "--columns", "-meter")
    assert code == 2
    one_error_line(err, "--columns: -meter hides while lr shows")
    # A column given twice, or by two of its names, is shown once.
    code, out, _ = cli(capsys, "results", "--sort", "loss", "--columns", "lr", "loss", "loss",
                       "validation", "--format", "csv")  # fmt: skip
    assert out.splitlines() == ["lr,validation loss", "0.003,0.04", "0.001,0.05", "0.001,0.06"]
    code, out, _ = cli(capsys, "results", "--experiment", "smoke", "--format", "json",
                       "--columns", "-meter")  # fmt: skip
    assert '"train_minutes": 1.5' in out and '"meter"' not in out
    # The results screen's headers name their columns here too.
    code, out, _ = cli(capsys, "results", "--sort", "val loss", "--columns", "lr", "val loss",
                       "minutes", "in/s", "--format", "csv")  # fmt: skip
    assert code == 0 and out.splitlines()[:2] == [
        "lr,validation loss,train time (minutes),inputs/s", "0.003,0.04,1.5,",
    ]  # fmt: skip


def test_manage_commands(capsys: pytest.CaptureFixture[str]) -> None:
    cli(capsys, "queue", "sweep.yml")
    repo = Repo.open("runs.db")
    worker = repo.register_worker("h", 1, "cpu")
    running = repo.claim(worker)
    assert running is not None
    code, out, _ = cli(capsys, "cancel", "1", "2")
    assert code == 0 and out.splitlines() == [
        "run 1: cancel requested (its worker stops it within a few seconds)",
        "run 2: cancelled",
    ]
    assert cli(capsys, "retry", "2")[1] == "queued again: 2\n"
    assert cli(capsys, "cancel", "2")[0] == 0
    assert cli(capsys, "retry", "2", "2")[1] == "queued again: 2\n"  # once: it said "2, 2"
    # Run 1 has trained all its inputs (its final validation to come): no step is left
    # to stop it before, and it said "stops it within a few seconds", then succeeded.
    repo.add_metrics(1, [], inputs_done=repo.get_run(1).total_inputs + 64)
    assert "it has trained all its inputs and is finishing" in cli(capsys, "cancel", "1")[1]
    assert "cancel requested, but it has trained all its inputs" in cli(capsys, "ls")[1]
    assert repo.finish(1, worker, FinalFigures(validation_loss=0.2))
    assert not repo.get_run(1).cancel_requested  # moot: shown as requested no more
    assert cli(capsys, "next", "4")[1] == "run 4 trains next (priority 1)\n"
    assert repo.claim(worker) is not None and repo.get_run(4).status == RunStatus.RUNNING
    assert cli(capsys, "rm", "2", "3")[1] == "removed 2 runs\n"  # neither started
    assert [r.id for r in repo.list_runs()] == [1, 4]
    # A run that trained leaves its checkpoint folder: said, as the dashboard says it.
    folder = Path("ck/smoke/run-4").resolve()
    folder.mkdir(parents=True)
    repo.finish(4, worker, FinalFigures(validation_loss=0.2, checkpoint_path=str(folder)))
    assert cli(capsys, "rm", "4")[1] == (
        f"removed 1 run\ncheckpoint folders stay on disk: {folder}\n"
    )
    # A failed run records no folder, but may have made one (review).
    cli(capsys, "queue", "sweep.yml", "--force")
    failed = repo.claim(worker)
    assert failed is not None and repo.fail(failed.id, worker, "boom")
    assert cli(capsys, "rm", str(failed.id))[1] == (
        f"removed 1 run\nthe checkpoint folders of run {failed.id}, if made, stay on disk\n"
    )
    # Queued again after a stop: it trained before, so it may have a folder (review).
    again = repo.claim(worker)
    assert again is not None and repo.requeue(again.id, worker) == RunStatus.QUEUED
    assert "if made, stay on disk" in cli(capsys, "rm", str(again.id))[1]


def test_ls_lists_runs_in_queue_order_with_filters_and_json(
    capsys: pytest.CaptureFixture[str],
) -> None:
    cli(capsys, "queue", "sweep.yml")
    repo = Repo.open("runs.db")
    worker = repo.register_worker("h", 1, "cpu")
    assert cli(capsys, "priority", "3", "4")[1] == "run 4: priority 3\n"
    first = repo.claim(worker)
    assert first is not None and first.id == 4  # the priority took effect
    repo.finish(first.id, worker, FinalFigures(validation_loss=0.0512259))
    # A succeeded run trains no more: named and left as it is; with only such runs, exit 2.
    code, out, err = cli(capsys, "priority", "5", "4", "3")
    assert (code, out) == (0, "run 3: priority 5\n")
    assert "left as they are: run 4 succeeded and will not train again" in err
    assert repo.get_run(4).priority == 3 and repo.get_run(3).priority == 5
    repo.set_priority([3], 0)
    code, _, err = cli(capsys, "priority", "5", "4")
    assert code == 2 and "run 4 succeeded and will not train again; nothing changed" in err
    second = repo.claim(worker)
    assert second is not None
    repo.fail(second.id, worker, "CUDA out of memory (tried to allocate 2.0 GiB)")
    assert repo.claim(worker) is not None  # run 2 trains now: listed first
    code, out, _ = cli(capsys, "ls")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["id", "status", "run", "pri", "progress", "val", "loss",
                                "params", "note"]  # fmt: skip
    assert [line.split()[:2] for line in lines[1:]] == [
        ["2", "running"], ["3", "queued"], ["1", "failed"], ["4", "succeeded"],
    ]  # fmt: skip
    # As its help says: it said "queue order, then the others by id", the running run
    # first all the same.
    with pytest.raises(SystemExit):
        main(["ls", "--help"])
    said = " ".join(capsys.readouterr().out.split())
    assert "the running ones (by id), then the queued ones in claim order" in said
    assert "then the ended ones (by id)" in said
    assert lines[3].endswith("oom: CUDA out of memory (tried to allocate 2.0 GiB)")
    assert "0.051226" in lines[4]
    _, out, _ = cli(capsys, "ls", "--status", "failed", "succeeded")
    assert [line.split()[0] for line in out.splitlines()[1:]] == ["1", "4"]
    # Given twice, the option adds to its list: the failed run was left out.
    _, out, _ = cli(capsys, "ls", "--status", "failed", "--status", "succeeded")
    assert [line.split()[0] for line in out.splitlines()[1:]] == ["1", "4"]
    _, out, _ = cli(capsys, "ls", "--json", "--status", "failed")
    (failed,) = json.loads(out)
    assert (failed["id"], failed["cause"], failed["name"]) == (1, "oom", "ch-4_lr-0.001")
    assert failed["eta_seconds"] is None
    # The text's ETA is in the JSON too: run 2 did 64 inputs in the 10 s since its start.
    repo.heartbeat(repo.get_run(2).worker_id or "", run_id=2, inputs_done=64)
    with sqlite3.connect("runs.db") as conn:
        conn.execute("UPDATE run SET started_at = heartbeat_at - 10 WHERE id = 2")
    (running,) = json.loads(cli(capsys, "ls", "--json", "--status", "running")[1])
    left = running["total_inputs"] - 64
    assert running["eta_seconds"] == pytest.approx(left / 6.4, abs=0.1)
    assert "ETA" in cli(capsys, "ls", "--status", "running")[1]
    # A cancel asked for: the text's "cancel requested", and no ETA in the JSON either.
    repo.request_cancel([2])
    (running,) = json.loads(cli(capsys, "ls", "--json", "--status", "running")[1])
    assert running["cancel_requested"] and running["eta_seconds"] is None
    assert cli(capsys, "ls", "--experiment", "smoke", "--status", "cancelled")[1] == (
        "no runs match\n"
    )


def test_json_gives_swept_values_as_the_config_holds_them_beside_the_file_s(
    capsys: pytest.CaptureFixture[str], in_tmp: Path
) -> None:
    # `swept` is the file's spelling (lr as the text "3e-4", act GELU, bnp-e false): a
    # script comparing it with `config` (0.0003, gelu, null) found them apart.
    matrix = "  act: [GELU]\n  lr: ['3e-4']\n  bnp-e: [off, 1]\n  ch: [[4, 8]]\n  ks1: [3]\n"
    sweep = SWEEP.replace("layers: 2", "layers: 2\nmodel: v2\nks2: 5").split("matrix:")[0]
    (in_tmp / "sweep.yml").write_text(sweep + "matrix:\n" + matrix)
    assert cli(capsys, "queue", "sweep.yml")[0] == 0
    first = json.loads(cli(capsys, "ls", "--json")[1])[0]
    assert first["swept"] == {"act": "GELU", "lr": "3e-4", "bnp-e": False, "ch": [4, 8], "ks1": 3}
    as_config = {"act": "gelu", "lr": 0.0003, "bnp-e": None, "ch": [4, 8], "ks1": 3}
    assert first["swept_as_config"] == as_config
    shown = json.loads(cli(capsys, "show", str(first["id"]), "--json")[1])
    assert shown["swept"] == first["swept"] and shown["swept_as_config"] == as_config
    config = shown["config"]
    assert (config["activation"], config["lr"], config["bn_encoder"]) == ("gelu", 0.0003, None)


def test_experiment_given_twice_lists_runs_of_either(capsys: pytest.CaptureFixture[str]) -> None:
    # The second --experiment replaced the first, silently: 4 runs of b, none of a.
    for name in ("a", "b", "c"):
        Path(f"{name}.yml").write_text(SWEEP.replace("name: smoke", f"name: {name}"))
        cli(capsys, "queue", f"{name}.yml")
    repo = Repo.open("runs.db")
    worker = repo.register_worker("h", 1, "cpu")
    for _ in range(12):
        run = repo.claim(worker)
        assert run is not None
        repo.finish(run.id, worker, FinalFigures(validation_loss=0.1))
    _, out, _ = cli(capsys, "ls", "--json", "--experiment", "a", "--experiment", "b")
    assert Counter(run["experiment"] for run in json.loads(out)) == {"a": 4, "b": 4}
    _, out, _ = cli(capsys, "results", "--format", "json", "--experiment", "c", "--experiment",
                    "a", "--experiment", "c")  # fmt: skip
    assert Counter(row["experiment"] for row in json.loads(out)) == {"a": 4, "c": 4}
    code, _, err = cli(capsys, "ls", "--experiment", "a", "--experiment", "x")
    assert code == 2
    one_error_line(err, "no experiment 'x' in runs.db (a, b, c)")
    # Several names after one --experiment, as the README writes it (`--experiment NAME
    # ...`, as `--status S ...`): "unrecognized arguments: c".
    _, out, _ = cli(capsys, "ls", "--json", "--experiment", "b", "c")
    assert Counter(run["experiment"] for run in json.loads(out)) == {"b": 4, "c": 4}
    _, out, _ = cli(capsys, "results", "--format", "json", "--experiment", "a", "b",
                    "--sort", "loss")  # fmt: skip
    assert Counter(row["experiment"] for row in json.loads(out)) == {"a": 4, "b": 4}


def around_the_signal(
    monkeypatch: pytest.MonkeyPatch,
    before: Callable[[], object] = lambda: None,
    after: Callable[[], object] = lambda: None,
) -> None:
    """``stop``'s signal (WorkerLauncher.stop) with what a worker does just before it
    (claims, ends its run) or at once after it (puts its run back, exits) around it."""
    from resconv_tui.worker_launcher import WorkerLauncher

    real_stop = WorkerLauncher.stop

    def stop(self: WorkerLauncher, signalled: int) -> bool:
        before()
        sent = real_stop(self, signalled)
        after()
        return sent

    monkeypatch.setattr(WorkerLauncher, "stop", stop)


def said_by_stop(pid: int, runs: str) -> str:
    """``stop``'s line for one worker asked to stop, ``runs`` what becomes of its runs."""
    return f"asked worker pid {pid} to stop after the current step; {runs}\n"


def ignoring_sigterm() -> subprocess.Popen[str]:
    """A process here that ignores SIGTERM (as a worker busy in its step or final pass
    does), once it says its handler is in place: a fixed 0.2 s was sometimes too short
    for Python to start on a loaded machine, and the first SIGTERM then ended it."""
    code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('ignoring', flush=True); time.sleep(60)"
    )
    busy = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert busy.stdout is not None
    said = busy.stdout.readline()  # returns once it is said, or "" if the process ended
    busy.stdout.close()
    assert said == "ignoring\n", said
    return busy


@contextlib.contextmanager
def worker_in_final_pass(stopping: bool = False) -> Iterator[tuple[int, int]]:
    """A worker process here (one that ignores SIGTERM, as a worker busy in its final
    pass does) whose run has trained all its inputs: (its pid, the run's id)."""
    busy = ignoring_sigterm()
    repo = Repo.open("runs.db")
    worker_id = repo.register_worker(socket.gethostname(), busy.pid, "cpu")
    run = repo.claim(worker_id)
    assert run is not None
    repo.heartbeat(worker_id, run_id=run.id, inputs_done=run.total_inputs)
    if stopping:
        repo.update_worker(worker_id, state="stopping")
    try:
        yield busy.pid, run.id
    finally:
        busy.kill()
        busy.wait()


def held_mid_training(run_id: int) -> tuple[Repo, str]:
    """The queue open and run ``run_id``'s worker, its heartbeat saying the run is
    mid-training (64 inputs trained), not in the final pass ``worker_in_final_pass``
    put it in: (the repo, the worker's id)."""
    repo = Repo.open("runs.db")
    worker_id = repo.get_run(run_id).worker_id or ""
    repo.heartbeat(worker_id, run_id=run_id, inputs_done=64)
    return repo, worker_id


def test_stop_names_a_run_in_its_final_pass_which_ends_there(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # `stop` during an 11-layer run's final pass said its run goes back to the queue;
    # the pass is let finish, and the run succeeded 87 s later.
    cli(capsys, "queue", "sweep.yml")
    with worker_in_final_pass() as (pid, run_id):
        assert cli(capsys, "stop", "--no-wait")[1] == (
            f"asked worker pid {pid} to stop after the current step\n"
            f"run {run_id} trained all its inputs: its final pass ends first, "
            "then it will likely succeed\n"
        )


def test_stop_names_the_runs_that_go_back_to_the_queue(
    capsys: pytest.CaptureFixture[str],
) -> None:
    cli(capsys, "queue", "sweep.yml")
    with worker_in_final_pass() as (pid, run_id):
        held_mid_training(run_id)
        assert cli(capsys, "stop", "--no-wait")[1] == said_by_stop(
            pid, f"run {run_id} goes back to the queue"
        )


def test_stop_says_a_run_with_a_cancel_asked_for_ends_cancelled(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A stalled worker never read `resconv-tui cancel N`; stop said "run N goes back to
    # the queue", and the stop ended it cancelled (requeue honours the cancel).
    cli(capsys, "queue", "sweep.yml")
    with worker_in_final_pass() as (pid, run_id):
        repo, worker_id = held_mid_training(run_id)
        repo.request_cancel([run_id])
        assert cli(capsys, "stop", "--no-wait")[1] == said_by_stop(
            pid, f"run {run_id} ends cancelled (a cancel was asked for)"
        )
        assert repo.requeue(run_id, worker_id) == RunStatus.CANCELLED  # as its worker does


def test_stop_says_a_cancel_its_own_signal_carried_out_as_a_cancel_asked_for(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A worker quick to act on the signal (on a GPU, milliseconds) put back a run with a
    # cancel asked for before stop's second read: the put-back ended it cancelled, and
    # stop said "run N was cancelled meanwhile", as of a run that ended before the signal.
    cli(capsys, "queue", "sweep.yml")
    with worker_in_final_pass() as (pid, run_id):
        repo, worker_id = held_mid_training(run_id)
        repo.request_cancel([run_id])

        def put_back_at_once() -> None:
            assert repo.requeue(run_id, worker_id) == RunStatus.CANCELLED  # as its worker does

        around_the_signal(monkeypatch, after=put_back_at_once)
        assert cli(capsys, "stop", "--no-wait")[1] == said_by_stop(
            pid, f"run {run_id} ends cancelled (a cancel was asked for)"
        )


def test_stop_names_a_run_its_worker_put_back_before_stop_looked(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A worker on a GPU puts its run back within milliseconds of the SIGTERM: stop read
    # the running runs after signalling, found none, and said "it was idle".
    cli(capsys, "queue", "sweep.yml")
    with worker_in_final_pass() as (pid, run_id):
        repo, worker_id = held_mid_training(run_id)

        def quick_worker() -> None:
            assert repo.put_back(run_id, worker_id)  # as the worker does at its next step

        around_the_signal(monkeypatch, after=quick_worker)
        assert cli(capsys, "stop", "--no-wait")[1] == said_by_stop(
            pid, f"run {run_id} goes back to the queue"
        )


def test_stop_names_a_run_its_worker_claimed_after_stop_looked(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # An idle worker that claimed a run between stop's read of its runs and the signal
    # was said "it was idle", while the signal sent that run back to the queue.
    cli(capsys, "queue", "sweep.yml")
    with worker_in_final_pass() as (pid, run_id):
        repo = Repo.open("runs.db")
        worker_id = repo.get_run(run_id).worker_id or ""
        assert repo.put_back(run_id, worker_id)  # idle when stop reads its runs

        def claims_first() -> None:
            claimed = repo.claim(worker_id)  # its next run, claimed meanwhile
            assert claimed is not None and claimed.id == run_id

        around_the_signal(monkeypatch, before=claims_first)
        assert cli(capsys, "stop", "--no-wait")[1] == said_by_stop(
            pid, f"run {run_id} goes back to the queue"
        )


# A stand-in for a worker just started, as `python -m core.worker --db ../runs.db`
# (its command line and working folder are what stop knows it by): it ignores SIGTERM,
# as a worker busy in its final pass does, and says when it is ready.
STARTING_WORKER = """\
import pathlib, signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
pathlib.Path("ready").touch()
time.sleep(60)
"""


@contextlib.contextmanager
def worker_starting(
    folder: Path, wrapper: tuple[str, ...] = (), db: str = "../runs.db"
) -> Iterator[int]:
    """A process in ``folder`` (beside runs.db) whose command line is a worker's of
    ``db`` (../runs.db) and that has no worker row, started by the command ``wrapper``
    where one is given: the pid of the wrapper, else of the worker."""
    (folder / "core").mkdir(parents=True)
    (folder / "core" / "__init__.py").write_text("")
    (folder / "core" / "worker.py").write_text(STARTING_WORKER)
    command = [sys.executable, "-m", "core.worker", "--db", db, "--device", "cpu"]
    starting = subprocess.Popen(
        [*wrapper, *command], cwd=folder, env={**os.environ, "PYTHONPATH": ""}
    )
    try:
        deadline = time.monotonic() + 30
        while not (folder / "ready").exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        yield starting.pid
    finally:
        starting.kill()
        starting.wait()


def test_stop_signals_the_worker_a_wrapper_runs_not_the_wrapper(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # `timeout 8h python -m core.worker` (strace, unshare, /usr/bin/time alike): the
    # wrapper's command line names a worker's, and stop signalled it too, as a worker
    # "starting: no row yet", at every stop, row or not.
    cli(capsys, "queue", "sweep.yml")
    with worker_starting(Path("wrapped"), ("timeout", "60")) as wrapper:
        children = Path(f"/proc/{wrapper}/task/{wrapper}/children").read_text().split()
        (worker,) = map(int, children)
        assert cli(capsys, "stop", "--no-wait")[1] == (
            f"asked worker pid {worker} to stop (starting: no row yet); it held no run when read\n"
        )


def test_stop_leaves_a_worker_of_another_pid_namespace_alone(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A worker in a container of this user (rootless podman, the project folder mounted)
    # writes its row under the container's host name and its pid there (1): stop found
    # its process here by its command line, never matched it to its row, and signalled
    # it as "starting: no row yet" at every stop, its run unnamed.
    cli(capsys, "queue", "sweep.yml")
    isolated = ("unshare", "--pid", "--fork")
    if subprocess.run([*isolated, "true"], capture_output=True).returncode != 0:
        pytest.skip("no PID namespace can be made here (unshare --pid takes root)")
    with worker_starting(Path("contained"), isolated) as wrapper:
        (worker,) = map(int, Path(f"/proc/{wrapper}/task/{wrapper}/children").read_text().split())
        repo = Repo.open("runs.db")
        assert repo.claim(repo.register_worker("container-1", 1, "cpu")) is not None
        assert cli(capsys, "stop", "--no-wait")[1] == f"no live worker on {socket.gethostname()}\n"
        assert Path(f"/proc/{worker}").exists()


@pytest.mark.parametrize(
    ("argv", "is_worker"),
    [
        (["/venv/bin/python", "-m", "core.worker", "--db", "a.db"], True),
        (["python3.12", "-u", "-W", "ignore", "-m", "resconv_tui", "--db", "a.db", "worker"], True),
        (["/venv/bin/python", "/venv/bin/resconv-tui", "worker", "--slots", "2"], True),
        (["resconv-tui", "worker"], True),
        (["/venv/bin/python", "-m", "resconv_tui", "ls", "worker"], False),
        (["/venv/bin/python", "/venv/bin/resconv-tui", "worker", "--help"], False),
        (["python", "-m", "core.worker", "-h"], False),
        (["timeout", "8h", "python", "-m", "core.worker"], False),
        (["/usr/bin/time", "resconv-tui", "worker"], False),
        (["strace", "-f", "-o", "t", "python", "-m", "resconv_tui", "worker"], False),
        (["git", "commit", "-m", "core.worker"], False),
        (["python", "script.py", "-m", "core.worker"], False),
        (["python", "-c", "pass", "-m", "core.worker"], False),
        (["vim", "resconv-tui", "worker"], False),
        # A script file named as the module is not the module (python runs the file).
        (["python", "/home/me/core.worker", "--db", "a.db"], False),
        (["python", "-u", "--", "core.worker"], False),
        (["python", "resconv_tui", "worker"], False),
    ],
)
def test_a_worker_is_what_a_process_runs_not_what_its_arguments_name(
    argv: list[str], is_worker: bool
) -> None:
    from core.processes import worker_arguments

    assert (worker_arguments(argv) is not None) == is_worker


@pytest.mark.parametrize(
    ("argv", "is_worker"),
    [
        (["python", "-um", "core.worker", "--db", "a.db"], True),
        (["python", "-u", "-m", "core.worker"], True),
        (["python", "-umcore.worker"], True),
        (["python", "-uW", "ignore", "-m", "core.worker"], True),
        (["python", "-X", "dev", "-BIm", "resconv_tui", "worker"], True),
        (["python", "-Wignore", "-OOm", "core.worker"], True),
        (["python", "--check-hash-based-pycs", "never", "-qm", "core.worker"], True),
        # What Python refuses, or prints and exits at: no worker ever runs.
        (["python", "--foo", "-m", "core.worker"], False),
        (["python", "-zz", "-m", "core.worker"], False),
        (["python", "-V", "-m", "core.worker"], False),
        (["python", "--version", "-m", "core.worker"], False),
        (["python", "-uh", "-m", "core.worker"], False),
        # -c's command is the rest of its word, or the next word: never a script's name.
        (["python", "-uc", "core.worker"], False),
        (["python", "-uccore.worker"], False),
    ],
)
def test_a_worker_started_with_python_s_own_options_before_m_is_a_worker(
    argv: list[str], is_worker: bool
) -> None:
    # Python's short options run together as its getopt reads them (-um core.worker,
    # -uW ignore, -umcore.worker): -umcore.worker and -uW ignore were not found as
    # workers, so stop left one starting to train, while options Python refuses or exits
    # at (--foo, -V) were passed over as if the worker ran after them.
    from core.processes import worker_arguments

    assert (worker_arguments(argv) is not None) == is_worker


def test_stop_names_the_run_a_worker_it_found_starting_claimed_before_its_signal(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A worker (a slot, one just started) with no row when stop read the rows, that
    # registered and claimed a run before its signal came, was stopped and its run put
    # back, but stop said "it held no run when read". The rows are read again after
    # the signals, and what each stopped worker was training is named.
    cli(capsys, "queue", "sweep.yml")
    with worker_starting(Path("starting")) as pid:
        repo = Repo.open("runs.db")

        def registers_and_claims() -> None:
            worker_id = repo.register_worker(socket.gethostname(), pid, "cpu")
            assert repo.claim(worker_id) is not None

        around_the_signal(monkeypatch, before=registers_and_claims)
        assert cli(capsys, "stop", "--no-wait")[1] == (
            f"asked worker pid {pid} to stop (starting: no row yet); run 1 goes back to the queue\n"
        )


def test_stop_says_a_killed_worker_s_pid_went_to_a_worker_starting_not_unsignalled(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A worker killed mid-run whose pid went to a worker started since (no row yet):
    # stop said the pid was "another process's now: not signalled", then "asked worker
    # pid N to stop" of that same pid.
    cli(capsys, "queue", "sweep.yml")
    with worker_starting(Path("starting")) as pid:
        repo = Repo.open("runs.db")
        run = repo.claim(repo.register_worker(socket.gethostname(), pid, "cpu"))
        assert run is not None
        with sqlite3.connect("runs.db") as conn:  # the killed worker's row, a minute old
            conn.execute("UPDATE worker SET started_at = started_at - 60")
        assert cli(capsys, "stop", "--no-wait")[1] == (
            f"worker pid {pid} had exited (its pid is a worker's starting now: asked to stop "
            f"below); run {run.id} still reads running: its worker exited without giving it "
            f"back (resconv-tui retry {run.id} queues it again once silent 10 s)\n"
            f"asked worker pid {pid} to stop (starting: no row yet); it held no run when read\n"
        )


def test_stop_keeps_the_runs_it_read_when_the_read_after_its_signal_fails(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The read after the signal failing (a run row damaged meanwhile) unsaid the first
    # read's runs: "the runs the workers held are not said", of a run it had read.
    import resconv_tui.polling as polling
    from core.queue.errors import QueueError

    cli(capsys, "queue", "sweep.yml")
    with worker_in_final_pass() as (pid, run_id):
        real_read = polling.read_held_runs
        reads: list[int] = []

        def fails_the_second_time(repo: Repo, worker_ids: set[str]) -> list[RunRow]:
            reads.append(1)
            if len(reads) == 2:
                raise QueueError("run 9 has a damaged row")
            return real_read(repo, worker_ids)

        monkeypatch.setattr(polling, "read_held_runs", fails_the_second_time)
        code, out, err = cli(capsys, "stop", "--no-wait")
        assert (code, len(reads)) == (0, 2)
        assert f"asked worker pid {pid} to stop" in out and f"run {run_id}" in out
        assert "not said" not in err and "held no run" not in out


def test_stop_does_not_send_back_a_run_that_ended_before_its_signal(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # User walk (tiny runs, stop between them): 'run 156 goes back to the queue', and the
    # worker's log and ls said run 156 had succeeded: it ended between stop's first read
    # (running) and the signal, and the first read's row was said.
    cli(capsys, "queue", "sweep.yml")
    with worker_in_final_pass() as (pid, run_id):
        repo = Repo.open("runs.db")
        run = repo.get_run(run_id)
        worker_id = run.worker_id or ""
        repo.heartbeat(worker_id, run_id=run_id, inputs_done=run.total_inputs // 2)

        def ends_first() -> None:
            done = FinalFigures(0.05, inputs_done=run.total_inputs)
            assert repo.finish(run_id, worker_id, done)  # its last step, before the signal

        around_the_signal(monkeypatch, before=ends_first)
        assert cli(capsys, "stop", "--no-wait")[1] == said_by_stop(
            pid, f"run {run_id} succeeded meanwhile"
        )
        assert repo.get_run(run_id).status == RunStatus.SUCCEEDED


@pytest.mark.parametrize("wait", ["--no-wait", "--wait=5"])
def test_stop_names_a_run_that_ended_and_the_next_one_claimed_between_its_reads(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, wait: str
) -> None:
    # Between stop's two reads the worker's run succeeded and it claimed the next: each
    # run is named with its own fate, the first's not given to the second.
    cli(capsys, "queue", "sweep.yml")
    with worker_in_final_pass() as (pid, first):
        repo = Repo.open("runs.db")
        run = repo.get_run(first)
        worker_id = run.worker_id or ""
        repo.heartbeat(worker_id, run_id=first, inputs_done=run.total_inputs // 2)
        claimed: list[int] = []

        def ends_then_claims() -> None:
            done = FinalFigures(0.05, inputs_done=run.total_inputs)
            assert repo.finish(first, worker_id, done)
            nxt = repo.claim(worker_id)
            assert nxt is not None
            claimed.append(nxt.id)

        def acts_on_the_signal() -> None:
            # As the worker does at its next step, a little after stop's second read:
            # puts its run back, then exits.
            time.sleep(0.3)
            assert Repo.open("runs.db").put_back(claimed[0], worker_id)
            os.kill(pid, signal.SIGKILL)

        def signalled() -> None:
            if wait != "--no-wait":
                threading.Thread(target=acts_on_the_signal).start()

        around_the_signal(monkeypatch, before=ends_then_claims, after=signalled)
        out = cli(capsys, "stop", wait)[1]
        second = claimed[0]
        if wait == "--no-wait":
            assert out == said_by_stop(
                pid, f"run {second} goes back to the queue; run {first} succeeded meanwhile"
            )
        else:
            assert out == (
                f"asked worker pid {pid} to stop after the current step; waiting up to "
                f"5 s for it to exit\nworker pid {pid} stopped; run {first} succeeded; "
                f"run {second} went back to the queue\n"
            )


def test_stop_waits_for_its_workers_then_says_what_is_likely_of_one_still_at_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A worker in its final pass is let finish it (never killed): after --wait, stop says
    # it is still running, and what its run will likely do.
    cli(capsys, "queue", "sweep.yml")
    with worker_in_final_pass() as (pid, run_id):
        started = time.monotonic()
        assert cli(capsys, "stop", "--wait", "1")[1] == (
            f"asked worker pid {pid} to stop after the current step; waiting up to 1 s for "
            f"it to exit\nworker pid {pid} still running after 1 s\n"
            f"run {run_id} trained all its inputs: its final pass ends first, "
            "then it will likely succeed\n"
        )
        assert 1 <= time.monotonic() - started < 10


def test_stop_exits_non_zero_while_a_worker_it_signalled_is_still_running(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # `stop && next-step` went on with the worker still training: stop exited 0 after
    # "still running after 1 s". Down within the wait: 0; --no-wait promised nothing: 0.
    cli(capsys, "queue", "sweep.yml")
    with worker_in_final_pass() as (pid, _run_id):
        assert cli(capsys, "stop", "--wait", "1")[0] == 1
    with worker_in_final_pass() as (pid, _run_id):
        assert cli(capsys, "stop", "--no-wait")[0] == 0
    with worker_in_final_pass() as (pid, _run_id):
        around_the_signal(monkeypatch, after=lambda: os.kill(pid, signal.SIGKILL))
        code, out, _ = cli(capsys, "stop", "--wait", "5")
        assert (code, f"worker pid {pid} stopped" in out) == (0, True)


def test_stop_again_waits_again_for_a_worker_already_stopping(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # `stop` exited 1 ("still running after 1 s": a final pass let finish); run again, it
    # said "already stopping" and exited 0 at once, as if the worker were down, and
    # `stop && next-step` went on while it trained. It waits again (not signalling it
    # again: that is --now's "exit at once"), says how its run is doing, and exits 1.
    cli(capsys, "queue", "sweep.yml")
    with worker_in_final_pass() as (pid, run_id):
        assert cli(capsys, "stop", "--wait", "1")[0] == 1
        started = time.monotonic()
        code, out, _ = cli(capsys, "stop", "--wait", "1")
        assert (code, out) == (1, (
            f"worker pid {pid} already stopping (--now: stop at once); waiting up to 1 s "
            f"for it to exit\nworker pid {pid} still running after 1 s\n"
            f"run {run_id} trained all its inputs: its final pass ends first, "
            "then it will likely succeed\n"
        ))  # fmt: skip
        assert time.monotonic() - started >= 1
        # --no-wait says at once what is likely, as a first stop's --no-wait does.
        assert cli(capsys, "stop", "--no-wait") == (0, (
            f"worker pid {pid} already stopping (--now: stop at once)\n"
            f"run {run_id} trained all its inputs: its final pass ends first, "
            "then it will likely succeed\n"
        ), "")  # fmt: skip


@pytest.mark.parametrize("state", ["idle", "stopping"])
def test_stop_does_not_signal_a_process_started_after_the_worker_row_of_its_pid(
    capsys: pytest.CaptureFixture[str], state: str
) -> None:
    # A worker killed (kill -9) a minute after it registered still reads live for 120 s;
    # its pid given meanwhile to another process (here a sleep started after the row),
    # stop sent that stranger a SIGTERM, or, the row saying "stopping", waited out --wait
    # on it and exited 1. A process started after the row was written is not its worker.
    repo = Repo.open("runs.db")
    worker_id = repo.register_worker(socket.gethostname(), os.getpid(), "cpu")
    stranger = subprocess.Popen(["sleep", "30"])
    try:
        with sqlite3.connect("runs.db") as conn:  # as the killed worker's row: its pid now
            conn.execute(
                "UPDATE worker SET pid = ?, state = ?, started_at = started_at - 60",
                (stranger.pid, state),
            )
        repo.update_worker(worker_id)  # its last heartbeat, seconds before its kill
        assert cli(capsys, "stop", "--wait", "1") == (0, (
            f"worker pid {stranger.pid} had exited (its pid is another process's now: not "
            f"signalled)\nno live worker on {socket.gethostname()}\n"
        ), "")  # fmt: skip
        assert stranger.poll() is None  # not signalled
    finally:
        stranger.kill()
        stranger.wait()


def test_stop_names_the_runs_of_a_worker_whose_pid_went_to_another_process(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A worker killed mid-run, its pid given to a process started since: stop said it
    # "had exited" and no more, while `status` showed its run running and `retry`
    # refused it as running. Its run is named, with how it is queued again.
    cli(capsys, "queue", "sweep.yml")
    repo = Repo.open("runs.db")
    worker_id = repo.register_worker(socket.gethostname(), os.getpid(), "cpu")
    run = repo.claim(worker_id)
    assert run is not None
    stranger = subprocess.Popen(["sleep", "30"])
    try:
        with sqlite3.connect("runs.db") as conn:  # as the killed worker's row: its pid now
            conn.execute("UPDATE worker SET pid = ?, started_at = started_at - 60", (stranger.pid,))
        repo.heartbeat(worker_id, run_id=run.id, inputs_done=64)  # seconds before its kill
        assert cli(capsys, "stop", "--wait", "1") == (0, (
            f"worker pid {stranger.pid} had exited (its pid is another process's now: not "
            f"signalled); run {run.id} still reads running: its worker exited without "
            f"giving it back (resconv-tui retry {run.id} queues it again once silent 10 s)"
            f"\nno live worker on {socket.gethostname()}\n"
        ), "")  # fmt: skip
        assert stranger.poll() is None  # not signalled
        assert repo.get_run(run.id).status == RunStatus.RUNNING  # said, not changed
    finally:
        stranger.kill()
        stranger.wait()


def test_stop_still_signals_a_worker_whose_row_was_written_long_after_it_started(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A worker registers once its database answers (it waits out an outage): a row
    # written well after its process started is still that process's.
    cli(capsys, "queue", "sweep.yml")
    with worker_in_final_pass() as (pid, _run_id):
        with sqlite3.connect("runs.db") as conn:  # as registered an hour after its start
            conn.execute("UPDATE worker SET started_at = started_at + 3600")
        assert cli(capsys, "stop", "--no-wait")[1].startswith(
            f"asked worker pid {pid} to stop after the current step"
        )


def test_a_killed_worker_whose_pid_went_to_another_process_reads_exited_to_status_and_retry(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A worker killed with -9 mid-run, its pid given to a process started since: status,
    # ls, retry (and the dashboard) judged it by its pid alone, read it alive, showed its
    # run running and refused `retry` of it ("run 1 is running") until some worker's
    # 30 s stale check recorded it lost; with no worker up, nothing ever did.
    cli(capsys, "queue", "sweep.yml")
    repo = Repo.open("runs.db")
    killed = subprocess.Popen(["sleep", "30"])
    worker = repo.register_worker(socket.gethostname(), killed.pid, "cpu")
    run = repo.claim(worker)
    assert run is not None
    killed.kill()
    killed.wait()
    stranger = started_with_pid(killed.pid)
    if stranger is None:
        pytest.skip("cannot give a freed pid to a new process here (ns_last_pid takes root)")
    try:
        with sqlite3.connect("runs.db") as conn:  # registered a minute ago, silent 12 s
            conn.execute(
                "UPDATE worker SET started_at = started_at - 60, last_seen_at = last_seen_at - 12"
            )
        out = cli(capsys, "status")[1]
        assert "(its worker's process has exited: worker lost)" in out, out
        assert json.loads(cli(capsys, "ls", "--json")[1])[0]["worker_exited"] is True
        assert cli(capsys, "retry", str(run.id)) == (0, (
            f"run {run.id}: worker lost (its worker's process has exited)\n"
            f"queued again: {run.id}\n"
        ), "")  # fmt: skip
        assert repo.get_run(run.id).status == RunStatus.QUEUED
        assert stranger.poll() is None  # only read: the stranger is left alone
    finally:
        stranger.kill()
        stranger.wait()


def test_a_beating_worker_registered_before_a_clock_step_forward_reads_running_to_retry(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The clock stepped 60 s forward after the worker registered (NTP's first sync after
    # a boot, a VM resumed): its row's started_at, old clock, reads before its process
    # start, new clock, as a stranger given a dead worker's pid does. It still beats,
    # yet `retry` said "run 1's worker has exited ... retry in 10 s", again and again.
    cli(capsys, "queue", "sweep.yml")
    repo = Repo.open("runs.db")
    live = subprocess.Popen(["sleep", "30"])
    try:
        worker = repo.register_worker(socket.gethostname(), live.pid, "cpu")
        run = repo.claim(worker)
        assert run is not None
        with sqlite3.connect("runs.db") as conn:  # registered a minute before, by the old clock
            conn.execute("UPDATE worker SET started_at = started_at - 60")
        code, out, err = cli(capsys, "retry", str(run.id))
        assert code != 0 and "has exited" not in err, err
        assert f"run {run.id} is running" in err, err
        assert repo.get_run(run.id).status == RunStatus.RUNNING
    finally:
        live.kill()
        live.wait()


@pytest.mark.parametrize("wait", ["--no-wait", "--wait=5"])
def test_stop_says_a_worker_gone_before_its_signal_stopped_not_unsignalled(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, wait: str
) -> None:
    # A worker that exited between stop's look at it (alive) and its signal read "could
    # not signal worker pid N (another user's process?)" and exit 1: it is down, as
    # `stop && next-step` wants, and its run (left running: killed) is said as such.
    cli(capsys, "queue", "sweep.yml")
    with worker_in_final_pass() as (pid, run_id):
        held_mid_training(run_id)

        def exits_first() -> None:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)  # reaped: no such process left to signal

        around_the_signal(monkeypatch, before=exits_first)
        assert cli(capsys, "stop", wait) == (0, (
            f"worker pid {pid} stopped; run {run_id} still reads running: its worker exited "
            f"without giving it back (resconv-tui retry {run_id} queues it again once "
            "silent 10 s)\n"
        ), "")  # fmt: skip


# A `worker --slots K` supervisor in small: it starts one slot (naming itself in the
# slot's environment, as core.slots does), says the slot's pid, and exits when it has.
SUPERVISOR = (
    "import os, subprocess, sys; from core.processes import SUPERVISOR_ENV; "
    "env = {**os.environ, SUPERVISOR_ENV: str(os.getpid())}; "
    "code = 'import time; print(flush=True); time.sleep(60)'; "
    "slot = subprocess.Popen([sys.executable, '-c', code], env=env, stdout=subprocess.PIPE); "
    "slot.stdout.readline(); print(slot.pid, flush=True); slot.wait()"
)


def test_stop_names_the_supervisor_of_one_slot_its(capsys: pytest.CaptureFixture[str]) -> None:
    # One slot process up under its supervisor (a --slots 2 worker whose other slot was
    # stopped on its own, kill PID: it stays down): "worker pid 41 and their --slots
    # supervisor pid 40 stopped; it held no run when read".
    supervisor = subprocess.Popen(
        [sys.executable, "-c", SUPERVISOR], stdout=subprocess.PIPE, env={
            **os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])
        }
    )  # fmt: skip
    assert supervisor.stdout is not None
    slot = int(supervisor.stdout.readline())
    try:
        Repo.open("runs.db").register_worker(socket.gethostname(), slot, "cpu slot 2/2")
        assert cli(capsys, "stop", "--wait", "20") == (0, (
            f"asked worker pid {slot} to stop after the current step; waiting up to 20 s "
            f"for it to exit\nworker pid {slot} and its --slots supervisor pid "
            f"{supervisor.pid} stopped; it held no run when read\n"
        ), "")  # fmt: skip
    finally:
        with contextlib.suppress(ProcessLookupError):  # the slot, should stop have failed
            os.kill(slot, signal.SIGKILL)
        supervisor.kill()
        supervisor.wait()


@contextlib.contextmanager
def slot_gone_before_its_signal(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[int, int]]:
    """A stand-in supervisor (``SUPERVISOR``, up 2 s more after its slot: recording what
    it left) whose one slot is killed between stop's look at it and its signal: (the
    slot's pid, the supervisor's)."""
    supervisor = subprocess.Popen(
        [sys.executable, "-c", f"{SUPERVISOR}; import time; time.sleep(2)"],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])},
    )
    assert supervisor.stdout is not None
    slot = int(supervisor.stdout.readline())
    Repo.open("runs.db").register_worker(socket.gethostname(), slot, "cpu slot 1/1")

    def exits_first() -> None:
        os.kill(slot, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):  # reaped by its supervisor: no such pid
            while True:  # a zombie until then, which a signal still reaches
                os.kill(slot, 0)
                time.sleep(0.01)

    around_the_signal(monkeypatch, before=exits_first)
    try:
        yield slot, supervisor.pid
    finally:
        supervisor.kill()
        supervisor.wait()


def test_stop_says_it_waits_for_the_supervisor_of_slots_gone_before_their_signal(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each slot had exited before its signal, their supervisor still up: stop printed
    # nothing while it waited for it (up to --wait, 60 s by default), as if hung.
    with slot_gone_before_its_signal(monkeypatch) as (slot, supervisor):
        assert cli(capsys, "stop", "--wait", "20") == (0, (
            f"worker pid {slot} had exited; waiting up to 20 s for its --slots supervisor "
            f"pid {supervisor} to exit\nworker pid {slot} and its --slots supervisor pid "
            f"{supervisor} stopped; it held no run when read\n"
        ), "")  # fmt: skip


def test_stop_interrupted_waiting_for_the_supervisor_alone_names_no_empty_worker(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ctrl-C in that wait said "worker pid  asked to stop all the same": no one.
    import resconv_tui.commands.stop as stop

    def interrupted(*_args: object) -> list[int]:
        raise KeyboardInterrupt

    monkeypatch.setattr(stop, "still_alive", interrupted)
    with slot_gone_before_its_signal(monkeypatch) as (slot, _):
        code, _, err = cli(capsys, "stop", "--wait", "20")
    assert (code, err) == (130, (
        f"resconv-tui: not waiting any more; worker pid {slot} had exited (resconv-tui "
        "status shows how its runs ended)\n"
    ))  # fmt: skip


def test_stop_does_not_wait_on_a_stranger_given_the_slots_supervisor_s_pid(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The --slots supervisor was waited on by pid alone: once it had exited, a process
    # started meanwhile with its pid kept stop waiting to the end of --wait, and stop
    # said the supervisor "still running" and exited 1 with every process of it gone.
    supervisor = subprocess.Popen(
        [sys.executable, "-c", SUPERVISOR], stdout=subprocess.PIPE, env={
            **os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])
        }
    )  # fmt: skip
    assert supervisor.stdout is not None
    slot = int(supervisor.stdout.readline())
    Repo.open("runs.db").register_worker(socket.gethostname(), slot, "cpu slot 1/1")
    strangers: list[subprocess.Popen[bytes]] = []

    def its_pid_taken() -> None:
        supervisor.wait(10)  # its slot died of the signal; then it exits, its pid freed
        if (stranger := started_with_pid(supervisor.pid)) is not None:
            strangers.append(stranger)

    around_the_signal(monkeypatch, after=its_pid_taken)
    try:
        code, out, _ = cli(capsys, "stop", "--wait", "3")
        if not strangers:
            pytest.skip("the supervisor's pid could not be given to another process here")
        assert (code, out) == (0, (
            f"asked worker pid {slot} to stop after the current step; waiting up to 3 s "
            f"for it to exit\nworker pid {slot} and its --slots supervisor pid "
            f"{supervisor.pid} stopped; it held no run when read\n"
        ))  # fmt: skip
    finally:
        with contextlib.suppress(ProcessLookupError):  # the slot, should stop have failed
            os.kill(slot, signal.SIGKILL)
        for process in (supervisor, *strangers):
            process.kill()
            process.wait()


def test_stop_says_a_run_its_worker_left_running_on_its_way_out_and_how_to_retry_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A worker stopped while its SQLite file was locked by another process stops rather
    # than wait on, its run not given back (as one killed): stop said "run 1 still reads
    # running (its worker exited)", and not what to do about it.
    cli(capsys, "queue", "sweep.yml")
    with worker_in_final_pass() as (pid, run_id):
        repo = Repo.open("runs.db")
        worker_id = repo.get_run(run_id).worker_id or ""
        repo.heartbeat(worker_id, run_id=run_id, inputs_done=64)  # mid-training
        around_the_signal(monkeypatch, after=lambda: os.kill(pid, signal.SIGKILL))
        assert cli(capsys, "stop", "--wait", "5")[1] == (
            f"asked worker pid {pid} to stop after the current step; waiting up to 5 s for "
            f"it to exit\nworker pid {pid} stopped; run {run_id} still reads running: its "
            f"worker exited without giving it back (resconv-tui retry {run_id} queues it "
            "again once silent 10 s)\n"
        )


def test_stop_says_the_run_of_a_worker_gone_beside_one_still_at_it_left_running(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two workers: one in its final pass (still running after --wait), one that exited at
    # the signal without giving its run back. Whether a run was left running was judged
    # by "is any worker still alive", so the gone worker's run read "goes back to the
    # queue" beside the one still at it, and was never put back.
    cli(capsys, "queue", "sweep.yml")
    busy, gone = worker_in_final_pass(), worker_in_final_pass()
    with busy as (busy_pid, busy_run), gone as (gone_pid, gone_run):
        held_mid_training(gone_run)
        around_the_signal(monkeypatch, after=lambda: os.kill(gone_pid, signal.SIGKILL))
        out = cli(capsys, "stop", "--wait", "1")[1]
        assert f"worker pid {gone_pid} stopped" in out
        assert f"worker pid {busy_pid} still running after 1 s" in out
        assert f"run {gone_run} still reads running: its worker exited" in out
        assert "back to the queue" not in out
        assert f"run {busy_run} trained all its inputs: its final pass ends first" in out


def test_stop_now_with_a_wait_says_a_run_in_its_final_pass_goes_back(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # --now puts even a final pass's run back (as --no-wait --now says): after the wait,
    # a worker still alive was said to end its final pass and likely succeed.
    cli(capsys, "queue", "sweep.yml")
    with worker_in_final_pass(stopping=True) as (pid, run_id):
        assert cli(capsys, "stop", "--now", "--wait", "1")[1] == (
            f"told worker pid {pid} to exit at once; waiting up to 1 s for it to exit\n"
            f"worker pid {pid} still running after 1 s; run {run_id} goes back to the queue\n"
        )


def test_ctrl_c_while_stop_waits_says_the_workers_were_asked_all_the_same(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # "resconv-tui: interrupted" read as if the stop had been called off: the signal
    # was sent, and the worker stops all the same.
    from resconv_tui.worker_launcher import WorkerLauncher

    cli(capsys, "queue", "sweep.yml")
    with worker_in_final_pass() as (pid, _run_id):
        real_alive = WorkerLauncher.alive
        signalled: list[int] = []

        def alive(self: WorkerLauncher, asked: int) -> bool:
            if signalled:  # stop is waiting: the person presses Ctrl-C
                raise KeyboardInterrupt
            return real_alive(self, asked)

        monkeypatch.setattr(WorkerLauncher, "alive", alive)
        around_the_signal(monkeypatch, after=lambda: signalled.append(pid))
        code, out, err = cli(capsys, "stop")
        assert code == 130 and out.startswith(f"asked worker pid {pid} to stop")
        assert err == (
            f"resconv-tui: not waiting any more; worker pid {pid} asked to stop all the same "
            "(resconv-tui status shows how its runs end)\n"
        )


def test_stop_leaves_a_worker_that_exited_at_its_signal_stopped(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # An idle worker exits within milliseconds of the SIGTERM, its row "stopped": stop
    # then wrote "stopping" over it, and the row of a process gone said "stopping" until
    # marked lost (found with `stop` beside two `worker --until-empty` started at once).
    cli(capsys, "queue", "sweep.yml")
    with worker_in_final_pass() as (_pid, run_id):
        repo = Repo.open("runs.db")
        worker_id = repo.get_run(run_id).worker_id or ""

        def quick_exit() -> None:
            assert repo.put_back(run_id, worker_id)  # as the worker does on its way out
            repo.update_worker(worker_id, state="stopped")

        around_the_signal(monkeypatch, after=quick_exit)
        cli(capsys, "stop", "--no-wait")
        assert [w.state for w in repo.list_workers(include_gone=True)] == ["stopped"]


def test_stop_now_says_a_run_in_its_final_pass_goes_back_as_the_others(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # --now: the worker puts its runs back and exits at once, final pass or not.
    cli(capsys, "queue", "sweep.yml")
    with worker_in_final_pass(stopping=True) as (pid, run_id):
        assert cli(capsys, "stop", "--no-wait", "--now")[1] == (
            f"told worker pid {pid} to exit at once; run {run_id} goes back to the queue\n"
        )


def test_stop_signals_this_machine_s_live_workers_once(
    capsys: pytest.CaptureFixture[str],
) -> None:
    cli(capsys, "queue", "sweep.yml")
    # A worker busy finishing its step: the first SIGTERM does not end it.
    busy = ignoring_sigterm()
    repo = Repo.open("runs.db")
    here = socket.gethostname()
    repo.register_worker(here, busy.pid, "cpu")
    repo.register_worker("other-box", busy.pid, "cuda:0")  # not this machine's
    try:
        # It holds no run: "runs go back to the queue" misled.
        assert cli(capsys, "stop", "--no-wait")[1] == (
            f"asked worker pid {busy.pid} to stop after the current step; "
            "it held no run when read\n"
        )
        # Asked already (its row says so at once): a second stop sends nothing...
        assert cli(capsys, "stop", "--no-wait")[1] == (
            f"worker pid {busy.pid} already stopping (--now: stop at once); "
            "it held no run when read\n"
        )
        # ...unless told to: then it is the "exit at once" signal.
        assert cli(capsys, "stop", "--no-wait", "--now")[1] == (
            f"told worker pid {busy.pid} to exit at once; it held no run when read\n"
        )
        busy.kill()
        busy.wait()
        assert cli(capsys, "stop", "--no-wait")[1] == f"no live worker on {here}\n"
    finally:
        busy.kill()
        busy.wait()


def test_stop_stops_the_workers_beside_a_damaged_run_row(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Reading the runs the workers held (for the summary) refused a hand-damaged row, and
    # stop exited 2 with the worker still training.
    cli(capsys, "queue", "sweep.yml")
    busy = ignoring_sigterm()
    repo = Repo.open("runs.db")
    worker = repo.register_worker(socket.gethostname(), busy.pid, "cpu")
    assert repo.claim(worker) is not None  # run 1, which it trains
    with sqlite3.connect("runs.db") as conn:
        conn.execute("UPDATE run SET validation_loss = 'x' WHERE id = 1")
    try:
        code_, out, err = cli(capsys, "stop", "--no-wait")
        assert (code_, out) == (0, f"asked worker pid {busy.pid} to stop after the current step\n")
        assert "run 1's row is damaged (its validation_loss is 'x', not a number)" in err
        assert {w.state for w in repo.list_workers()} == {"stopping"}
    finally:
        busy.kill()
        busy.wait()


@pytest.mark.parametrize(
    ("column", "value"), [("swept_json", "null"), ("swept_json", "[1]"), ("target_json", "[1]")]
)
def test_ls_json_names_a_run_row_whose_swept_or_target_is_no_mapping(
    capsys: pytest.CaptureFixture[str], column: str, value: str
) -> None:
    # Edited by hand into JSON that is no mapping: `ls --json` and `show --json` ended in a
    # TypeError traceback (dict(None)), where a damaged row is named with its repair.
    cli(capsys, "queue", "sweep.yml")
    with sqlite3.connect("runs.db") as conn:
        conn.execute(f"UPDATE run SET {column} = ? WHERE id = 1", (value,))
    for command in (["ls", "--json"], ["show", "1", "--json"]):
        code, out, err = cli(capsys, *command)
        assert (code, out) == (2, "")
        assert f"run 1's row is damaged (its {column}: not a mapping): put its value back" in err


def test_ls_of_a_failure_without_a_message(capsys: pytest.CaptureFixture[str]) -> None:
    repo, worker, run_id = queued_and_claimed(capsys)
    repo.fail(run_id, worker, "")
    code, out, _ = cli(capsys, "ls", "--status", "failed")
    assert code == 0 and out.splitlines()[1].endswith("  error")


def test_status_lists_every_run_of_a_stacked_worker(
    capsys: pytest.CaptureFixture[str], in_tmp: Path
) -> None:
    (in_tmp / "seeds.yml").write_text("name: seeds\nlayers: 2\nmax_inputs: 512\nseeds: 3\n")
    cli(capsys, "queue", "seeds.yml")
    repo = Repo.open("runs.db")
    worker = repo.register_worker("gpu-box", 4242, "cuda:0")
    lead = repo.claim(worker)
    assert lead is not None and len(repo.claim_like(worker, lead, 2)) == 2
    out = cli(capsys, "status")[1]
    assert "cuda:0  runs #1, #2, #3  0 done" in out
    # How a worker claims, where not the default, as it recorded it at its start.
    repo.register_worker("gpu-box", 4243, "cuda:1", stack=3, largest_first=True, max_runs=1)
    out = cli(capsys, "status")[1]
    assert "cuda:1 (stack 3, largest first, max 1 run)  idle  0 done" in out


def test_failures_by_cause_in_status_and_retry_by_cause(
    capsys: pytest.CaptureFixture[str],
) -> None:
    cli(capsys, "queue", "sweep.yml")
    repo = Repo.open("runs.db")
    worker = repo.register_worker("h", 1, "cpu")
    errors = ["out of memory at batch 64: try a smaller batch_size", "worker lost",
              "loss became NaN at step 12", "out of memory for a stack of 2 runs"]  # fmt: skip
    for error in errors:
        run = repo.claim(worker)
        assert run is not None and repo.fail(run.id, worker, error)
    code, out, _ = cli(capsys, "status")
    assert code == 0
    lines = out.splitlines()
    causes = lines[lines.index("failed, by cause:") + 1 : lines.index("recently failed:")]
    assert [line.split(":")[0].strip() for line in causes] == [
        "2 out of memory", "1 loss NaN/inf", "1 worker lost"
    ]  # fmt: skip
    assert causes[2].endswith("so retry it (resconv-tui retry --cause worker-lost)")
    assert "  #3 smoke/ch-8_lr-0.001 [loss NaN/inf]: loss became NaN at step 12" in lines
    # A database given with --db is named in every command suggested: copied without it,
    # `resconv-tui worker` made and trained an empty ./runs.db.
    out = cli(capsys, "status", "--db", "runs.db")[1]
    assert "(resconv-tui retry --cause worker-lost --db runs.db)" in out
    assert "workers:" in out
    assert (
        "no worker is running: start one with `resconv-tui worker --db 'my runs.db'`"
        in (cli(capsys, "queue", "sweep.yml", "--db", "my runs.db")[1])
    )

    # Given twice, --cause retries either way (it kept the last one only).
    retried = cli(capsys, "retry", "--cause", "oom", "--cause", "worker-lost")[1]
    assert retried == "queued again: 1, 4, 2\n"
    assert [r.status for r in repo.list_runs()] == [
        RunStatus.QUEUED, RunStatus.QUEUED, RunStatus.FAILED, RunStatus.QUEUED
    ]  # fmt: skip
    # Run 3 diverged, and most likely diverges again: said, as the dashboard's r asks.
    assert cli(capsys, "retry", "3", "--cause", "worker-lost")[1].splitlines() == [
        "queued again: 3",
        f"note: run 3 had diverged (loss NaN/inf): {RETRY_ADVICE[FailureCause.DIVERGED]}",
    ]
    code, out, _ = cli(capsys, "retry", "--cause", "nan")
    assert (code, out) == (0, "nothing to retry: no run failed with cause nan (loss NaN/inf)\n")
    code, out, _ = cli(capsys, "retry", "--cause", "error")  # not "error (error)"
    assert (code, out) == (0, "nothing to retry: no run failed with cause error\n")
    out = cli(capsys, "retry", "--cause", "nan", "--cause", "error")[1]
    assert out == "nothing to retry: no run failed with cause nan (loss NaN/inf) or error\n"
    code, _, err = cli(capsys, "retry", "--db", "missing.db")  # said before the database
    assert code == 2
    one_error_line(err, "usage: retry needs run ids, or --cause oom|nan|worker-lost|error")


def test_retry_cause_words_are_the_queue_s() -> None:
    from core.queue.failures import CAUSE_OPTIONS
    from resconv_tui.commands.manage import CAUSE_WORDS

    assert tuple(CAUSE_OPTIONS.values()) == CAUSE_WORDS


# ----- error paths: one line on stderr, exit status 2, nothing changed -----------------


@pytest.mark.parametrize(
    "argv",
    [
        ["status"],
        ["results"],
        ["cancel", "1"],
        ["retry", "1"],
        ["rm", "1"],
        ["next", "1"],
        ["ls"],
        ["stop"],
        ["priority", "3", "1"],
    ],
)
def test_missing_database_is_not_created(
    capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    code, out, err = cli(capsys, *argv, "--db", "missing.db")
    assert code == 2 and out == ""
    one_error_line(err, "database error: no database at missing.db")
    assert not Path("missing.db").exists()


def test_a_refusal_of_many_runs_names_a_few(capsys: pytest.CaptureFixture[str]) -> None:
    # `cancel $(seq 1 40000)` said "no run with id 4, 5, 6, ..." in one line of 270 KB,
    # and `retry` of many queued runs named each.
    Path("seeds.yml").write_text(SWEEP + "seeds: 3\n")
    assert cli(capsys, "queue", "seeds.yml")[0] == 0  # runs 1 to 12, queued
    ids = [str(i) for i in range(1, 41)]
    code, out, err = cli(capsys, "cancel", *ids)
    assert code == 2 and out == ""
    one_error_line(err, "no run with id 13, 14, 15, 16, 17, 18, 19, 20, 21, 22 and 18 more "
                        "in runs.db; nothing changed")  # fmt: skip
    code, _, err = cli(capsys, "compare", *ids)
    one_error_line(err, "no runs 13, 14, 15, 16, 17, 18, 19, 20, 21, 22 and 18 more in runs.db")
    code, _, err = cli(capsys, "retry", *ids[:12])
    assert code == 2
    one_error_line(err, "run 9 is queued, run 10 is queued and 2 more: only failed or "
                        "cancelled runs can be retried; nothing changed")  # fmt: skip
    assert {run.status for run in Repo.open("runs.db").list_runs()} == {RunStatus.QUEUED}


def test_stop_without_a_database_asks_for_the_workers_one(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, in_tmp: Path
) -> None:
    # "no database at runs.db (queue runs first: ...)": stop has nothing to queue; the
    # workers it should stop train from another database (a PostgreSQL --db). The default
    # file is named by its absolute path, as the other commands name it ("runs.db" did not
    # say which folder was read).
    code, _, err = cli(capsys, "stop")
    assert code == 2
    one_error_line(err, f"no database at {in_tmp / 'runs.db'} (the default, as neither --db nor "
                        "RESCONV_DB names one): stop finds this machine's workers in the "
                        "database they train from: give that one's --db")  # fmt: skip
    assert "(given by --db)" in cli(capsys, "stop", "--db", "typo.db")[2]
    monkeypatch.setenv("RESCONV_DB", "elsewhere.db")
    assert "elsewhere.db (named by RESCONV_DB)" in cli(capsys, "stop")[2]


@pytest.mark.parametrize("argv", [["status"], ["ls"], ["results"], ["show", "1"], ["cancel", "1"]])
def test_a_command_in_a_folder_without_the_default_database_says_where_it_looked(
    capsys: pytest.CaptureFixture[str], in_tmp: Path, argv: list[str]
) -> None:
    # Back over SSH in another folder, `status` said "no database at runs.db (queue runs
    # first: ...)": the runs were queued elsewhere, and nothing said which folder it read.
    code, _, err = cli(capsys, *argv)
    assert code == 2
    one_error_line(err, f"no database at {in_tmp / 'runs.db'} (the default, as neither --db "
                        "nor RESCONV_DB names one): give the --db your runs are in, or queue "
                        "runs first: resconv-tui queue FILE.yml")  # fmt: skip
    assert not (in_tmp / "runs.db").exists()
    # Named by --db, a missing file is a typo to correct or a database to make: as before.
    one_error_line(cli(capsys, *argv, "--db", "typo.db")[2],
                   "no database at typo.db (queue runs first")  # fmt: skip


@pytest.mark.parametrize(
    "argv", [["status"], ["ls"], ["results"], ["show", "1"], ["cancel", "1"], ["stop"]]
)
def test_a_database_in_a_folder_that_does_not_exist_is_not_said_to_need_queueing(
    capsys: pytest.CaptureFixture[str], in_tmp: Path, argv: list[str]
) -> None:
    # `status --db runz/runs.db` (a typo in the folder) said "no database at ... (queue
    # runs first: resconv-tui queue FILE.yml --db runz/runs.db)", and that queue failed in
    # turn: "the folder runz does not exist".
    code, out, err = cli(capsys, *argv, "--db", "runz/runs.db")
    assert (code, out) == (2, "")
    folder = in_tmp / "runz"
    one_error_line(err, f"database error: no database at runz/runs.db: the folder {folder} "
                        "does not exist (a typo in --db or RESCONV_DB?)")  # fmt: skip
    assert "queue runs first" not in err
    assert not (in_tmp / "runz").exists()


def test_stop_says_an_empty_file_is_no_database_as_the_other_commands_do(
    capsys: pytest.CaptureFixture[str], in_tmp: Path
) -> None:
    # `touch empty.db; stop --db empty.db` said "no database at empty.db", where ls says
    # "no resconv-tui database in empty.db": the file is there, holding none.
    Path("empty.db").touch()
    code, _, err = cli(capsys, "stop", "--db", "empty.db")
    assert code == 2
    one_error_line(err, "no resconv-tui database in empty.db (given by --db): stop finds")
    assert "no resconv-tui database in empty.db (" in cli(capsys, "ls", "--db", "empty.db")[2]
    assert Path("empty.db").stat().st_size == 0


def test_stop_names_a_database_folder_that_is_not_there_as_the_other_commands_do(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, in_tmp: Path
) -> None:
    # `stop --db runz/runs.db` said "no database at runz/runs.db (given by --db): ... give
    # that one's --db", not that the folder runz is not there, as `ls` with it says.
    Path("notes.txt").write_text("x")
    for where in ("runz/runs.db", "notes.txt/runs.db"):
        monkeypatch.setenv("RESCONV_DB", where)
        stop, ls = cli(capsys, "stop"), cli(capsys, "ls")
        assert stop[:2] == (2, "") and stop[2] == ls[2]
        assert "a typo in --db or RESCONV_DB?" in stop[2]
    assert sorted(p.name for p in in_tmp.iterdir()) == ["notes.txt", "sweep.yml"]


@pytest.mark.parametrize("argv", [["status"], ["ls"], ["show", "1"], ["queue", "sweep.yml"]])
def test_a_database_in_a_folder_that_is_a_file_says_so(
    capsys: pytest.CaptureFixture[str], in_tmp: Path, argv: list[str]
) -> None:
    # `--db notes.txt/runs.db`: status said "queue runs first", and that queue said "the
    # folder notes.txt does not exist", where it is a file.
    (in_tmp / "notes.txt").write_text("mine")
    code, out, err = cli(capsys, *argv, "--db", "notes.txt/runs.db")
    assert (code, out) == (2, "")
    said = "cannot open database" if argv[0] == "queue" else "no database at"
    one_error_line(err, f"database error: {said} notes.txt/runs.db: {in_tmp / 'notes.txt'} "
                        "is a file, not a folder")  # fmt: skip
    assert "queue runs first" not in err
    assert (in_tmp / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("argv", [["status"], ["queue", "sweep.yml"], ["cancel", "1"]])
def test_corrupt_database(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    Path("runs.db").write_bytes(b"\x00garbage" * 500)
    code, _, err = cli(capsys, *argv)
    assert code == 2
    one_error_line(err, "runs.db is not a SQLite database")


@pytest.mark.parametrize("argv", [["status"], ["queue", "sweep.yml"], ["worker", "--until-empty"]])
@pytest.mark.parametrize("held", [b"x", b"SQLite format", b"notes\n" * 16])
def test_a_file_shorter_than_sqlite_s_header_is_refused_not_written_over(
    capsys: pytest.CaptureFixture[str], argv: list[str], held: bytes
) -> None:
    # SQLite reads a file under its 100-byte header as an empty database: `queue` wrote
    # its tables over a 1-byte file (2 bytes and more were refused: "file is not a database").
    Path("runs.db").write_bytes(held)
    code, _, err = cli(capsys, *argv)
    assert code == 2
    one_error_line(err, "runs.db is not a SQLite database (wrong file, or corrupt)")
    assert Path("runs.db").read_bytes() == held
    assert sorted(p.name for p in Path().glob("runs.db*")) == ["runs.db"]


def test_opening_a_database_again_keeps_this_process_s_sqlite_locks(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Closing any descriptor of a file drops every POSIX lock the process holds on it:
    # the header check (e380384) opened runs.db to read 16 bytes, and each later open
    # in a process already holding a connection (the dashboard's screens, a test's
    # repo beside a command) dropped that connection's WAL read lock. A worker's writes
    # then vanished from the file (the kill -9 end-to-end test: its run never ran).
    cli(capsys, "queue", "sweep.yml")
    with sqlite_read_lock_held() as kept:
        assert cli(capsys, "status")[0] == 0
    assert kept(), "the status command's open dropped this process's SQLite read lock"


@pytest.mark.parametrize("given", ["runs.db", "runs.db-shm", "link.db"])
def test_the_database_given_as_a_sweep_file_is_refused_unopened(
    capsys: pytest.CaptureFixture[str], given: str
) -> None:
    # The dashboard's f3 (and the form's load) read a sweep file in a process holding
    # the queue's connections: reading runs.db, or its -shm (WAL's locks), then closing
    # it dropped their locks as the header check did. A link to it is the same file.
    cli(capsys, "queue", "sweep.yml")
    Path("link.db").symlink_to("runs.db")
    with sqlite_read_lock_held(given.replace("link.db", "runs.db")) as kept:
        code, _, err = cli(capsys, "queue", given)
    assert kept(), f"reading {given} as a sweep file dropped this process's SQLite read lock"
    assert code == 2
    one_error_line(
        err, f"{given}: the queue's database ({Path('runs.db').absolute()}), not a sweep file"
    )


@contextlib.contextmanager
def sqlite_read_lock_held(file: str = "runs.db") -> Iterator[Callable[[], bool]]:
    """A WAL read of runs.db held in this process around the block; yields whether its
    lock on ``file`` (runs.db, or runs.db-shm) was still held at the block's end."""
    holder = sqlite3.connect("runs.db")
    holder.execute("BEGIN")
    holder.execute("SELECT count(*) FROM run").fetchall()  # a WAL read lock, in this process
    kept: list[bool] = []
    try:
        yield lambda: kept[0]
        # A reader holds SQLite's SHARED lock on the database file (bytes from 2**30 + 2,
        # 510 of them), and on -shm's byte 128 (its "dead man switch", held while the
        # connection maps -shm); F_GETLK reports another process's locks only: ask a child.
        start, length = (128, 1) if file.endswith("-shm") else (2**30 + 2, 510)
        probe = (
            "import fcntl, os, struct, sys\n"
            f"fd = os.open({file!r}, os.O_RDWR)\n"
            f"lock = struct.pack('hhqqi', fcntl.F_WRLCK, 0, {start}, {length}, 0)\n"
            "got = struct.unpack('hhqqi', fcntl.fcntl(fd, fcntl.F_GETLK, lock))\n"
            "sys.exit(0 if got[0] != fcntl.F_UNLCK else 1)\n"
        )
        kept.append(subprocess.run([sys.executable, "-c", probe], check=False).returncode == 0)
    finally:
        holder.rollback()
        holder.close()


def test_locked_database(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import core.queue.db as db

    cli(capsys, "queue", "sweep.yml")
    monkeypatch.setattr(db, "DEFAULT_BUSY_TIMEOUT_S", 0.2)
    holder = sqlite3.connect("runs.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        code, _, err = cli(capsys, "cancel", "1")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert code == 2
    one_error_line(err, "runs.db is locked by another process")


def test_newer_schema(capsys: pytest.CaptureFixture[str]) -> None:
    cli(capsys, "queue", "sweep.yml")
    with sqlite3.connect("runs.db") as conn:
        conn.execute("UPDATE meta SET value = '7' WHERE key = 'schema_version'")
    code, _, err = cli(capsys, "status")
    assert code == 2
    one_error_line(err, "schema version 7")


@pytest.mark.parametrize(
    ("argv", "text"),
    [
        (["cancel", "9"], "unknown run: no run with id 9 in runs.db; nothing changed"),
        (["retry", "1", "9", "10"], "no run with id 9, 10 in runs.db; nothing changed"),
        (["rm", "77"], "no run with id 77"),
        (["next", "5"], "no run with id 5"),
        (["priority", "2", "5"], "no run with id 5"),
        (["retry", "1"], "not allowed: run 1 is queued: only failed or cancelled runs"),
        (  # it said "only queued or running runs", leaving out what they may do
            ["cancel", "1"],
            "run 1 has succeeded: only queued or running runs can be cancelled; nothing changed",
        ),
        (["results", "--sort", "nope"], "invalid argument: 'nope' is not a column"),
        (["results", "--experiment", "other"], "no experiment 'other' in runs.db (smoke)"),
        (["ls", "--experiment", "other"], "no experiment 'other' in runs.db (smoke)"),
        (["queue", "missing.yml"], "missing.yml: cannot read file"),
    ],
)
def test_one_line_errors(capsys: pytest.CaptureFixture[str], argv: list[str], text: str) -> None:
    repo, worker, run_id = queued_and_claimed(capsys)
    repo.finish(run_id, worker, FinalFigures(validation_loss=0.1))
    code, _, err = cli(capsys, *argv)
    assert code == 2
    one_error_line(err, text.replace("run 1 is queued", "run 1 has succeeded"))


def test_nothing_changes_when_one_id_is_wrong(capsys: pytest.CaptureFixture[str]) -> None:
    cli(capsys, "queue", "sweep.yml")
    assert cli(capsys, "cancel", "1", "2", "99")[0] == 2
    assert Repo.open("runs.db").counts_by_status()[RunStatus.QUEUED] == 4


def test_bad_sweep_file_queues_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    Path("bad.yml").write_text("name: x\nmatrix:\n  lr: [0.1, -1]\n")
    code, _, err = cli(capsys, "queue", "bad.yml")
    assert code == 2 and "lr" in err and len(err.strip().splitlines()) == 1
    assert not Path("runs.db").exists() or Repo.open("runs.db").list_runs() == []


@pytest.mark.parametrize("command", [("queue",), ("queue", "--dry-run"), ("train", "--run", "1")])
def test_a_number_for_an_activation_names_the_activations(
    capsys: pytest.CaptureFixture[str], command: tuple[str, ...]
) -> None:
    # `act: 3` said "expected a string, got 3", not what the key takes (`act: foo` did).
    Path("bad.yml").write_text("name: x\nlayers: 2\nmatrix:\n  act: [relu, 3]\n")
    code, out, err = cli(capsys, command[0], "bad.yml", *command[1:])
    assert code == 2 and out == ""
    one_error_line(err, "bad.yml: run 'act-3': key 'activation': unknown activation; known: "
                        "Hardshrink, Hardsigmoid, ")  # fmt: skip
    assert err.rstrip().endswith(", Tanhshrink (got 3)")
    assert not Path("runs.db").exists()


def test_bad_run_ids_are_argparse_errors(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["cancel", "abc"])
    assert exit_info.value.code == 2
    assert "'abc' is not a run id" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["priority", "abc", "1"])
    assert exit_info.value.code == 2
    assert "'abc' is not a priority (a whole number from -1,000,000" in capsys.readouterr().err
    # Python's int() reads "1_0" as 10 and "٣" (Arabic-Indic 3) as 3: `show ٣` showed run 3.
    for odd in ("1_0", "٣"):
        with pytest.raises(SystemExit):
            main(["show", odd])
        assert f"'{odd}' is not a run id (a whole number)" in capsys.readouterr().err
        with pytest.raises(SystemExit):
            main(["priority", odd, "1"])
        assert f"'{odd}' is not a priority" in capsys.readouterr().err
    for argv in (
        ["priority", "99999999999999999999", "1"],
        ["queue", "x.yml", "--priority", "3e9"],
    ):
        with pytest.raises(SystemExit):
            main(argv)
        assert "is not a priority" in capsys.readouterr().err
    # Beyond PostgreSQL's INTEGER ids (and SQLite's 2**63): an OverflowError traceback.
    for command in (["cancel"], ["rm"], ["next"], ["retry"], ["priority", "1"]):
        for big in ("2147483648", "9223372036854775808", "99999999999999999999999"):
            with pytest.raises(SystemExit) as exit_info:
                main([*command, "1", big])
            assert exit_info.value.code == 2
            assert f"'{big}' is not a run id (ids are 1 to 2,147,483,647)" in (
                capsys.readouterr().err
            )


@pytest.mark.parametrize(
    "argv",
    [["priority", "-inf", "1"], ["priority", "-1e3", "1"], ["priority", "-1_0", "1"]],
)  # fmt: skip
def test_a_negative_number_argparse_takes_for_an_option_is_said_as_a_number(
    capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    # argparse reads -5 as a value but -inf as an unknown option: `priority -inf 1` said
    # "the following arguments are required: ID", the 1 taken as the priority.
    odd = next(arg for arg in argv[1:] if arg.startswith("-") and arg != "--priority")
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"resconv-tui {argv[0]}: error: '{odd}' is not a whole number (e.g. -5): a value "
        "starting with '-' must be one, or it reads as an option"
    )
    assert not Path("runs.db").exists()


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["queue", "sweep.yml", "--max-inputs", "-1e3"],
         "argument --max-inputs: '-1e3' is not a number of inputs (a whole number from 1 to "
         "1,000,000,000)"),
        (["queue", "sweep.yml", "--priority", "-nan"],
         "argument --priority: '-nan' is not a priority (a whole number from -1,000,000 to "
         "1,000,000, e.g. 5 or -1)"),
        (["worker", "--max-runs", "-1E3"],
         "argument --max-runs: '-1E3' is not a number of runs (a whole number from 1 to "
         "1,000,000)"),
        (["worker", "--stack", "-inf"],
         "argument --stack: '-inf' is not a number of runs to stack (a whole number from 1 "
         "to 64)"),
        # A value its option takes, which argparse reads as an option all the same.
        (["worker", "--checkpoints", "-1e3"],
         "argument --checkpoints: '-1e3' reads as an option: write --checkpoints=-1e3"),
        # An option of any text (no type): it was said "'-inf' is not a whole number".
        (["ls", "--experiment", "-inf"],
         "argument --experiment: '-inf' reads as an option: write --experiment=-inf"),
        # An option of choices: told to write --order=-inf, which it then refused.
        (["worker", "--order", "-inf"],
         "argument --order: invalid choice: '-inf' (choose from 'queue', 'largest-first')"),
        # An option abbreviated, as argparse takes it: it was said "not a whole number".
        (["queue", "sweep.yml", "--max-in", "-1e3"],
         "argument --max-inputs: '-1e3' is not a number of inputs (a whole number from 1 to "
         "1,000,000,000)"),
    ],
)  # fmt: skip
def test_a_negative_number_after_an_option_gets_that_options_refusal(
    capsys: pytest.CaptureFixture[str], argv: list[str], says: str
) -> None:
    # `queue --max-inputs -1e3` said "'-1e3' is not a whole number (e.g. -5): ...", naming
    # no option, where `--max-inputs=-1e3` (and `-3`) got the option's own refusal.
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert (
        capsys.readouterr().err.strip().splitlines()[-1] == f"resconv-tui {argv[0]}: error: {says}"
    )
    spelled = [*argv[:-2], f"{argv[-2]}={argv[-1]}"]
    if "reads as an option" not in says:  # the same words as the option's own refusal
        with pytest.raises(SystemExit):
            main(spelled)
        assert capsys.readouterr().err.strip().splitlines()[-1].endswith(says)
    assert not Path("runs.db").exists()


def test_the_worker_module_names_the_option_of_a_negative_number() -> None:
    # `python -m core.worker --max-runs -1e3` said "argument --max-runs: expected one
    # argument", naming no value.
    repo_root = str(Path(__file__).resolve().parents[3])
    done = subprocess.run(
        [sys.executable, "-m", "core.worker", "--max-runs", "-1e3"], capture_output=True,
        text=True, env={**os.environ, "PYTHONPATH": repo_root}, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        "python -m core.worker: error: argument --max-runs: '-1e3' is not a number of runs "
        "(a whole number from 1 to 1,000,000)"
    )


def test_a_negative_priority_is_taken_and_after_double_dash_is_checked(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli(capsys, "queue", "sweep.yml", "--priority", "-3")[0] == 0
    code, out, _ = cli(capsys, "priority", "-5", "1")
    assert code == 0 and out.strip() == "run 1: priority -5"
    with pytest.raises(SystemExit):
        main(["priority", "--", "-inf", "1"])  # past `--` the priority's own refusal
    assert "argument N: '-inf' is not a priority (a whole number" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "said"),
    [(["worker", "--slots"], "is not a number of slots (a whole number from 1 to 16)"),
     (["worker", "--stack"], "is not a number of runs to stack (a whole number from 1 to 64)"),
     (["worker", "--max-runs"], "is not a number of runs (a whole number from 1 to 1,000,000)"),
     (["queue", "sweep.yml", "--max-inputs"], "is not a number of inputs (a whole number"),
     (["queue", "sweep.yml", "--priority"], "is not a priority (a whole number"),
     (["stop", "--wait"], "is not a number of seconds (a whole number from 0 to 3,600)"),
     (["train", "sweep.yml", "--run"], "is not a run number (a whole number from 1)")],
)  # fmt: skip
def test_every_whole_number_option_reads_ascii_digits_alone(
    capsys: pytest.CaptureFixture[str], argv: list[str], said: str
) -> None:
    # int() reads "1_0" as 10 and a full-width "２" as 2: `worker --slots 1_0` started
    # 10 slot processes, where `--priority 1_0` was refused. Parsed only: a worker the
    # parser let through would start.
    for odd in ("1_0", "\uff12", "\u0663"):
        with pytest.raises(SystemExit) as exit_info:
            build_parser().parse_args([*argv, odd])
        assert exit_info.value.code == 2
        assert f"argument {argv[-1]}: '{odd}' {said}" in capsys.readouterr().err
    # What a terminal would act on is escaped, and a long value cut: the refusal echoed
    # a raw ESC (the screen cleared) and 5,000 digits whole.
    for hostile in ("a\x1b[2Jb", "9" * 5000 + "x"):
        with pytest.raises(SystemExit):
            build_parser().parse_args([*argv, hostile])
        err = capsys.readouterr().err
        assert "\x1b" not in err and said in err and len(err) < 1000, err[:300]
    with pytest.raises(SystemExit):
        main([*argv[:-1], "-inf\x1b[2J" if argv[-1] != "--max-inputs" else "-1e3\x1b"])
    assert "\x1b" not in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [["cancel", "a\x1b[2Jb"], ["a\x1b[2Jb"], ["ls", "-\x1b[2Jb"], ["queue", "a\x1b[2Jb.yml"],
     ["queue", "\u202eb.yml"], ["show", "\u2028x"]],
)  # fmt: skip
def test_a_refusal_writes_what_a_terminal_acts_on_as_escapes(
    capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    # A refusal echoed the argument raw: `cancel $'\e[2J'` cleared the screen it was said on.
    try:
        code = main(argv)
    except SystemExit as exited:
        code = int(exited.code or 0)
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(("usage:", "resconv-tui")), err
    assert not {"\x1b", "\u202e", "\u2028"} & set(err), err
    assert "\\x1b" in err or "\\u202e" in err or "\\u2028" in err, err


@pytest.mark.parametrize(
    ("option", "given", "said"),
    [("--slots", "0", "is not a number of slots (a whole number from 1 to 16)"),
     ("--slots", "17", "is not a number of slots (a whole number from 1 to 16)"),
     ("--stack", "65", "is not a number of runs to stack (a whole number from 1 to 64)"),
     ("--stack", "-1", "is not a number of runs to stack (a whole number from 1 to 64)"),
     ("--max-runs", "0", "is not a number of runs (a whole number from 1 to 1,000,000)")],
)  # fmt: skip
def test_a_worker_count_out_of_range_is_refused_as_parsed_as_1_0_is(
    capsys: pytest.CaptureFixture[str], option: str, given: str, said: str
) -> None:
    # `worker --slots 1_0` was refused by the parser, naming the range, and `--slots 0`
    # later, as "--slots must be at least 1 (got 0)": two shapes for one option.
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["worker", option, given])
    assert exit_info.value.code == 2
    assert f"argument {option}: '{given}' {said}" in capsys.readouterr().err


@pytest.mark.parametrize("given", ["99999999999999999999999", "1e20", "1000000001", "2e9"])
def test_max_inputs_beyond_the_limit_is_refused_before_anything(
    capsys: pytest.CaptureFixture[str], given: str
) -> None:
    for dry_run in ([], ["--dry-run"]):
        with pytest.raises(SystemExit) as exit_info:
            main(["queue", "sweep.yml", "--max-inputs", given, *dry_run])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        expected = f"'{given}' is not a number of inputs (a whole number from 1 to 1,000,000,000)"
        assert f"--max-inputs: {expected}" in err
    assert not Path("runs.db").exists()


def test_a_seed_beyond_the_limit_queues_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    Path("big.yml").write_text("name: big\nlayers: 2\nseed: 99999999999999999999999\n")
    for dry_run in ([], ["--dry-run"]):
        code, _, err = cli(capsys, "queue", "big.yml", *dry_run)
        assert code == 2
        one_error_line(err, "big.yml: key 'seed': must be 0 to 2,147,483,647")
    assert not Path("runs.db").exists()


def test_results_by_cell_over_seeds(capsys: pytest.CaptureFixture[str]) -> None:
    Path("seeds.yml").write_text("name: seeds\nlayers: 2\nmatrix:\n  ch: [4, 8]\nseeds: 2\n")
    cli(capsys, "queue", "seeds.yml")
    repo = Repo.open("runs.db")
    worker = repo.register_worker("h", 1, "cpu")
    for loss in (0.05, 0.07, 0.02):  # ch 4 seeds 0 and 1, ch 8 seed 0; ch 8 seed 1 still queued
        run = repo.claim(worker)
        assert run is not None
        repo.finish(run.id, worker, FinalFigures(validation_loss=loss, train_seconds=60.0))
    code, out, _ = cli(capsys, "results", "--experiment", "seeds", "--by-cell", "--format", "csv")
    assert code == 0
    rows = [line.split(",") for line in out.splitlines()]
    # Seeds as two numbers, as JSON gives them: a spreadsheet read "2/2" as a date.
    assert rows[0][:5] == ["ch", "seeds done", "seeds total", "validation loss", "± std"]
    assert [r[:3] for r in rows[1:]] == [["8", "1", "2"], ["4", "2", "2"]]
    assert float(rows[2][3]) == pytest.approx(0.06)
    assert float(rows[2][4]) == pytest.approx(0.0141421, rel=1e-5)
    assert rows[1][4] == ""  # one seed: no spread
    code, out, _ = cli(capsys, "results", "--by-cell", "--format", "csv", "--columns", "ch",
                       "seeds queued", "--sort", "-seeds done")  # fmt: skip
    assert out.splitlines() == ["ch,seeds done,seeds total", "4,2,2", "8,1,2"]
    code, out, _ = cli(capsys, "results", "--experiment", "seeds", "--by-cell")
    assert "| 2/2 " in out  # markdown keeps the logbook's way


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert re.fullmatch(r"resconv-tui \d+\.\d+\.\d+\n", capsys.readouterr().out)


@pytest.mark.parametrize("argv", [["ls", "--db", ""], ["--db", " ", "status"]])
def test_an_empty_db_is_refused_not_read_as_runs_db(
    capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    # `--db "$DB"` with DB unset quietly used ./runs.db.
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert "argument --db: empty: give a database URL" in capsys.readouterr().err


def test_results_before_any_run_succeeds_checks_names_and_gives_the_csv_header(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A script's misspelt --sort exited 0 until the first run finished, and a CSV of no
    # runs had no header to read the columns from.
    cli(capsys, "queue", "sweep.yml")
    code, out, err = cli(capsys, "results", "--sort", "nope")
    assert code == 2 and out == ""
    one_error_line(err, "invalid argument: 'nope' is not a column")
    code, out, err = cli(capsys, "results", "--format", "csv", "--sort", "-lr")
    assert code == 0 and err == "no succeeded runs yet\n"
    assert out == "run,ch,lr,validation loss,model params,train time (minutes)\n"
    code, out, _ = cli(capsys, "results", "--by-cell", "--format", "csv", "--columns", "ch", "loss")
    assert (code, out) == (0, "ch,validation loss\n")
    assert cli(capsys, "results", "--format", "json")[:2] == (0, "[]\n")


def test_an_extra_argument_gets_the_subcommands_usage(capsys: pytest.CaptureFixture[str]) -> None:
    # `ls extra` printed the top-level usage, which does not show what ls takes.
    with pytest.raises(SystemExit) as stopped:
        main(["ls", "extra"])
    err = capsys.readouterr().err
    assert stopped.value.code == 2
    assert err.startswith("usage: resconv-tui ls ")
    assert err.splitlines()[-1] == "resconv-tui ls: error: unrecognized arguments: extra"
    with pytest.raises(SystemExit):  # before the subcommand: the top level's
        main(["--bogus", "ls"])
    assert capsys.readouterr().err.splitlines()[-1] == (
        "resconv-tui: error: unrecognized arguments: --bogus"
    )


def test_results_markdown_escapes_an_experiment_s_name(capsys: pytest.CaptureFixture[str]) -> None:
    # Two experiments show the experiment column: the | of this name split its row.
    Path("odd.yml").write_text("name: '../odd/na|me *x* `y` ü'\nlayers: 2\nmax_inputs: 512\n")
    cli(capsys, "queue", "odd.yml")
    cli(capsys, "queue", "sweep.yml")
    repo = Repo.open("runs.db")
    worker = repo.register_worker("h", 1, "cpu")
    for loss in (0.05, 0.04):
        run = repo.claim(worker)
        assert run is not None
        repo.finish(run.id, worker, FinalFigures(validation_loss=loss, train_seconds=90.0))
    code, out, _ = cli(capsys, "results", "--format", "markdown")
    lines = out.splitlines()
    assert code == 0 and "| ../odd/na\\|me \\*x\\* \\`y\\` ü |" in out
    assert {len(re.split(r"(?<!\\)\|", line)) for line in lines} == {len(lines[0].split("|"))}


def test_ls_lists_queued_runs_as_largest_first_workers_claim_them(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # `o` and ls listed queued runs oldest first while the only worker claimed the most
    # work first (it trained ch-8 before the older ch-4 runs).
    cli(capsys, "queue", "sweep.yml")
    repo = Repo.open("runs.db")

    def listed() -> list[str]:
        return [line.split()[2].split("/")[1] for line in cli(capsys, "ls")[1].splitlines()[1:]]

    assert listed() == ["ch-4_lr-0.001", "ch-4_lr-0.003", "ch-8_lr-0.001", "ch-8_lr-0.003"]
    largest = repo.register_worker("h", 1, "cpu", largest_first=True)
    assert listed() == ["ch-8_lr-0.001", "ch-8_lr-0.003", "ch-4_lr-0.001", "ch-4_lr-0.003"]
    claimed = repo.claim(largest, largest_first=True)
    assert claimed is not None and claimed.name == "ch-8_lr-0.001"  # as listed
    repo.requeue(claimed.id, largest)
    repo.register_worker("h", 2, "cpu")  # one claiming in queue order too: the plain order
    assert listed()[0] == "ch-4_lr-0.001"


def test_ls_says_a_run_past_its_last_step_is_validating(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # "running 100%" with no note for the length of its final validation pass.
    repo, worker, run_id = queued_and_claimed(capsys)
    repo.heartbeat(worker, run_id=run_id, inputs_done=repo.get_run(run_id).total_inputs)
    line = next(x for x in cli(capsys, "ls")[1].splitlines() if x.split()[0] == str(run_id))
    assert line.endswith("validating: its final pass, samples and checkpoints")


@pytest.mark.parametrize(
    ("theirs", "libpq_environ", "same"),
    [
        # One server, however the worker's URL names it.
        ("postgresql://u@127.0.0.1/runs", {}, True),
        ("postgresql+psycopg://u@LocalHost:5432/runs", {}, True),
        ("postgresql://u@[::1]/runs", {}, True),
        ("postgresql://u@localhost/runs", {"PGPORT": "5432"}, True),
        ("postgresql://localhost/runs", {"PGUSER": "u"}, True),
        ("postgresql://u@localhost", {"PGDATABASE": "runs"}, True),
        # Another server, database or role.
        ("postgresql://u@localhost:5433/runs", {}, False),
        ("postgresql://u@localhost/runs", {"PGPORT": "5433"}, False),
        ("postgresql://u@db.example/runs", {}, False),
        ("postgresql://u@localhost/other", {}, False),
        ("postgresql://v@localhost/runs", {}, False),
        # A socket folder is no host name: a machine may run a server on each.
        ("postgresql://u@/runs?host=/run/postgresql", {}, False),
        ("postgresql://u@/runs", {"PGHOST": "/run/postgresql"}, False),
        # Several hosts, libpq's to choose from: not known to be this one.
        ("postgresql://u@/runs?host=localhost&host=db.example", {}, False),
    ],
)
def test_stop_knows_a_postgresql_server_however_a_worker_s_url_names_it(
    monkeypatch: pytest.MonkeyPatch, theirs: str, libpq_environ: dict[str, str], same: bool
) -> None:
    # A worker started with localhost where stop was given 127.0.0.1, or the port 5432
    # written out, was not found as one of stop's database: stop, run while it started,
    # left it to train. What libpq reads from the worker's environment counts too.
    from core.processes import LIBPQ_DEFAULTS, WorkerProcess
    from resconv_tui.commands.stop import same_database

    for name in LIBPQ_DEFAULTS:
        monkeypatch.delenv(name, raising=False)
    process = WorkerProcess(1, theirs, Path.cwd(), False, libpq_environ)
    assert same_database("postgresql://u:secret@localhost/runs", process) == same


@pytest.mark.parametrize(
    ("theirs", "libpq_environ", "same"),
    [
        # The URL's query wins over its host, port, name and role, as SQLAlchemy hands
        # the query to psycopg last: this worker trains from the socket folder's server.
        ("postgresql://u@localhost/runs?host=/run/other", {}, False),
        ("postgresql://u@localhost:5432/runs?port=5433", {}, False),
        ("postgresql://u@localhost/runs?dbname=other", {}, False),
        ("postgresql://u@localhost/runs?user=v", {}, False),
        ("postgresql://u@localhost/other?dbname=runs", {}, True),
        ("postgresql://u@/runs?host=localhost:5432", {}, True),
        # Another schema of one database: another queue.
        ("postgresql://u@localhost/runs?options=-csearch_path%3Dother", {}, False),
        ("postgresql://u@localhost/runs", {"PGOPTIONS": "-c search_path=other"}, False),
        # Its other settings name no other database.
        ("postgresql://u@localhost/runs?options=-c%20statement_timeout%3D0", {}, True),
        ("postgresql://u@localhost/runs", {"PGOPTIONS": "-c statement_timeout=5s"}, True),
        # A service file or an address libpq connects to instead of the host's: not
        # known to be this server.
        ("postgresql://u@localhost/runs", {"PGHOSTADDR": "10.0.0.5"}, False),
        ("postgresql://u@localhost/runs", {"PGSERVICE": "staging"}, False),
    ],
)
def test_stop_reads_a_postgresql_url_s_query_and_environment_as_its_worker_s_libpq_does(
    monkeypatch: pytest.MonkeyPatch, theirs: str, libpq_environ: dict[str, str], same: bool
) -> None:
    # Stop read a worker's URL by its host, port, name and role before the query's, and
    # left PGHOSTADDR, PGSERVICE and a search path out: a worker of another server (or
    # schema) read as one of stop's database, and stop, run while it started, signalled it.
    from core.processes import LIBPQ_DEFAULTS, WorkerProcess
    from resconv_tui.commands.stop import same_database

    for name in LIBPQ_DEFAULTS:
        monkeypatch.delenv(name, raising=False)
    process = WorkerProcess(1, theirs, Path.cwd(), False, libpq_environ)
    assert same_database("postgresql://u:secret@localhost/runs", process) == same


def test_stop_matches_no_worker_where_its_own_environment_names_a_service(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Stop's own PGSERVICE (or PGHOSTADDR) may name a server its URL does not: a
    # worker of localhost is not known to be one of stop's.
    from core.processes import LIBPQ_DEFAULTS, WorkerProcess
    from resconv_tui.commands.stop import same_database

    for name in LIBPQ_DEFAULTS:
        monkeypatch.delenv(name, raising=False)
    process = WorkerProcess(1, "postgresql://u@localhost/runs", Path.cwd(), False, {})
    assert same_database("postgresql://u@localhost/runs", process)
    monkeypatch.setenv("PGSERVICE", "staging")
    assert not same_database("postgresql://u@localhost/runs", process)
    monkeypatch.delenv("PGSERVICE")
    monkeypatch.setenv("PGHOSTADDR", "10.0.0.5")
    assert not same_database("postgresql://u@localhost/runs", process)


def test_stop_knows_a_postgresql_socket_folder_by_its_real_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A URL's socket folder (?host=/path) was not read at all: any two URLs of one
    # database name and role read as one server, whichever folder (and port) each gave.
    from core.processes import LIBPQ_DEFAULTS, WorkerProcess
    from resconv_tui.commands.stop import same_database

    for name in LIBPQ_DEFAULTS:
        monkeypatch.delenv(name, raising=False)
    Path("sock").mkdir()
    Path("other").mkdir()
    Path("link").symlink_to("sock")
    here = Path.cwd()
    ours = f"postgresql://u@/runs?host={here}/sock&port=5433"

    def same(theirs: str, **libpq_environ: str) -> bool:
        return same_database(ours, WorkerProcess(1, theirs, here, False, libpq_environ))

    assert same(f"postgresql+psycopg://u@/runs?host={here}/sock/&port=5433")
    assert same(f"postgresql://u@/runs?host={here}/link&port=5433")
    assert same("postgresql://u@/runs", PGHOST=f"{here}/sock", PGPORT="5433")
    assert not same(f"postgresql://u@/runs?host={here}/other&port=5433")
    assert not same(f"postgresql://u@/runs?host={here}/sock")  # 5432
    assert not same("postgresql://u@/runs?port=5433")  # libpq's built-in folder


def test_stop_finds_a_starting_worker_of_its_postgresql_server_however_its_url_names_it(
    capsys: pytest.CaptureFixture[str], pg_admin_url: str
) -> None:
    # A worker just started (no row yet) is found by its command line's --db: one of
    # stop's server and database written otherwise (another driver, a socket folder with
    # a '/' after it, or 127.0.0.1 for localhost and the port written out) is stopped;
    # one of another server (another socket folder, another port) is left alone, where
    # any two socket URLs of one database name read as one server.
    from postgres_server import fresh_database
    from sqlalchemy.engine import make_url

    url = fresh_database(pg_admin_url)
    Repo.open(url).close()
    parsed = make_url(url).set(drivername="postgresql")
    socket_folder = parsed.query.get("host")
    if isinstance(socket_folder, str):  # the server started for the tests
        respelled = parsed.update_query_dict({"host": f"{socket_folder}/"})
        elsewhere = parsed.update_query_dict({"host": str(Path.cwd() / "elsewhere")})
    else:  # RESCONV_TEST_PG_URL's, by host and port
        loopback = {"localhost": "127.0.0.1", "127.0.0.1": "localhost"}
        host, port = parsed.host or "localhost", parsed.port or 5432
        respelled = parsed.set(host=loopback.get(host, host), port=port)
        elsewhere = parsed.set(port=port + 1)
    to_text = partial(URL.render_as_string, hide_password=False)
    with (
        worker_starting(Path("same"), db=to_text(respelled)) as pid,
        worker_starting(Path("other"), db=to_text(elsewhere)),
    ):
        code, out, err = cli(capsys, "stop", "--db", url, "--no-wait")
        assert (code, err) == (0, "")
        assert (
            out
            == f"asked worker pid {pid} to stop (starting: no row yet); it held no run when read\n"
        )


def test_stop_knows_a_starting_worker_s_database_by_its_file_or_its_server() -> None:
    # A worker found by its command line (no row yet) is stopped only when it trains
    # from stop's own database: the same file, however each names it, or the same
    # server, database and role, whatever driver or password its URL gives.
    from core.processes import WorkerProcess
    from resconv_tui.commands.stop import same_database

    Path("box").mkdir()
    Repo.open("runs.db").close()
    Repo.open("box/runs.db").close()
    here, box = Path.cwd(), Path.cwd() / "box"
    ours = f"sqlite:///{here / 'runs.db'}"
    assert same_database(ours, WorkerProcess(1, None, here, False))  # ./runs.db, the default
    assert same_database(ours, WorkerProcess(1, "../runs.db", box, False))
    assert not same_database(ours, WorkerProcess(1, None, box, False))  # its own ./runs.db
    assert not same_database(ours, WorkerProcess(1, "missing.db", here, False))
    assert not same_database(ours, WorkerProcess(1, "postgresql://u@h/db", here, False))
    pg = "postgresql://u:secret@h:5433/runs"
    assert same_database(pg, WorkerProcess(1, "postgresql+psycopg://u@h:5433/runs", here, False))
    assert not same_database(pg, WorkerProcess(1, "postgresql://u@h:5433/other", here, False))
    assert not same_database(pg, WorkerProcess(1, "nosuch://x", here, False))  # refused: no worker


@pytest.mark.parametrize(
    ("column", "value", "said"),
    [
        ("pid", "abc", "its pid is 'abc', not a whole number"),
        ("last_seen_at", "y", "its last_seen_at is 'y', not a number"),
    ],
)
def test_status_and_ls_show_the_rest_beside_a_damaged_worker_row(
    capsys: pytest.CaptureFixture[str], column: str, value: str, said: str
) -> None:
    # One worker row edited by hand: status showed the counts and stopped, ls listed no
    # run at all, each with the row named, until it was mended with an SQL client.
    repo, worker, run_id = queued_and_claimed(capsys)
    ghost = repo.register_worker("ghost-box", 5555, "cpu")
    with sqlite3.connect("runs.db") as conn:  # as an SQL client's UPDATE stores it
        conn.execute(f"UPDATE worker SET {column} = ? WHERE id = ?", (value, ghost))
    named = (
        f"resconv-tui: worker {ghost}'s row is damaged ({said}): put its value back, or "
        "delete the row with an SQL client; the rest is shown without it\n"
    )
    code, out, err = cli(capsys, "status")
    assert (code, err) == (0, named)
    assert "runs: 3 queued, 1 running" in out and f"#{run_id} smoke/" in out
    assert f"\n  {worker}  cuda:0  run #{run_id}" in out and ghost not in out
    code, out, err = cli(capsys, "ls")
    assert (code, err) == (0, named)
    assert len(out.splitlines()) == 5  # the header and the 4 runs
    code, out, err = cli(capsys, "ls", "--json")
    assert (code, err) == (0, named)
    assert [run["id"] for run in json.loads(out)] == [1, 2, 3, 4]


def test_a_damaged_worker_row_s_long_id_is_cut_where_it_is_named(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # An id edited into 10 KB was printed whole by status, ls and stop (twice by stop:
    # on stderr, and on stdout with the worker it found by its command line).
    cli(capsys, "queue", "sweep.yml")
    with worker_starting(Path("box")) as pid:  # started before its row, as a worker is
        repo = Repo.open("runs.db")
        worker = repo.register_worker(socket.gethostname(), pid, "cpu")
        with sqlite3.connect("runs.db") as conn:  # as an SQL client's UPDATE stores it
            conn.execute(
                "UPDATE worker SET id = ?, last_seen_at = 'x' WHERE id = ?", ("w" * 10_000, worker)
            )
        cut_id = f"{'w' * 99}…"
        named = f"resconv-tui: worker {cut_id}'s row is damaged (its last_seen_at is 'x'"
        for command in ("status", "ls", "stop"):
            _, out, err = cli(capsys, command, *(["--no-wait"] if command == "stop" else []))
            assert err.startswith(named) and len(err) < 1_000, command
        assert out == (
            f"asked worker pid {pid} to stop (found by its command line: damaged worker row "
            f"{cut_id} holds its pid); it held no run when read\n"
        )


# What stop says of a damaged worker row of this machine, after the row's repair: what
# it does to that row's worker (found by its command line, signalled once as any other;
# its row cannot say "stopping", so a second stop signals it again: exit at once).
LEFT_ALONE = (
    "stop did not signal by it (its values cannot be trusted): a worker process of this "
    "database with no readable row, found by its command line, is asked to stop after its "
    "current step as the others are (its row cannot say it is stopping: a second stop "
    "tells it to exit at once)"
)


@pytest.mark.parametrize("host", ["here", "elsewhere"])
def test_stop_stops_the_workers_beside_a_damaged_worker_row(
    capsys: pytest.CaptureFixture[str], host: str
) -> None:
    # A worker row edited by hand (a text pid) kept stop from signalling any worker.
    # One of this machine is left alone (its pid cannot be trusted), named, and stop
    # exits 1: its worker, if one runs, is not known to be down. Another machine's is
    # none of stop's business.
    cli(capsys, "queue", "sweep.yml")
    busy = ignoring_sigterm()
    here = socket.gethostname()
    repo = Repo.open("runs.db")
    repo.register_worker(here, busy.pid, "cpu")
    ghost = repo.register_worker(here if host == "here" else "other-box", 5555, "cpu")
    with sqlite3.connect("runs.db") as conn:  # as an SQL client's UPDATE stores it
        conn.execute("UPDATE worker SET pid = 'abc' WHERE id = ?", (ghost,))
    try:
        code_, out, err = cli(capsys, "stop", "--no-wait")
        asked = f"asked worker pid {busy.pid} to stop after the current step"
        assert out == f"{asked}; it held no run when read\n"
        if host == "here":
            assert (code_, err) == (1, (
                f"resconv-tui: worker {ghost}'s row is damaged (its pid is 'abc', not a whole "
                "number): put its value back, or delete the row with an SQL client; "
                f"{LEFT_ALONE}\n"
            ))  # fmt: skip
        else:
            assert (code_, err) == (0, "")
        states = repo.workers_and_damaged()[0]
        assert [w.state for w in states] == ["stopping"]
    finally:
        busy.kill()
        busy.wait()


@pytest.mark.parametrize("damaged", [False, True])
def test_stop_treats_a_stopped_worker_alike_beside_a_damaged_worker_row(
    capsys: pytest.CaptureFixture[str], damaged: bool
) -> None:
    # A worker whose row says "stopped" (it is on its way out) is not one just started:
    # stop leaves it be (a second signal exits at once). One damaged worker row, of
    # another machine even, made stop's look for workers without a row read the live
    # rows only, and it signalled the exiting worker as one "starting".
    # A worker by its command line, as `ps` shows one (python -m core.worker --db ...),
    # started before its row was written, as a worker is.
    with worker_starting(Path("box")) as pid:
        repo = Repo.open("runs.db")
        worker = repo.register_worker(socket.gethostname(), pid, "cpu")
        repo.update_worker(worker, state="stopped")
        ghost = repo.register_worker("other-box", 5555, "cpu")
        if damaged:
            with sqlite3.connect("runs.db") as conn:  # as an SQL client's UPDATE stores it
                conn.execute("UPDATE worker SET pid = 'abc' WHERE id = ?", (ghost,))
        code_, out, err = cli(capsys, "stop", "--no-wait")
        assert (code_, out, err) == (0, f"no live worker on {socket.gethostname()}\n", "")


def test_a_worker_row_of_a_state_no_version_writes_is_named_damaged(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A state edited by hand ('zzz'): the row was read as a worker neither live nor
    # gone. stop left its live worker training and said "no live worker", exit 0; status
    # showed it as a worker of state 'zzz'. It is a damaged row, named as the others are.
    busy = ignoring_sigterm()
    here = socket.gethostname()
    repo = Repo.open("runs.db")
    worker = repo.register_worker(here, busy.pid, "cpu")
    with sqlite3.connect("runs.db") as conn:  # as an SQL client's UPDATE stores it
        conn.execute("UPDATE worker SET state = 'zzz' WHERE id = ?", (worker,))
    damage = (
        f"resconv-tui: worker {worker}'s row is damaged (its state is 'zzz', not one of idle, "
        "running, stopping, stalled, stopped, lost): put its value back, or delete the row "
        "with an SQL client"
    )
    try:
        code_, out, err = cli(capsys, "stop", "--no-wait")
        assert (code_, out) == (1, f"no live worker on {here} whose row could be read\n")
        assert err == f"{damage}; {LEFT_ALONE}\n"
        code_, out, err = cli(capsys, "status")
        assert (code_, err) == (0, f"{damage}; the rest is shown without it\n")
        assert worker not in out
    finally:
        busy.kill()
        busy.wait()


@pytest.mark.parametrize(
    ("column", "damage", "why"),
    [
        (
            "last_seen_at",
            "its last_seen_at is 'x', not a number",
            "damaged worker row {} holds its pid",
        ),
        ("pid", "its pid is 'x', not a whole number", "starting, or the damaged row's worker"),
    ],
)
def test_stop_does_not_say_it_left_a_damaged_row_s_worker_unsignalled_when_it_signals_it(
    capsys: pytest.CaptureFixture[str], column: str, damage: str, why: str
) -> None:
    # A damaged row of a worker that runs: stop finds the worker by its command line, as
    # one with no row, and signals it, which stops it. Its line on stderr said "its
    # process, if one still runs, was not signalled" all the same; on stdout it was said
    # "starting: no row yet", of a worker whose row is there (and may have trained for
    # hours). Named with that row where the row's pid can still be read. On stderr, it
    # was then said to be "signalled as one starting", which it is not.
    with worker_starting(Path("box")) as pid:  # started before its row, as a worker is
        repo = Repo.open("runs.db")
        worker = repo.register_worker(socket.gethostname(), pid, "cpu")
        with sqlite3.connect("runs.db") as conn:  # as an SQL client's UPDATE stores it
            conn.execute(f"UPDATE worker SET {column} = 'x' WHERE id = ?", (worker,))
        code_, out, err = cli(capsys, "stop", "--no-wait")
        asked = f"asked worker pid {pid} to stop (found by its command line: "
        assert code_ == 1 and out.startswith(f"{asked}{why.format(worker)})")
        assert err == (
            f"resconv-tui: worker {worker}'s row is damaged ({damage}): put its value back, or "
            f"delete the row with an SQL client; {LEFT_ALONE}\n"
        )
        # Signalled as any worker, not "as one starting": a worker past its start finishes
        # its step first. Its row cannot say "stopping", so a stop again signals it again
        # (a second signal: exit at once), as the line says.
        code_, out, _ = cli(capsys, "stop", "--no-wait")
        assert code_ == 1 and out.startswith(f"{asked}{why.format(worker)})")


def test_queue_cancel_and_retry_go_on_beside_a_damaged_worker_row(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # They read the workers in passing (queue's "no worker is running" hint, the workers
    # of this machine gone): one row edited by hand failed them, `queue` after its runs
    # were queued (exit 2, as if they were not), cancel and retry before acting.
    repo = Repo.open("runs.db")
    ghost = repo.register_worker("ghost-box", 5555, "cpu")
    with sqlite3.connect("runs.db") as conn:  # as an SQL client's UPDATE stores it
        conn.execute("UPDATE worker SET pid = 'abc' WHERE id = ?", (ghost,))
    named = (
        f"resconv-tui: worker {ghost}'s row is damaged (its pid is 'abc', not a whole number): "
        "put its value back, or delete the row with an SQL client; this command goes on "
        "without it\n"
    )
    code, out, err = cli(capsys, "queue", "sweep.yml")
    assert (code, err) == (0, named) and out.startswith("added 4, skipped 0\n")
    # Not "no worker is running": the damaged row's worker may well be training.
    assert out.endswith(
        "\nno worker could be read: a worker row is damaged and could not be read, so a "
        "worker may be running; if none is, start one with `resconv-tui worker`\n"
    )
    assert (cli(capsys, "cancel", "1"), repo.get_run(1).status) == (
        (0, "run 1: cancelled\n", named),
        RunStatus.CANCELLED,
    )
    assert cli(capsys, "retry", "1") == (0, "queued again: 1\n", named)
    assert repo.get_run(1).status == RunStatus.QUEUED


@pytest.mark.parametrize("number", ["0", "-1"])
def test_train_refuses_a_run_number_below_1_as_its_help_says(
    capsys: pytest.CaptureFixture[str], number: str
) -> None:
    # `train sweep.yml --run 0` (or -1) passed the parser, whose refusal says "a whole
    # number from 1", and failed later as "run 0 does not exist: sweep.yml expands to 4 runs".
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["train", "sweep.yml", "--run", number])
    assert exit_info.value.code == 2
    said = capsys.readouterr().err
    assert f"argument --run: '{number}' is not a run number (a whole number from 1)" in said


def test_train_of_a_run_past_the_last_says_which_numbers_there_are(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = cli(capsys, "train", "sweep.yml", "--run", "5")
    assert code == 2
    one_error_line(err, "run 5 does not exist: sweep.yml expands to 4 runs, numbered 1 to 4")


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        # show --help left out the 130 that README gives for Ctrl-C, and said "1 if not".
        (
            ["show"],
            "exit status 0 if it succeeded, 1 if it failed, was cancelled or removed, "
            "130 on Ctrl-C",
        ),
        (
            ["stop"],
            "Exit status: 0 once all have exited (or with --no-wait), 1 if one is "
            "still running after the wait or could not be signalled",
        ),
        (["worker"], "exits (status 0); a second exits at once (status 130)"),
        ([], "exit status 2; Ctrl-C stops a command with exit status 130"),
    ],
)
def test_each_help_gives_the_exit_statuses_readme_and_the_command_give(
    argv: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main([*argv, "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert said in shown
    readme = " ".join((Path(__file__).parents[3] / "README.md").read_text().split())
    statuses = re.findall(r"\b(?:status(?:es)?:?|exits?) (\d+)", said)
    for status in statuses:  # each one the help names, README names for the command too
        assert re.search(rf"(status|exits?)[^|]*\b{status}\b", readme)


def test_ctrl_c_exits_130_as_the_help_says(monkeypatch: pytest.MonkeyPatch) -> None:
    import resconv_tui.commands.status as status_command

    def interrupted(*_: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(status_command, "run", interrupted)
    assert main(["status"]) == 130
