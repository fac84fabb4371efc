"""An explicit --data-dir is used or refused, never skipped for $RESCONV_DATA."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from core.data import check_data_dir, load_datasets
from core.errors import DataError

Writer = Callable[..., Path]


def no_download(dataset: str, root: Path) -> None:
    raise AssertionError("the search went on past --data-dir")


@pytest.fixture
def env_data(tmp_path: Path, idx_writer: Writer, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Good files in $RESCONV_DATA: what the search used to fall back on."""
    folder = idx_writer(tmp_path / "env-data", train=11, test=4)
    monkeypatch.setenv("RESCONV_DATA", str(folder))
    monkeypatch.setenv("RESCONV_CACHE", str(tmp_path / "cache"))
    return folder


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("missing", "does not exist"),
        ("empty", "no train-images-idx3-ubyte(.gz) etc. there"),
        ("a-file", "not a folder"),
    ],
)
def test_an_unusable_data_dir_is_an_error_naming_it(
    tmp_path: Path, env_data: Path, name: str, why: str
) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "a-file").write_text("")
    with pytest.raises(DataError) as caught:
        load_datasets("fmnist", 28, "cpu", data_dir=tmp_path / name, download=no_download)
    message = str(caught.value)
    assert message.startswith(f"--data-dir {tmp_path / name}: {why}; ")
    assert "four FashionMNIST files" in message and "\n" not in message


def test_a_good_data_dir_still_wins_over_the_environment(
    tmp_path: Path, env_data: Path, idx_writer: Writer
) -> None:
    explicit = idx_writer(tmp_path / "arg-data", train=13, test=4)
    data = load_datasets("fmnist", 28, "cpu", data_dir=explicit, download=no_download)
    assert data.source == str(explicit) and len(data.train) == 13
    assert len(load_datasets("fmnist", 28, "cpu", download=no_download).train) == 11


def test_the_worker_check_takes_either_dataset(tmp_path: Path, idx_writer: Writer) -> None:
    check_data_dir(idx_writer(tmp_path / "f", train=2, test=2))
    check_data_dir(idx_writer(tmp_path / "m", train=2, test=2, layout="torchvision",
                              class_name="MNIST"))  # fmt: skip
    with pytest.raises(DataError, match=r"^--data-dir .*nope: does not exist; .*MNIST files"):
        check_data_dir(tmp_path / "nope")


def test_worker_refuses_a_missing_data_dir_before_claiming(
    tmp_path: Path,
    env_data: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from core.queue import Repo, RunStatus
    from resconv_tui.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "st.yml").write_text("name: st\nlayers: 2\nmax_inputs: 64\nmatrix:\n  ch: [4]\n")
    assert main(["queue", "st.yml", "--db", "runs.db"]) == 0
    argv = ["worker", "--db", "runs.db", "--until-empty", "--device", "cpu"]
    assert main([*argv, "--data-dir", str(tmp_path / "typo")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"resconv-tui: dataset not available: --data-dir {tmp_path}/typo")
    repo = Repo.open("runs.db", create=False)
    assert [(r.status, r.attempts) for r in repo.list_runs()] == [(RunStatus.QUEUED, 0)]
    repo.close()


@pytest.mark.parametrize("data_dir", [False, True])
def test_an_unusable_cache_is_blamed_not_the_data_folder(
    tmp_path: Path, env_data: Path, monkeypatch: pytest.MonkeyPatch, data_dir: bool
) -> None:
    # RESCONV_CACHE naming a file hid a good $RESCONV_DATA ("not found", "set RESCONV_DATA")
    # and blamed a good --data-dir ("cannot use it: NotADirectoryError").
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("RESCONV_CACHE", str(tmp_path / "a-file"))
    with pytest.raises(DataError) as caught:
        load_datasets("fmnist", 28, "cpu", data_dir=env_data if data_dir else None,
                      download=no_download)  # fmt: skip
    message = str(caught.value)
    assert message.startswith(f"RESCONV_CACHE={tmp_path / 'a-file'}: cannot keep the unpacked ")
    assert "(Not a directory: " in message and "\n" not in message
    assert message.endswith("; point RESCONV_CACHE at a writable folder")
    with pytest.raises(DataError, match=r"^RESCONV_CACHE=.*a-file: cannot keep"):
        check_data_dir(env_data)  # the worker's start says the same


@pytest.mark.parametrize("option", ["--data-dir", "--checkpoints"])
@pytest.mark.parametrize("command", ["worker", "python -m core.worker", "train"])
def test_an_empty_folder_option_is_refused_not_taken_as_not_given(
    tmp_path: Path,
    env_data: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    option: str,
    command: str,
) -> None:
    # `--data-dir "$DIR"` with DIR unset trained from $RESCONV_DATA (and an empty
    # --checkpoints wrote to the default checkpoints/) without a word, as --db "" is not.
    import core.worker
    from core.queue import Repo, RunStatus
    from resconv_tui.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "st.yml").write_text("name: st\nlayers: 1\nmax_inputs: 64\nmatrix:\n  ch: [4]\n")
    assert main(["queue", "st.yml", "--db", "runs.db"]) == 0
    argv = {
        "worker": ["worker", "--db", "runs.db", "--until-empty", "--device", "cpu"],
        "python -m core.worker": ["--db", "runs.db", "--until-empty", "--device", "cpu"],
        "train": ["train", "st.yml", "--run", "1", "--device", "cpu"],
    }[command] + [option, ""]
    entry = core.worker.main if command.startswith("python") else main
    with pytest.raises(SystemExit) as stopped:
        entry(argv)
    assert stopped.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.endswith(f"error: argument {option}: empty: give a folder")
    repo = Repo.open("runs.db", create=False)
    assert [r.status for r in repo.list_runs()] == [RunStatus.QUEUED]
    repo.close()
    assert not (tmp_path / "checkpoints").exists()
