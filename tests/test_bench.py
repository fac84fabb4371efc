"""The bench scripts' CPU-testable pieces (their GPU runs are in bench/README.md)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import worker_speed  # noqa: E402
from core.queue import FinalFigures, Repo  # noqa: E402


def test_worker_speed_summarises_a_real_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sys.path.insert(0, str(Path(__file__).parent / "core" / "queue"))
    from queue_helpers import tiny_runs

    url = f"sqlite:///{tmp_path / 'runs.db'}"
    repo = Repo.open(url)
    repo.enqueue(tiny_runs(2))
    worker = repo.register_worker("host", 1, "cuda:0")
    run = repo.claim(worker)
    assert run is not None
    figures = FinalFigures(validation_loss=0.1, inputs_per_s=1000.0, path_used="cuda-graph bf16")
    repo.finish(run.id, worker, figures)
    repo.close()
    assert worker_speed.main(["--db", url, "--runs"]) == 0
    out = capsys.readouterr().out
    assert "exp: 2 runs (1 succeeded, 1 queued)" in out
    assert "1 x cuda-graph bf16" in out and "0.100000" in out


def test_worker_speed_names_a_missing_database_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert worker_speed.main(["--db", str(tmp_path / "none.db")]) == 2
    assert "no database at" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("script", "argv", "says"),
    [
        # Each was a traceback (or, for --limit -1, all runs but the last, for minutes).
        ("train_speed", ["--stack", "0"], "argument --stack: 0 is not 1 to 64"),
        ("train_speed", ["--slots", "99999"], "argument --slots: 99999 is not 1 to 16"),
        ("train_speed", ["--layers", "0"], "argument --layers: 0 is not 1 or more"),
        ("train_speed", ["--device", "gpu"], "train_speed.py: --device gpu: use auto, cpu"),
        ("train_speed", ["--inputs", "10"], "--inputs 10 is less than one batch (64)"),
        ("train_speed", ["--data-dir", "/nonexistent", "--inputs", "64"], "does not exist"),
        ("seed_tables", ["missing.yml"], "seed_tables.py: invalid sweep file: missing.yml"),
        ("seed_tables", ["x.yml", "--limit", "-1"], "argument --limit: -1 is not 1 or more"),
        ("tui_refresh", ["--runs", "0"], "argument --runs: 0 is not 1 or more"),
    ],
)
def test_a_bench_script_says_what_is_wrong_in_one_line(
    script: str,
    argv: list[str],
    says: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import importlib

    from bench.shape import one_line_errors

    module = importlib.import_module(f"bench.{script}")
    monkeypatch.setattr(sys, "argv", [f"{script}.py", *argv])
    try:
        code = one_line_errors(lambda: module.main(argv) if script != "tui_refresh"
                               else module.main(), f"{script}.py")  # fmt: skip
    except SystemExit as exit_:  # argparse's usage error
        code = int(exit_.code or 0)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and says in err[-1], err
    assert "Traceback" not in "\n".join(err)


def test_train_speed_shows_no_peak_memory_for_a_cpu_row() -> None:
    # "peak MiB 0.0" read as a measurement; a CPU run records none.
    from bench.train_speed import Row, table

    cpu = Row("fit plain fp32", 640, 1.0, 640.0, 0.0, 0.4)
    gpu = Row("fit graph bf16", 640, 1.0, 640.0, 12.5, 0.4)
    lines = table([cpu, gpu], cpu).splitlines()
    assert lines[2].split()[-2] == "—" and lines[3].split()[-2] == "12.5"


def test_seed_tables_json_says_when_its_inputs_were_overridden(
    tmp_path: Path, idx_writer: Any
) -> None:
    # A 256-input smoke run's 0.40 read as a failure to reach the logbook's 0.16.
    import json

    from bench import seed_tables

    out = tmp_path / "t1.json"
    t1 = str(Path(__file__).resolve().parents[1] / "experiments" / "t1-layers-32.yml")
    argv = [t1, "--limit", "1", "--inputs", "128", "--device",
            "cpu", "--data-dir", str(idx_writer(tmp_path / "data")), "--out", str(out)]  # fmt: skip
    assert seed_tables.main(argv) == 0
    payload = json.loads(out.read_text())
    assert payload["inputs_override"] == 128 and len(payload["rows"]) == 1


def test_tui_refresh_times_a_reused_file_by_its_own_running_run(tmp_path: Path) -> None:
    # A file built with --runs 1000, reused with the default 10,000: a foreign key error.
    from bench.tui_refresh import build, running_run
    from core.queue import QueueError

    assert build(tmp_path / "b.db", 40, 200) == running_run(tmp_path / "b.db") == 40
    Repo.open(str(tmp_path / "empty.db")).close()
    with pytest.raises(QueueError, match="has no running run: not a file this benchmark"):
        running_run(tmp_path / "empty.db")


def test_train_speed_list_options_given_twice_add_up() -> None:
    # --slots 2 --slots 4 kept only [4]: the first row asked for was silently dropped.
    from bench import train_speed

    args = train_speed.parse_args(["--slots", "2", "--slots", "4", "--stack", "4", "--stack", "8"])
    assert (args.slots, args.stack) == ([2, 4], [4, 8])
    args = train_speed.parse_args(["--slots", "4", "4"])  # one row per K, not two alike
    assert (args.slots, args.stack) == ([4], [])
    assert train_speed.parse_args([]).slots == [1]


def test_train_speed_slots_row_names_the_path_its_runs_took(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A slot thread whose capture failed trains eagerly at a third of the speed; the row
    # gave its total as "fit x4 slots" with no word of it (fit rows name their path).
    import torch

    from bench import train_speed
    from core.config import RunConfig
    from core.train import FitResult

    def fake_fit(config: RunConfig, data: object, device: object) -> FitResult:
        path = (
            "cuda-eager bf16 (graph capture failed: X)" if config.seed == 2 else "cuda-graph bf16"
        )
        return FitResult(0.05, inputs_seen=640, inputs_per_s=640.0, path_used=path)

    monkeypatch.setattr(train_speed, "fit", fake_fit)
    cpu, config = torch.device("cpu"), RunConfig(seed=0)
    alike = train_speed.slots_row(config, None, cpu, 2)  # type: ignore[arg-type]
    assert alike.path == "fit x2 slots cuda-graph bf16", alike.path
    mixed = train_speed.slots_row(config, None, cpu, 3)  # type: ignore[arg-type]
    assert mixed.path == "fit x3 slots, mixed paths", mixed.path
    assert "1x cuda-eager bf16 (graph capture failed: X)" in mixed.note, mixed.note
    assert "2x cuda-graph bf16" in mixed.note, mixed.note


def test_gpu_check_past_its_deadline_sets_up_no_worker_step(tmp_path: Path) -> None:
    # Past DEADLINE_S, the packing block still cancelled leftovers and ran two `queue`
    # commands (Python starts: seconds) before its steps said "skipped" (t1_worker and
    # stack_worker one each). Python is a stub here that notes how it was called.
    import os
    import subprocess

    calls = tmp_path / "calls"
    python = tmp_path / "python"
    python.write_text('#!/usr/bin/env bash\necho "$*" >>"$CALLS"\n')
    python.chmod(0o755)
    out = tmp_path / "out"
    env = {
        **os.environ, "PYTHON": str(python), "CALLS": str(calls), "OUT": str(out),
        "GPU_CHECK_DB": str(tmp_path / "gpu.db"), "DEADLINE_S": "0",
        "STEPS": "t1_worker stack_worker packing",
    }  # fmt: skip
    root = Path(__file__).resolve().parent.parent
    subprocess.run(["bash", "bench/gpu_check.sh"], cwd=root, env=env, check=True,
                   capture_output=True, timeout=60)  # fmt: skip
    summary = (out / "summary.txt").read_text().splitlines()
    skipped = [line for line in summary if line.endswith(": skipped, no time left")]
    assert skipped == [f"== {name}: skipped, no time left"
                       for name in ("t1_worker", "stack_worker", "packing")]  # fmt: skip
    called = calls.read_text()
    assert "resconv_tui.cli queue" not in called and "request_cancel" not in called


def test_gpu_check_names_the_card_also_without_the_queue_packages(tmp_path: Path) -> None:
    # One Python line printed the card with torchvision's and sqlmodel's versions: where
    # the carried wheels did not install, the summary named no card, and the GPU figures
    # of that call could not be told apart. Python is a stub without sqlmodel here.
    import os
    import subprocess

    python = tmp_path / "python"
    python.write_text(
        "#!/usr/bin/env bash\n"
        'case "$*" in\n'
        '  *sqlmodel*) echo "ModuleNotFoundError: No module named sqlmodel" >&2; exit 1 ;;\n'
        '  *get_device_name*) echo "3.12.3 torch 2.11.0+cu130 NVIDIA H200" ;;\n'
        "esac\n"
    )
    python.chmod(0o755)
    out = tmp_path / "out"
    env = {
        **os.environ, "PYTHON": str(python), "OUT": str(out),
        "GPU_CHECK_DB": str(tmp_path / "gpu.db"), "DEADLINE_S": "0",
    }  # fmt: skip
    root = Path(__file__).resolve().parent.parent
    run = subprocess.run(["bash", "bench/gpu_check.sh"], cwd=root, env=env, check=True,
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    summary = (out / "summary.txt").read_text()
    assert "3.12.3 torch 2.11.0+cu130 NVIDIA H200" in summary, summary
    assert "No module named sqlmodel" in summary, summary  # and why the queue steps fail
    # The reply brings back the output's last 12,000 characters: the tables end with the
    # card, so that the figures there are named by it however long the start was.
    assert run.stdout.splitlines()[-2] == "card: 3.12.3 torch 2.11.0+cu130 NVIDIA H200"
