"""A checkpoint folder that cannot be written is refused at start, before any run is claimed."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
from queue_helpers import tiny_run, tiny_runs

import core.worker as worker_module
from core.errors import ConfigError
from core.queue import Repo, RunStatus
from core.worker import check_checkpoint_root, run_worker
from resconv_tui.cli import main

SWEEP = "name: st\nlayers: 2\nmax_inputs: 256\nbatch_size: 64\nmatrix:\n  ch: [4]\n"


@pytest.fixture
def queued_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A queue with two runs waiting, in a folder that also holds a regular file ``afile``."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RESCONV_DB", raising=False)
    (tmp_path / "afile").write_text("not a folder")
    (tmp_path / "st.yml").write_text(SWEEP)
    path = tmp_path / "runs.db"
    repo = Repo.open(str(path))
    repo.enqueue(tiny_runs(2))
    repo.close()
    return path


def stored_runs(db: Path) -> list[Any]:
    """The run rows of the database ``db`` as stored now, in id order."""
    repo = Repo.open(str(db), create=False)
    try:
        return repo.list_runs()
    finally:
        repo.close()


def stored_run(db: Path, run_id: int) -> Any:
    """Run ``run_id``'s row in the database ``db`` as stored now."""
    repo = Repo.open(str(db), create=False)
    try:
        return repo.get_run(run_id)
    finally:
        repo.close()


def untouched(db: Path) -> bool:
    repo = Repo.open(str(db), create=False)
    try:
        return all(run.status == RunStatus.QUEUED and run.attempts == 0 for run in repo.list_runs())
    finally:
        repo.close()


@pytest.mark.parametrize(
    ("folder", "why"),
    [
        ("afile", "checkpoint folder afile is a file, not a folder"),
        ("afile/sub", "checkpoint folder afile/sub cannot be created: afile is a file"),
        ("/proc/x", "checkpoint folder /proc/x cannot be created"),
    ],
)
@pytest.mark.parametrize(
    "extra", [[], ["--slots", "2", "--slot-mode", "processes"]], ids=["one", "slots"]
)
def test_worker_refuses_at_start_and_leaves_the_queue_alone(
    queued_db: Path,
    folder: str,
    why: str,
    extra: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import core.slots

    def no_supervisor(*_: Any) -> int:
        raise AssertionError("slots were started")

    monkeypatch.setattr(core.slots, "supervise", no_supervisor)
    argv = ["--db", str(queued_db), "worker", "--until-empty", "--device", "cpu"]
    assert main([*argv, "--checkpoints", folder, *extra]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and why in lines[-1], lines
    assert untouched(queued_db)


def test_run_worker_checks_before_claiming(queued_db: Path) -> None:
    def trainer(*_: Any) -> Any:
        raise AssertionError("a run was trained")

    with pytest.raises(ConfigError, match="afile is a file"):
        run_worker(str(queued_db), "cpu", True, None, None, "afile/sub",
                   trainer=trainer, install_signals=False)  # fmt: skip
    assert untouched(queued_db)


def test_a_folder_that_cannot_be_written_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A read-only mount, stood in for: root may write anywhere else.
    def read_only(*_: Any, **__: Any) -> Any:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(worker_module.tempfile, "TemporaryFile", read_only)
    with pytest.raises(ConfigError, match=r"is not writable \(Read-only file system\)"):
        check_checkpoint_root(tmp_path / "ck")


def test_a_good_folder_is_made_and_left_empty(tmp_path: Path) -> None:
    check_checkpoint_root(tmp_path / "a" / "b")
    assert list((tmp_path / "a" / "b").iterdir()) == []


@pytest.mark.parametrize("folder", ["afile/sub", "/proc/x"])
def test_train_refuses_before_loading_data(
    queued_db: Path,
    folder: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import core.data

    def no_data(*_: Any, **__: Any) -> Any:
        raise AssertionError("data was loaded")

    monkeypatch.setattr(core.data, "load_datasets", no_data)
    code = main(["train", "st.yml", "--run", "1", "--device", "cpu", "--checkpoints", folder])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and f"checkpoint folder {folder}" in err[0], err


def test_a_database_in_a_missing_folder_is_not_given_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The default checkpoint folder is beside the database: checking it must not make
    # the missing folder, which would let the typo'd --db be created in it.
    assert main(["--db", str(tmp_path / "nope" / "runs.db"), "worker", "--until-empty"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "nope").exists()


@pytest.mark.parametrize(
    "refused",
    [["--device", "cuda:7"], ["--data-dir", "/nonexist"], ["--checkpoints", "/proc/x"]],
    ids=["device", "data-dir", "checkpoints"],
)
def test_a_worker_refused_for_its_options_makes_no_database(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    refused: list[str],
) -> None:
    # It said "database runs.db is new", refused its --device, and left runs.db and
    # checkpoints/ behind in the folder it was started in.
    monkeypatch.chdir(tmp_path)
    assert main(["worker", "--until-empty", *refused]) == 2
    err = capsys.readouterr().err
    assert "is new" not in err and len(err.strip().splitlines()) == 1, err
    assert list(tmp_path.iterdir()) == []


def test_a_worker_refused_for_its_database_or_device_leaves_no_checkpoint_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # --checkpoints was made before the database was refused (a --db in a folder it
    # may not write); with a database there already, checkpoints/ before --device was.
    folder = tmp_path / "made" / "ck"
    code = main(["worker", "--db", "/proc/runs.db", "--checkpoints", str(folder)])
    assert code == 2 and "cannot open database /proc/runs.db" in capsys.readouterr().err
    assert not (tmp_path / "made").exists()
    monkeypatch.chdir(tmp_path)
    Repo.open("runs.db").close()
    assert main(["worker", "--device", "cuda:7"]) == 2
    assert "--device cuda:7" in capsys.readouterr().err
    assert not (tmp_path / "checkpoints").exists()


def test_a_worker_refused_for_its_default_checkpoint_folder_makes_no_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # checkpoints/ beside the database was a file: refused after runs.db had been made.
    (tmp_path / "checkpoints").write_text("")
    assert main(["worker", "--db", str(tmp_path / "runs.db"), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "is a file, not a folder" in err and "is new" not in err
    assert not (tmp_path / "runs.db").exists()
    # An empty file (`touch e.db`) is as new: checked before it is made a database.
    (tmp_path / "e.db").write_bytes(b"")
    assert main(["worker", "--db", str(tmp_path / "e.db"), "--device", "cuda:7"]) == 2
    assert (tmp_path / "e.db").stat().st_size == 0


def test_a_checkpoint_folder_after_a_link_and_dotdot_is_the_kernel_s(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # link/../ck is elsewhere/ck to the kernel: the start check made a stray ./ck.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "elsewhere" / "sub").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere" / "sub")
    made_there = []
    remove_made = worker_module.remove_made

    def seen_then_removed(folders: list[Path]) -> None:  # still empty: removed at exit
        made_there.append((tmp_path / "elsewhere" / "ck").is_dir())
        remove_made(folders)

    monkeypatch.setattr(worker_module, "remove_made", seen_then_removed)
    assert main(["worker", "--device", "cpu", "--until-empty", "--checkpoints", "link/../ck"]) == 0
    assert not (tmp_path / "ck").exists() and made_there == [True]
    assert not (tmp_path / "elsewhere" / "ck").exists()


def test_a_folder_it_cannot_look_into_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Python 3.11: exists() under a folder without search permission raises.
    def no_entry(self: Path) -> bool:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "exists", no_entry)
    with pytest.raises(ConfigError, match="cannot be created \\(Permission denied\\)"):
        check_checkpoint_root(tmp_path / "locked" / "ck")


def test_train_piped_prints_lines_not_a_bar(
    queued_db: Path, tmp_path: Path, idx_writer: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # `train ... | cat` wrote the bar's last frame into the pipe.
    data = idx_writer(tmp_path / "data")
    argv = ["train", "st.yml", "--run", "1", "--device", "cpu", "--data-dir", str(data)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "validation loss:" in out and "━" not in out
    # The wall time holds the validation passes: said apart from the steps' time and rate
    # (it read "train time: 48.1 s" beside a bar that had said 0:00:30).
    assert re.search(r"wall time: +[\d.]+ s \([\d.]+ min\), [\d.]+ s of it training steps", out)
    assert re.search(r"inputs/s: +[\d,]+ over the training steps \(", out)


def test_train_piped_is_as_wide_as_shows_text(
    queued_db: Path,
    tmp_path: Path,
    idx_writer: Any,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # `train ... | tail` broke its lines at rich's 80 columns ("plain\nfp32)"), where show's
    # text in a pipe is as wide as the terminal (or 100 columns).
    # No terminal anywhere, and no $COLUMNS: the shell's own width (COLUMNS=80, or an
    # 80-column terminal under pytest -s) cut the line there and failed this test.
    monkeypatch.delenv("COLUMNS", raising=False)

    def no_terminal(fd: int = 1) -> os.terminal_size:
        raise OSError(fd, "not a terminal")

    monkeypatch.setattr(os, "get_terminal_size", no_terminal)
    data = idx_writer(tmp_path / "data")
    folder = tmp_path / ("c" * max(1, 88 - len(str(tmp_path)) - len("checkpoints:      ")))
    argv = ["train", "st.yml", "--run", "1", "--device", "cpu", "--data-dir", str(data)]
    assert main([*argv, "--checkpoints", str(folder)]) == 0
    assert f"checkpoints:     {folder}\n" in capsys.readouterr().out


def test_train_prints_names_and_folders_as_written(
    queued_db: Path, tmp_path: Path, idx_writer: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # Rich read `[/]` in an experiment name or a folder as markup: a MarkupError traceback.
    (tmp_path / "odd.yml").write_text(SWEEP.replace("name: st", "name: odd [/] [bold]x"))
    data = idx_writer(tmp_path / "data [/]")
    checkpoints = tmp_path / "ck [/]"
    argv = ["train", "odd.yml", "--run", "1", "--device", "cpu", "--data-dir", str(data),
            "--checkpoints", str(checkpoints)]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "(odd [/] [bold]x)" in out and str(checkpoints) in out
    # Its weights, and no lock left of the train that held the folder (held_for_train).
    assert sorted(p.name for p in checkpoints.iterdir()) == ["best.pt", "config.json", "last.pt"]


def test_train_says_a_diverged_run_once(
    queued_db: Path, tmp_path: Path, idx_writer: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # "loss became nan/inf: loss became NaN at step 11": the title said it twice.
    (tmp_path / "nan.yml").write_text(SWEEP.replace("name: st", "name: nan\nlr: 1.0e30"))
    data = idx_writer(tmp_path / "data")
    argv = ["train", "nan.yml", "--run", "1", "--device", "cpu", "--data-dir", str(data)]
    assert main(argv) == 2
    said = capsys.readouterr().err.strip().splitlines()[-1]
    assert re.fullmatch(r"resconv-tui: training diverged: loss became (NaN|inf) at step \d+", said)


def test_an_experiment_folder_is_a_safe_file_name_of_at_most_200_bytes() -> None:
    from core.run_folders import experiment_folder

    assert experiment_folder("t1-layers-32") == "t1-layers-32"
    assert experiment_folder("../../evil") == "_.._evil"  # never above the root
    assert experiment_folder("..") == "runs"
    # 100 characters of 実験 are 300 bytes: "file name too long" failed each run.
    wide = experiment_folder("実験" * 50)
    assert len(wide.encode()) <= 200 and wide.startswith("実験")
    assert wide != experiment_folder("実験" * 49 + "x")  # cut names stay apart


def _trained(db: Path, data: Path) -> list[Any]:
    run_worker(str(db), "cpu", True, None, str(data), None, install_signals=False)
    return stored_runs(db)


def test_two_databases_in_one_folder_keep_their_own_checkpoints(
    tmp_path: Path, idx_writer: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # Both have a run 1 of experiment "exp": the second worker wrote over the first's
    # checkpoints in checkpoints/exp/run-1, whose path the first database still held.
    data = idx_writer(tmp_path / "data")
    firsts = []
    for name, changes in (("a.db", {"layers": 2}), ("b.db", {"layers": 3})):
        repo = Repo.open(str(tmp_path / name))
        repo.enqueue([tiny_run(0, **changes)])
        repo.close()
        firsts.append(_trained(tmp_path / name, data)[0])
    paths = [Path(run.checkpoint_path) for run in firsts]
    assert paths == [tmp_path / "checkpoints/exp/run-1", tmp_path / "checkpoints/exp/run-1-2"]
    for run, path, name in zip(firsts, paths, ("a.db", "b.db"), strict=True):
        assert run.status == RunStatus.SUCCEEDED
        assert json.loads((path / "config.json").read_text()) == json.loads(run.config_json)
        assert (path / "best.pt").exists()
        # Which database a folder is of, for people; and where a run's folder is, for
        # scripts (only the dashboard's run detail said so).
        assert json.loads((path / "run.json").read_text())["database"] == str(tmp_path / name)
        capsys.readouterr()  # the workers' lines
        assert main(["--db", str(tmp_path / name), "ls", "--json"]) == 0
        assert json.loads(capsys.readouterr().out)[0]["checkpoint_path"] == str(path)


def test_run_json_names_the_database_by_its_whole_path(
    tmp_path: Path, idx_writer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `--db runs.db` in two folders: both run.json files said "runs.db".
    data = idx_writer(tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    repo = Repo.open("runs.db")
    repo.enqueue([tiny_run(0)])
    repo.close()
    (run,) = _trained(Path("runs.db"), data)
    info = json.loads((Path(run.checkpoint_path) / "run.json").read_text())
    assert info["database"] == str((tmp_path / "runs.db").resolve())


def test_a_database_made_again_does_not_write_over_the_old_ones_checkpoints(
    tmp_path: Path, idx_writer: Any
) -> None:
    # runs.db deleted to start afresh: its run 1 had trained into checkpoints/exp/run-1.
    data = idx_writer(tmp_path / "data")
    db = tmp_path / "runs.db"
    old = None
    for seed in (0, 1):
        repo = Repo.open(str(db))
        repo.enqueue([tiny_run(seed)])
        repo.close()
        run = _trained(db, data)[0]
        db.unlink()
        if old is None:
            old, kept = run, (Path(run.checkpoint_path) / "config.json").read_text()
    assert old is not None and run.id == old.id == 1
    assert run.checkpoint_path != old.checkpoint_path
    assert (Path(old.checkpoint_path) / "config.json").read_text() == kept


def test_a_retried_run_takes_its_own_folder_back(tmp_path: Path) -> None:
    from core.run_folders import claim_run_folder

    owner = {"run": 3, "experiment": "e", "config_hash": "abc", "queued_at": 1.5}
    first = claim_run_folder(tmp_path, 3, owner)
    (first / "best.pt").write_text("weights")
    assert claim_run_folder(tmp_path, 3, dict(owner)) == first == tmp_path / "run-3"
    assert claim_run_folder(tmp_path, 3, {**owner, "queued_at": 2.0}) == tmp_path / "run-3-2"
    # A folder from before run.json existed, with files: someone's; an empty one is free.
    (tmp_path / "run-4").mkdir()
    (tmp_path / "run-4" / "last.pt").write_text("old")
    assert claim_run_folder(tmp_path, 4, owner) == tmp_path / "run-4-2"
    (tmp_path / "run-5").mkdir()
    assert claim_run_folder(tmp_path, 5, owner) == tmp_path / "run-5"


def test_a_run_folder_it_may_not_look_into_is_someone_else_s(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another user's database's run-1 (mode 700): its PermissionError stopped the worker,
    # and every start after it, where the next name was free.
    from core.run_folders import claim_run_folder

    owner = {"run": 1, "experiment": "e", "config_hash": "a", "queued_at": 1.0}
    theirs = tmp_path / "e" / "run-1"
    theirs.mkdir(parents=True)
    real_iterdir = Path.iterdir

    def refused(self: Path) -> Any:
        if self == theirs:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real_iterdir(self)

    monkeypatch.setattr(Path, "iterdir", refused)
    assert claim_run_folder(tmp_path / "e", 1, owner) == tmp_path / "e" / "run-1-2"
    # One it cannot make (the experiment's folder is not writable) is no one's: raised.
    real_mkdir = Path.mkdir

    def not_here(self: Path, *args: Any, **kwargs: Any) -> None:
        if self.parent == tmp_path / "f":
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", not_here)
    (tmp_path / "f").mkdir()
    with pytest.raises(PermissionError):
        claim_run_folder(tmp_path / "f", 1, owner)


def test_of_two_workers_racing_for_one_folder_one_takes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Run 1 of two databases: the second claim came between the first's mkdir and its
    # run.json, found the folder empty and took it as well: both wrote into run-1.
    from core.run_folders import claim_run_folder

    first = {"run": 1, "experiment": "e", "config_hash": "a", "queued_at": 1.0}
    second = {**first, "config_hash": "b", "queued_at": 2.0}
    real_mkdir, got = Path.mkdir, []

    def mkdir_then_the_other(self: Path, *args: Any, **kwargs: Any) -> None:
        real_mkdir(self, *args, **kwargs)
        if not got:  # the other worker comes in right after the first one's mkdir
            got.append(None)
            got[0] = claim_run_folder(tmp_path, 1, second)

    monkeypatch.setattr(Path, "mkdir", mkdir_then_the_other)
    mine = claim_run_folder(tmp_path, 1, first)
    assert {mine, got[0]} == {tmp_path / "run-1", tmp_path / "run-1-2"}
    assert json.loads((got[0] / "run.json").read_text()) == second
    assert json.loads((mine / "run.json").read_text()) == first


def test_a_run_json_the_disk_had_no_room_for_leaves_the_folder_free(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A full disk let the claim create run.json but not write it: the empty file made the
    # folder nobody's, and the run, retried once there was room, trained into run-1-2.
    import core.run_folders as run_folders

    owner = {"run": 1, "experiment": "e", "config_hash": "a", "queued_at": 1.0}

    def no_room(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(run_folders.json, "dump", no_room)
        with pytest.raises(OSError, match="No space left"):
            run_folders.claim_run_folder(tmp_path, 1, owner)
    assert list((tmp_path / "run-1").iterdir()) == []
    assert run_folders.claim_run_folder(tmp_path, 1, owner) == tmp_path / "run-1"


@pytest.mark.parametrize("device", ["mps", "meta"])
def test_train_refuses_a_device_it_cannot_train_on_in_one_line(
    queued_db: Path, device: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # A traceback (RuntimeError: PyTorch is not linked with support for mps devices).
    assert main(["train", "st.yml", "--run", "1", "--device", device]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"--device {device}: not a device resconv-tui trains on" in err[0]


def test_train_leaves_a_workers_run_folder_alone(
    queued_db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # train --checkpoints into checkpoints/st/run-1 replaced its weights, leaving a
    # run.json that named another run.
    folder = tmp_path / "checkpoints" / "st" / "run-1"
    folder.mkdir(parents=True)
    (folder / "run.json").write_text('{"run": 1}')
    code = main(["train", "st.yml", "--run", "1", "--device", "cpu", "--checkpoints", str(folder)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert err[0].endswith(f"checkpoint folder {folder} holds a queued run's checkpoints "
                           "(run.json): give another folder")  # fmt: skip
    assert sorted(p.name for p in folder.iterdir()) == ["run.json"]


def _lost_with_a_folder(db: Path) -> Path:
    """Run 1 claimed, its folder made as its worker makes it (``checkpoint_dir``: another
    database's run 1 has ``run-1``, so ``run-1-2``), a ``last.pt`` saved there, then its
    worker killed: the run is failed "worker lost", its row naming no folder (as a run
    put back or retried by an older version). Its folder."""
    from core.run_folders import claim_run_folder

    repo = Repo.open(str(db))
    try:
        repo.enqueue([tiny_run(0), tiny_run(1)])
        worker = repo.register_worker("h", 1, "cpu")
        run = repo.claim(worker)
        assert run is not None and run.id == 1
        parent = db.parent / "checkpoints" / "exp"
        # run.json as a worker writes it: the run's id, experiment, config and queue time
        owner = {"run": 1, "experiment": "exp", "config_hash": run.config_hash}
        other = claim_run_folder(parent, 1, {**owner, "queued_at": 0.5})
        (other / "last.pt").write_text("another database's weights")
        folder = claim_run_folder(parent, run.id, {**owner, "queued_at": run.created_at})
        (folder / "last.pt").write_text("weights")
        assert repo.recover_stale(dead_worker_ids=[worker]) == [1]
        assert repo.get_run(1).checkpoint_path is None
    finally:
        repo.close()
    return folder


def test_rm_names_the_folders_it_finds_on_disk(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `rm 6` said "the checkpoint folders of run 6, if made, stay on disk" while
    # checkpoints/<experiment>/run-6 held its last.pt: its row had lost the path.
    db = tmp_path / "runs.db"
    folder = _lost_with_a_folder(db)
    assert folder == tmp_path / "checkpoints" / "exp" / "run-1-2"
    assert main(["--db", str(db), "rm", "1", "2"]) == 0  # run 2 never started: no folder
    assert capsys.readouterr().out == (
        f"removed 2 runs\ncheckpoint folders stay on disk: {folder}\n"
    )


def test_show_names_a_retried_runs_earlier_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `show 4` of a run put back or retried read "checkpoint —" beside its folder.
    db = tmp_path / "runs.db"
    folder = _lost_with_a_folder(db)
    assert main(["--db", str(db), "show", "1"]) == 0
    out = capsys.readouterr().out
    assert f"checkpoint {folder}\n" in out, out  # failed: this attempt's
    assert main(["--db", str(db), "retry", "1"]) == 0
    capsys.readouterr()
    assert main(["--db", str(db), "show", "1"]) == 0
    out = " ".join(capsys.readouterr().out.split())  # the path may fold
    assert f"checkpoint {folder} (an earlier attempt's)" in out


def test_a_retry_that_fails_before_its_first_checkpoint_leaves_no_earlier_weights(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A retry that failed before its first validation (out of memory building the model,
    # a graph capture refused) kept the earlier attempt's best.pt in the folder its row
    # and `show` named as this attempt's: loading it gave the old attempt's weights.
    db = tmp_path / "runs.db"
    folder = _lost_with_a_folder(db)
    (folder / "best.pt").write_text("the earlier attempt's weights")
    assert main(["--db", str(db), "retry", "1"]) == 0

    def fails_at_once(run: Any, callbacks: Any, checkpoint_dir: Path) -> Any:
        assert checkpoint_dir == folder
        raise RuntimeError("out of memory building the model")

    run_worker(str(db), "cpu", True, 1, None, None, trainer=fails_at_once,
               install_signals=False)  # fmt: skip
    run = stored_run(db, 1)
    assert run.status == RunStatus.FAILED and run.checkpoint_path == str(folder)
    assert sorted(p.name for p in folder.iterdir()) == ["run.json"]
    capsys.readouterr()
    assert main(["--db", str(db), "show", "1"]) == 0
    out = capsys.readouterr().out
    assert f"checkpoint {folder}\n" in out, out


def test_show_json_gives_the_folders_show_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `show 1 --json` of a run lost with its worker gave "checkpoint_path": null alone,
    # where `show 1` named its folder found on disk (run.json).
    db = tmp_path / "runs.db"
    folder = _lost_with_a_folder(db)
    assert main(["--db", str(db), "show", "1", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["checkpoint_path"] is None  # the row's, as before
    assert shown["checkpoint_folders"] == [str(folder)]
    assert main(["--db", str(db), "show", "2", "--json"]) == 0  # never started: none
    assert json.loads(capsys.readouterr().out)["checkpoint_folders"] == []


def test_show_and_rm_elsewhere_name_the_rows_folders_and_those_not_on_this_host(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A shared queue (PostgreSQL) holds every box's folders. `show` and `rm` from
    # another folder named another box's folder as if it were here ("stay on disk").
    from core.queue import FinalFigures
    from core.run_folders import claim_run_folder

    repo = Repo.open(db_url)
    try:
        repo.enqueue([tiny_run(0), tiny_run(1)])
        worker = repo.register_worker("h", 1, "cpu")
        here = tmp_path / "box" / "checkpoints" / "exp"
        elsewhere = "/another-box/checkpoints/exp/run-2"
        for where in ("here", "elsewhere"):
            run = repo.claim(worker)
            assert run is not None
            owner = run_owner_of(run)
            folder = str(claim_run_folder(here, run.id, owner)) if where == "here" else elsewhere
            repo.finish(run.id, worker, FinalFigures(0.05, checkpoint_path=folder))
    finally:
        repo.close()
    (tmp_path / "other").mkdir()
    monkeypatch.chdir(tmp_path / "other")
    capsys.readouterr()
    assert main(["--db", db_url, "show", "1"]) == 0
    assert f"checkpoint {here / 'run-1'}\n" in capsys.readouterr().out
    assert main(["--db", db_url, "show", "2"]) == 0
    out = " ".join(capsys.readouterr().out.split())  # the path may fold
    assert f"checkpoint {elsewhere} (not found on this host)" in out
    assert main(["--db", db_url, "rm", "1", "2"]) == 0
    assert capsys.readouterr().out == (
        f"removed 2 runs\ncheckpoint folders stay on disk: {here / 'run-1'}\n"
        f"checkpoint folders not found on this host (another machine's?): {elsewhere}\n"
    )


def run_owner_of(run: Any) -> dict[str, Any]:
    from core.run_folders import run_owner

    return run_owner(run.id, run.experiment, run.config_hash, run.created_at)


def writes_best_then_fails(run: Any, callbacks: Any, checkpoint_dir: Path) -> Any:
    """A trainer whose attempt writes its best.pt, then fails (a retry's earlier attempt)."""
    callbacks.on_start()  # as fit() does, before it writes any checkpoint
    (checkpoint_dir / "best.pt").write_text("attempt 1's weights")
    raise RuntimeError("loss became NaN at step 14")


def test_show_says_which_attempt_each_of_a_runs_folders_holds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Attempt 1 trained next to the database, attempt 2 (a retry) under --checkpoints
    # elsewhere and failed at once: `show` named both folders, the first with its best.pt,
    # and nothing said which attempt's weights were which.
    db = tmp_path / "runs.db"
    repo = Repo.open(str(db))
    repo.enqueue([tiny_run(0)])
    repo.close()

    def fails_at_once(run: Any, callbacks: Any, checkpoint_dir: Path) -> Any:
        raise RuntimeError("out of memory building the model")

    other = tmp_path / "other-ck"
    run_worker(
        str(db), "cpu", True, 1, None, None, trainer=writes_best_then_fails, install_signals=False
    )
    assert main(["--db", str(db), "retry", "1"]) == 0
    run_worker(str(db), "cpu", True, 1, None, other, trainer=fails_at_once, install_signals=False)
    first, second = tmp_path / "checkpoints/exp/run-1", other / "exp/run-1"
    assert (first / "best.pt").exists() and not (second / "best.pt").exists()
    capsys.readouterr()
    assert main(["--db", str(db), "show", "1"]) == 0
    out = "".join(capsys.readouterr().out.split())  # the paths fold after a '/'
    assert f"checkpoint{second}(attempt2),{first}(attempt1)config" in out, out


def test_a_retry_whose_own_folder_it_may_not_write_stops_the_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The run's own folder made read-only (by its owner, or owned by root): removing the
    # earlier attempt's best.pt was refused, and the claim took that for another user's
    # folder: the retry trained into a new run-1-3, the old weights kept beside it, and
    # nothing said the folder could not be written.
    from core.errors import CheckpointsNotWritable

    db = tmp_path / "runs.db"
    folder = _lost_with_a_folder(db)
    (folder / "best.pt").write_text("the earlier attempt's weights")
    assert main(["--db", str(db), "retry", "1"]) == 0
    real_unlink = Path.unlink

    def read_only(self: Path, missing_ok: bool = False) -> None:
        if self.parent == folder:  # root ignores chmod: refused as a read-only folder is
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        real_unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", read_only)

    def trains(run: Any, callbacks: Any, checkpoint_dir: Path) -> Any:
        callbacks.on_start()  # as fit() does once the data is there, before its model
        raise AssertionError(f"trained into {checkpoint_dir}")

    with pytest.raises(CheckpointsNotWritable, match=f"make {folder} writable for this user"):
        run_worker(str(db), "cpu", True, 1, None, None, trainer=trains,
                   install_signals=False)  # fmt: skip
    assert not (folder.parent / "run-1-3").exists()
    assert (folder / "best.pt").read_text() == "the earlier attempt's weights"
    run = stored_run(db, 1)
    assert run.status == RunStatus.QUEUED and run.attempts == 1  # as retried: none counted


def test_show_and_rm_elsewhere_find_an_old_rows_relative_folder_next_to_the_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A CLI worker before e2349f3 stored its folder relative to its working folder (the
    # database's, `--db runs.db`): `show 1` from another folder named it twice, once as
    # "checkpoints/exp/run-1 (not found on this host)" though it is here, and --json
    # listed that relative path, which a script read against its own folder.
    from core.queue import FinalFigures
    from core.run_folders import claim_run_folder

    db = tmp_path / "runs.db"
    monkeypatch.chdir(tmp_path)
    repo = Repo.open(str(db))
    try:
        repo.enqueue([tiny_run(0)])
        worker = repo.register_worker("h", 1, "cpu")
        run = repo.claim(worker)
        assert run is not None
        relative = claim_run_folder(Path("checkpoints") / "exp", run.id, run_owner_of(run))
        assert not relative.is_absolute()
        repo.fail(run.id, worker, "boom", FinalFigures(checkpoint_path=str(relative)))
    finally:
        repo.close()
    folder = tmp_path / relative
    (tmp_path / "other").mkdir()
    monkeypatch.chdir(tmp_path / "other")
    capsys.readouterr()
    assert main(["--db", str(db), "show", "1"]) == 0
    out = capsys.readouterr().out
    assert f"checkpoint {folder}\n" in out, out
    assert main(["--db", str(db), "show", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["checkpoint_folders"] == [str(folder)]
    assert main(["--db", str(db), "rm", "1"]) == 0
    assert capsys.readouterr().out == f"removed 1 run\ncheckpoint folders stay on disk: {folder}\n"


def test_a_retry_put_back_for_a_machine_without_data_keeps_the_earlier_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, idx_writer: Any
) -> None:
    # A retry claimed by a worker whose --data-dir lacks the dataset is put back "as if
    # never claimed" (attempts 1 again), but the claim had removed the earlier attempt's
    # best.pt and written "attempt": 2 in run.json: the only weights of the run were gone.
    import core.data as data_module
    from core.errors import NoDataHere
    from core.fit_trainer import FitTrainer

    real = data_module.load_datasets
    monkeypatch.setattr(data_module, "load_datasets", lambda *a, **k: real(*a, **k, download=None))
    monkeypatch.setattr(data_module, "DEBIAN_DATASETS", tmp_path / "no-debian")
    db = tmp_path / "runs.db"
    repo = Repo.open(str(db))
    repo.enqueue([tiny_run(0)])
    repo.close()

    run_worker(
        str(db), "cpu", True, 1, None, None, trainer=writes_best_then_fails, install_signals=False
    )
    folder = tmp_path / "checkpoints/exp/run-1"
    assert main(["--db", str(db), "retry", "1"]) == 0
    only_mnist = str(idx_writer(tmp_path / "m", train=8, test=4, layout="torchvision",
                                class_name="MNIST"))  # fmt: skip
    with pytest.raises(NoDataHere):
        run_worker(str(db), "cpu", True, 1, None, None,
                   trainer=FitTrainer("cpu", only_mnist), install_signals=False)  # fmt: skip
    run = stored_run(db, 1)
    assert run.status == RunStatus.QUEUED and run.attempts == 1  # as retried: none counted
    assert (folder / "best.pt").read_text() == "attempt 1's weights"
    assert json.loads((folder / "run.json").read_text())["attempt"] == 1


@pytest.mark.parametrize("trainer", ["fit", "fit_stack"])
def test_a_paused_worker_resumed_after_another_claimed_its_run_writes_no_checkpoint(
    tmp_path: Path, idx_writer: Any, trainer: str
) -> None:
    # Worker A paused (kill -STOP), its run recovered as lost, retried and claimed by
    # worker B, whose attempt cleared the run's folder; A resumed (kill -CONT) wrote its
    # own last.pt and best.pt into B's folder at its next validation pass.
    from core.data import Location, load_datasets
    from core.recording import RunRecorder, StopFlags
    from core.run_folders import start_attempt
    from core.stack import fit_stack
    from core.train import fit

    folder = idx_writer(tmp_path / "idx", train=32, test=16)
    data = load_datasets(
        "fmnist", 28, "cpu", locations=[Location("t", folder)], cache=folder / "c", download=None
    )
    repo = Repo.open(str(tmp_path / "runs.db"))
    try:
        repo.enqueue([tiny_run(0, batch_size=16, max_inputs=64)])
        paused = repo.register_worker("h", 1, "cpu")
        run = repo.claim(paused)
        assert run is not None
        run_folder = tmp_path / "ck" / "run-1"
        run_folder.mkdir(parents=True)
        # A clock standing still: no cancel check between steps tells A of B's claim.
        recorder = RunRecorder(repo, run.id, StopFlags(), clock=lambda: 0.0, worker_id=paused)
        callbacks = recorder.callbacks()
        callbacks.log_every = 1
        recorded = callbacks.on_train_loss
        assert recorded is not None

        def claimed_by_another_at_the_first_step(point: Any) -> None:
            recorded(point)
            if point.step == 1:
                assert repo.recover_stale(dead_worker_ids=[paused]) == [run.id]
                repo.retry([run.id])
                assert repo.claim(repo.register_worker("h", 2, "cpu")) is not None
                start_attempt(run_folder, run_owner_of(run))  # B's attempt starts there

        callbacks.on_train_loss = claimed_by_another_at_the_first_step
        if trainer == "fit":
            fit(run.config, data, "cpu", callbacks, run_folder)
        else:
            fit_stack([run.config], data, "cpu", [callbacks], [run_folder])
    finally:
        repo.close()
    assert not (run_folder / "last.pt").exists() and not (run_folder / "best.pt").exists()


def test_a_retry_removes_the_temporary_files_of_a_save_killed_midway(tmp_path: Path) -> None:
    # A worker killed (-9) while it saved best.pt left ".best.pt.resconv-partial-PID.k2x_9qab",
    # as big as the model, in the run's folder: a retry removed best.pt but kept it, for
    # good. A person's file named as an older version's temporary ones stays: it may be theirs.
    db = tmp_path / "runs.db"
    folder = _lost_with_a_folder(db)
    left = [".best.pt.resconv-partial-4242.k2x_9qab", ".last.pt.resconv-partial-17.0a1b2c3d"]
    own = [".best.pt.bak", "best.pt.old", "notes.txt", ".last.pt.k2x_9qab7", "x.last.pt.0a1b2c3d",
           ".best.pt.k2x_9qab", ".last.pt.20240101"]  # fmt: skip
    for name in [*left, *own, "best.pt"]:
        (folder / name).write_text("bytes")
    assert main(["--db", str(db), "retry", "1"]) == 0

    def fails_once_started(run: Any, callbacks: Any, checkpoint_dir: Path) -> Any:
        callbacks.on_start()  # as fit() does once the data is there, before its model
        raise RuntimeError("out of memory building the model")

    run_worker(str(db), "cpu", True, 1, None, None, trainer=fails_once_started,
               install_signals=False)  # fmt: skip
    assert sorted(p.name for p in folder.iterdir()) == sorted([*own, "run.json"])


def test_train_checkpoints_remove_the_temporary_files_of_a_save_killed_midway(
    tmp_path: Path,
) -> None:
    from core.config import RunConfig
    from core.train import Checkpoints

    # ".last.pt.20240101": a person's copy, named as an older version's temporary files
    # were (prefix and 8 characters), was removed with them.
    for name in [".last.pt.resconv-partial-4242.k2x_9qab", ".last.pt.bak", ".last.pt.20240101",
                 "last.pt"]:  # fmt: skip
        (tmp_path / name).write_text("bytes")
    Checkpoints(tmp_path, RunConfig(layers=2, channels=4))
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".last.pt.20240101",
        ".last.pt.bak",
        "config.json",
    ]


@pytest.mark.parametrize("new", [True, False], ids=["new-db", "existing-db"])
def test_a_worker_that_claims_nothing_leaves_no_folder_it_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, new: bool
) -> None:
    # `worker --db NEW.db --until-empty` made an empty checkpoints/ beside the database
    # (the writable check makes it) though it trained nothing.
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RESCONV_DB", raising=False)
    db = tmp_path / "new.db"
    if not new:
        Repo.open(str(db)).close()
    argv = ["--db", str(db), "worker", "--until-empty", "--device", "cpu"]
    assert main(argv) == 0
    assert main([*argv, "--checkpoints", "made/ck"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.db"]


def test_a_checkpoint_folder_that_was_there_stays(tmp_path: Path) -> None:
    (tmp_path / "ck").mkdir()
    db = tmp_path / "runs.db"
    argv = ["--db", str(db), "worker", "--until-empty", "--device", "cpu"]
    assert main([*argv, "--checkpoints", str(tmp_path / "ck")]) == 0
    assert (tmp_path / "ck").is_dir()


class WritesBestThenFailsAsAStack:
    """A trainer whose stack's attempt writes each run's best.pt, then fails."""

    def __call__(self, run: Any, callbacks: Any, checkpoint_dir: Path) -> Any:
        return writes_best_then_fails(run, callbacks, checkpoint_dir)

    def train_stack(self, runs: Any, callbacks: Any, dirs: Any) -> Any:
        for cbs in callbacks:  # as fit_stack does, before it writes any checkpoint
            cbs.on_start()
        for folder in dirs:
            (folder / "best.pt").write_text("attempt 1's weights")
        raise RuntimeError("out of memory at step 14")


def test_a_retried_stack_with_one_folder_it_may_not_write_keeps_every_runs_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Runs 1 and 2 stacked, failed, retried; run 2's folder made read-only. The stack's
    # start removed run 1's best.pt and wrote "attempt": 2 in its run.json, then run 2's
    # folder refused its run.json: the worker put both back "none failed", run 1's only
    # weights gone, as f9d0ce9 kept them for a run alone.
    from core.errors import CheckpointsNotWritable
    from core.worker_options import ClaimRules

    db = tmp_path / "runs.db"
    repo = Repo.open(str(db))
    repo.enqueue(tiny_runs(2))
    repo.close()
    trainer = WritesBestThenFailsAsAStack()
    rules = ClaimRules(stack=2)
    run_worker(str(db), "cpu", True, 2, None, None, trainer=trainer, install_signals=False,
               rules=rules)  # fmt: skip
    first, second = (tmp_path / f"checkpoints/exp/run-{n}" for n in (1, 2))
    assert (first / "best.pt").exists() and (second / "best.pt").exists()
    assert main(["--db", str(db), "retry", "1", "2"]) == 0
    real_open = os.open

    def read_only(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        # root ignores chmod: refused as a read-only folder refuses a new file in it
        if second in (Path(path), Path(path).parent):
            raise PermissionError(errno.EACCES, "Permission denied", os.fsdecode(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", read_only)
    with pytest.raises(CheckpointsNotWritable):
        run_worker(str(db), "cpu", True, 2, None, None, trainer=trainer, install_signals=False,
                   rules=rules)  # fmt: skip
    monkeypatch.setattr(os, "open", real_open)
    for folder in (first, second):
        assert (folder / "best.pt").read_text() == "attempt 1's weights", folder
        assert json.loads((folder / "run.json").read_text())["attempt"] == 1, folder
    runs = stored_runs(db)
    assert [(r.status, r.attempts) for r in runs] == [(RunStatus.QUEUED, 1)] * 2


def test_train_refused_for_its_data_leaves_no_checkpoint_folder_it_made(
    queued_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `train --checkpoints new/ck` with no dataset at its --data-dir said so and left an
    # empty new/ck behind: the writable check, before the data loads, makes the folder.
    argv = ["train", "st.yml", "--run", "1", "--device", "cpu", "--data-dir", "nodata"]
    assert main([*argv, "--checkpoints", "new/ck"]) == 2
    assert "dataset not available" in capsys.readouterr().err
    assert not (queued_db.parent / "new").exists()
    (queued_db.parent / "there").mkdir()
    assert main([*argv, "--checkpoints", "there/ck"]) == 2
    assert [p.name for p in (queued_db.parent / "there").iterdir()] == []  # it stays


def test_a_checkpoint_root_another_worker_removes_as_it_is_checked_is_made_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two workers share a checkpoint root: A, which claimed nothing, removes the root it
    # made while still empty as it exits (remove_made), between B's mkdir and B's probe
    # file: B refused to start, "checkpoint folder ... is not writable (No such file or
    # directory)".
    root = tmp_path / "checkpoints"
    made_by_a = worker_module.missing_folders(root)
    real = worker_module.tempfile.TemporaryFile
    exits: list[Path] = []

    def a_exits_first(*args: Any, **kwargs: Any) -> Any:
        if not exits:
            exits.append(root)
            worker_module.remove_made(made_by_a)
        return real(*args, **kwargs)

    monkeypatch.setattr(worker_module.tempfile, "TemporaryFile", a_exits_first)
    check_checkpoint_root(root)
    assert exits == [root] and root.is_dir()


def test_a_checkpoint_root_removed_each_time_it_is_made_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "checkpoints"
    real = worker_module.tempfile.TemporaryFile

    def removed_each_time(*args: Any, **kwargs: Any) -> Any:
        root.rmdir()
        return real(*args, **kwargs)

    monkeypatch.setattr(worker_module.tempfile, "TemporaryFile", removed_each_time)
    with pytest.raises(ConfigError, match=f"checkpoint folder {root} was removed as it was made"):
        check_checkpoint_root(root)


def test_a_rows_folder_whose_run_json_names_another_run_is_not_this_runs(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A shared queue names another box's /srv/ck/exp/run-1; on this box that path held
    # another database's run 1, and `rm` and `show` said it "stays on disk" as this run's.
    from core.queue import FinalFigures
    from core.run_folders import claim_run_folder

    repo = Repo.open(db_url)
    try:
        repo.enqueue([tiny_run(0)])
        worker = repo.register_worker("h", 1, "cpu")
        run = repo.claim(worker)
        assert run is not None
        another = {**run_owner_of(run), "queued_at": run.created_at - 100}
        folder = claim_run_folder(tmp_path / "box" / "exp", run.id, another)
        repo.finish(run.id, worker, FinalFigures(0.05, checkpoint_path=str(folder)))
    finally:
        repo.close()
    (tmp_path / "other").mkdir()
    monkeypatch.chdir(tmp_path / "other")
    capsys.readouterr()
    assert main(["--db", db_url, "show", "1"]) == 0
    out = " ".join(capsys.readouterr().out.split())  # the path may fold
    assert f"checkpoint {folder} (not found on this host)" in out, out
    assert main(["--db", db_url, "rm", "1"]) == 0
    assert capsys.readouterr().out == (
        f"removed 1 run\ncheckpoint folders not found on this host (another machine's?): {folder}\n"
    )
    assert sorted(p.name for p in folder.iterdir()) == ["run.json"]  # left as it was


@pytest.mark.parametrize("damage", ["{not json", "[1, 2]"])
def test_a_rows_folder_whose_run_json_is_damaged_is_still_here(
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    damage: str,
) -> None:
    # A run.json that says nothing of whose the folder is (damaged, as one with none)
    # read as naming another run: the person's own folder, weights in it, was "not
    # found on this host (another machine's?)", sending them to look on other boxes.
    from core.queue import FinalFigures
    from core.run_folders import claim_run_folder

    repo = Repo.open(db_url)
    try:
        repo.enqueue([tiny_run(0)])
        worker = repo.register_worker("h", 1, "cpu")
        run = repo.claim(worker)
        assert run is not None
        folder = claim_run_folder(tmp_path / "box" / "exp", run.id, run_owner_of(run))
        repo.finish(run.id, worker, FinalFigures(0.05, checkpoint_path=str(folder)))
    finally:
        repo.close()
    (folder / "run.json").write_text(damage)
    (tmp_path / "other").mkdir()
    monkeypatch.chdir(tmp_path / "other")
    capsys.readouterr()
    assert main(["--db", db_url, "show", "1"]) == 0
    out = " ".join(capsys.readouterr().out.split())  # the path may fold
    assert f"checkpoint {folder}" in out and "not found on this host" not in out, out
    assert main(["--db", db_url, "rm", "1"]) == 0
    assert capsys.readouterr().out == (
        f"removed 1 run\ncheckpoint folders stay on disk: {folder}\n"
    )


def test_a_retry_cancelled_before_it_started_names_its_folder_as_an_earlier_attempts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Retried, then cancelled while queued: its folder still holds attempt 1's last.pt
    # (no attempt started to remove it), and `show` named it as the cancelled attempt's.
    db = tmp_path / "runs.db"
    folder = _lost_with_a_folder(db)
    assert main(["--db", str(db), "retry", "1"]) == 0
    assert main(["--db", str(db), "cancel", "1"]) == 0
    assert stored_run(db, 1).status == RunStatus.CANCELLED
    capsys.readouterr()
    assert main(["--db", str(db), "show", "1"]) == 0
    out = " ".join(capsys.readouterr().out.split())  # the path may fold
    assert f"checkpoint {folder} (an earlier attempt's)" in out, out
    assert (folder / "last.pt").read_text() == "weights"  # and so it is


_AS_NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def _held_as_another_user(folder: Path) -> subprocess.CompletedProcess[str]:
    """``held_for_train(folder)`` in a process of user nobody: what it prints."""
    import sys

    code = (
        "import sys; from pathlib import Path; from core.errors import ConfigError\n"
        "from core.run_folders import held_for_train\n"
        "try:\n"
        "    with held_for_train(Path(sys.argv[1])): print('held')\n"
        "except ConfigError as error: print(error)\n"
    )
    root = str(Path(__file__).resolve().parents[3])
    return subprocess.run(
        [*_AS_NOBODY, sys.executable, "-c", code, str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=root,
        env={**os.environ, "PYTHONPATH": root},
    )


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None, reason="runs a process as nobody"
)
def test_a_lock_file_another_users_train_left_is_replaced_or_named_not_a_traceback() -> None:
    # A train killed by SIGTERM or SIGKILL leaves DIR/.resconv-train.lock (0644, its
    # user's). Another user's train into the shared folder met PermissionError opening
    # it for writing: a traceback, where before 512ef0d it trained.
    shared = Path(tempfile.mkdtemp(prefix="resconv-shared-"))  # pytest's tmp_path is 0700
    try:
        shared.chmod(0o777)
        lock = shared / ".resconv-train.lock"
        lock.write_text("4242")
        lock.chmod(0o644)
        done = _held_as_another_user(shared)
        assert (done.stdout, done.stderr) == ("held\n", ""), done.stderr
        assert not lock.exists()  # its own, made in place of the one left, gone as it ended

        lock.write_text("4242")  # a train of root's that still trains
        with lock.open() as held:
            fcntl.flock(held, fcntl.LOCK_EX)
            done = _held_as_another_user(shared)
        assert done.stdout == (
            f"checkpoint folder {shared} is in use by another train (pid 4242): "
            "wait for it to end or give another folder\n"
        ), done.stderr

        shared.chmod(0o1777)  # sticky, as /tmp: another user's file cannot be removed
        done = _held_as_another_user(shared)
        assert done.stdout == (
            f"checkpoint folder {shared}: .resconv-train.lock, left by another user's train "
            "that has ended, cannot be removed (Operation not permitted): remove it or give "
            "another folder\n"
        ), done.stderr
        assert lock.read_text() == "4242"
    finally:
        shutil.rmtree(shared)


def test_a_lock_file_that_is_a_link_is_refused_and_what_it_points_to_kept(tmp_path: Path) -> None:
    # DIR/.resconv-train.lock a link (planted in a shared folder, or a person's): the
    # train opened what it pointed to, emptied it and wrote its pid there.
    from core.run_folders import held_for_train

    folder = tmp_path / "ck"
    folder.mkdir()
    notes = tmp_path / "notes.txt"
    notes.write_text("a person's notes")
    (folder / ".resconv-train.lock").symlink_to(notes)
    with pytest.raises(ConfigError) as refused, held_for_train(folder):
        pass
    assert str(refused.value).startswith(
        f"checkpoint folder {folder}: its lock file .resconv-train.lock cannot be opened ("
    ), refused.value
    assert notes.read_text() == "a person's notes"
    assert (folder / ".resconv-train.lock").is_symlink()


def test_a_second_train_into_a_folder_another_train_writes_is_refused(
    queued_db: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Two `train --checkpoints ck` at once each removed the other's last.pt and best.pt
    # and wrote over them: the folder ended with a mix of two runs' weights.
    import core.data

    folder = queued_db.parent / "ck"
    folder.mkdir()
    argv = ["train", "st.yml", "--run", "1", "--device", "cpu", "--checkpoints", str(folder)]
    second: list[tuple[int, str]] = []

    def first_loads_data(*_: Any, **__: Any) -> Any:
        if second:
            raise AssertionError("a second train went on in the folder the first writes")
        second.append((0, ""))
        code = main(argv)  # as if from another shell, while the first holds the folder
        second[0] = (code, capsys.readouterr().err)
        raise ConfigError("the first train ends here")

    monkeypatch.setattr(core.data, "load_datasets", first_loads_data)
    assert main(argv) == 2
    code, err = second[0]
    assert code == 2 and err.count("\n") == 1, err
    assert (
        f"checkpoint folder {folder} is in use by another train (pid {os.getpid()}): "
        "wait for it to end or give another folder"
    ) in err
    assert list(folder.iterdir()) == []  # its lock gone with the first


def test_train_counts_to_max_inputs_as_ls_and_show_do(
    queued_db: Path, tmp_path: Path, idx_writer: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # The bar counted to the inputs whole batches come to (256 for max_inputs 200 at
    # batch size 64; 6,016 for 6,000) where ls and show --follow say 200 (6,000).
    from rich.console import Console

    from core.train import TrainPoint
    from resconv_tui.commands.train import _ProgressBar

    console = Console(force_terminal=True, width=120, record=True)
    with _ProgressBar(console, 200) as bar:
        bar._on_train(TrainPoint(1, 64, 0.5, 3e-4, 10.0, None))
        bar.progress.refresh()
        training = console.export_text()
        bar._on_train(TrainPoint(4, 256, 0.5, 3e-4, 10.0, None))
    shown = console.export_text()
    assert "256/200 inputs" in shown
    # Every input trained, the last validation pass under way: the bar says so, where it
    # said "training" for the minutes a big model's pass takes on a CPU.
    assert "training" in training and "64/200 inputs" in training, training
    assert "validating" not in training, training
    assert "validating ━" in shown and "training" not in shown, shown
    (tmp_path / "odd.yml").write_text(SWEEP.replace("max_inputs: 256", "max_inputs: 200"))
    data = idx_writer(tmp_path / "data")
    argv = ["train", "odd.yml", "--run", "1", "--device", "cpu", "--data-dir", str(data)]
    assert main(argv) == 0
    said = " ".join(capsys.readouterr().out.split())  # wrapped at the terminal's width
    assert "(256 inputs: max_inputs 200 in whole batches, 4 steps, " in said
