"""A damaged dataset file (truncated, empty, not the size its IDX header gives) is a
one-line DataError naming the file, at the worker's start and when loading: never an
EOFError or torchvision's reshape error about a cache copy, never a run trained on it."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path

import pytest

from core.data import Location, check_data_dir, dataset_cache, load_datasets
from core.errors import DataError

Writer = Callable[..., Path]
IMAGES = "train-images-idx3-ubyte"


def load(folder: Path, cache: Path, label: str = "--data-dir") -> object:
    return load_datasets(
        "fmnist", 28, "cpu", locations=[Location(label, folder)], cache=cache, download=None
    )


def cut_gz(path: Path) -> None:
    """Keep the first half of a .gz file, as an interrupted copy does."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def part_of_the_data(path: Path) -> None:
    """A valid .gz holding only the first 1,000 bytes of the IDX file."""
    path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes())[:1000]))


DAMAGE = {
    "truncated gz": (cut_gz, r"is truncated: its gzip data ends before the end marker"),
    "empty file": (lambda p: p.write_bytes(b""), r"is empty \(0 bytes\)"),
    "part of the data": (
        part_of_the_data,
        r"is truncated: unpacks to 1,000 bytes, its IDX header says 40x28x28 \(31,376 bytes\)",
    ),
    "not gzip": (lambda p: p.write_bytes(b"not gzip"), r"is damaged: BadGzipFile"),
}


def test_a_damaged_file_leaves_no_part_of_the_dataset_in_the_cache(
    tmp_path: Path, idx_writer: Writer
) -> None:
    # The three files before it were unpacked: 53 MB of Fashion-MNIST kept for good, under
    # a key (the files' content) that the repaired files never have again.
    folder = idx_writer(tmp_path / "data", train=40, test=8)
    cut_gz(folder / "t10k-labels-idx1-ubyte.gz")  # the last of the four, in sorted order too
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz is truncated"):
        load(folder, tmp_path / "cache")
    unpacked = dataset_cache("fmnist", tmp_path / "cache") / "unpacked"
    assert not unpacked.exists() or not any(p.is_file() for p in unpacked.rglob("*"))


@pytest.mark.parametrize("damage", DAMAGE)
@pytest.mark.parametrize("check", ["load", "worker start"])
def test_a_damaged_file_is_named_in_one_line(
    tmp_path: Path, idx_writer: Writer, damage: str, check: str
) -> None:
    folder = idx_writer(tmp_path / "data", train=40, test=8)
    spoil, why = DAMAGE[damage]
    spoil(folder / f"{IMAGES}.gz")
    with pytest.raises(DataError) as caught:
        if check == "load":
            load(folder, tmp_path / "cache")
        else:
            check_data_dir(folder, cache=tmp_path / "cache")
    message = str(caught.value)
    assert message.startswith(f"{folder / IMAGES}.gz ") and "\n" not in message
    assert caught.match(why) and message.endswith("; replace it with the original file")
    # Nothing of the damaged file in the cache: a later load checks it again.
    unpacked = dataset_cache("fmnist", tmp_path / "cache") / "unpacked"
    assert not list(unpacked.glob(f"*/FashionMNIST/raw/{IMAGES}"))


def test_a_damaged_file_is_not_skipped_for_a_later_place(
    tmp_path: Path, idx_writer: Writer
) -> None:
    # The first place holding the four files wins, damaged or not: training on the next
    # place's files would hide the damage (and may be another copy than the one meant).
    bad = idx_writer(tmp_path / "env", train=40, test=8)
    cut_gz(bad / f"{IMAGES}.gz")
    good = idx_writer(tmp_path / "good", train=40, test=8)
    with pytest.raises(DataError, match=r"env/train-images-idx3-ubyte.gz is truncated"):
        load_datasets(
            "fmnist", 28, "cpu", cache=tmp_path / "cache", download=None,
            locations=[Location("$RESCONV_DATA", bad), Location("user cache", good)],
        )  # fmt: skip


def test_an_uncompressed_file_read_in_place_is_checked_too(
    tmp_path: Path, idx_writer: Writer
) -> None:
    folder = idx_writer(tmp_path / "data", train=40, test=8, layout="torchvision")
    labels = folder / "FashionMNIST" / "raw" / "t10k-labels-idx1-ubyte"
    labels.write_bytes(labels.read_bytes() + b"\0\0")
    with pytest.raises(DataError, match=r"labels-idx1-ubyte has the wrong size: holds 18 bytes, "
                       r"its IDX header says 8 \(16 bytes\)"):  # fmt: skip
        load(folder, tmp_path / "cache")


def test_a_damaged_cache_copy_is_unpacked_again(tmp_path: Path, idx_writer: Writer) -> None:
    folder = idx_writer(tmp_path / "data", train=40, test=8)
    cache = tmp_path / "cache"
    load(folder, cache)
    (copy,) = (dataset_cache("fmnist", cache) / "unpacked").glob(f"*/FashionMNIST/raw/{IMAGES}")
    copy.write_bytes(b"")  # e.g. left by an older version that did not check
    assert len(load(folder, cache).train) == 40  # type: ignore[attr-defined]
    assert copy.stat().st_size == 16 + 40 * 28 * 28


def test_the_cli_refuses_a_damaged_data_dir_in_one_line(
    tmp_path: Path,
    idx_writer: Writer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from core.queue import Repo, RunStatus
    from resconv_tui.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RESCONV_CACHE", str(tmp_path / "cache"))
    folder = idx_writer(tmp_path / "data", train=40, test=8)
    cut_gz(folder / f"{IMAGES}.gz")
    (tmp_path / "st.yml").write_text("name: st\nlayers: 1\nmax_inputs: 64\nmatrix:\n  ch: [4]\n")
    assert main(["queue", "st.yml", "--db", "runs.db"]) == 0
    capsys.readouterr()
    why = f"resconv-tui: dataset not available: {folder / IMAGES}.gz is truncated: "
    worker = ["worker", "--db", "runs.db", "--until-empty", "--device", "cpu"]
    assert main([*worker, "--data-dir", str(folder)]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith(why)
    repo = Repo.open("runs.db", create=False)
    assert [(r.status, r.attempts) for r in repo.list_runs()] == [(RunStatus.QUEUED, 0)]
    repo.close()
    train = ["train", "st.yml", "--run", "1", "--device", "cpu"]
    assert main([*train, "--data-dir", str(folder)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(why) and "\n" not in err
    monkeypatch.setenv("RESCONV_DATA", str(folder))
    assert main(train) == 2
    assert capsys.readouterr().err.strip().startswith(why)
