"""Finding and loading the dataset: search order, layouts, cache, errors, nearest resize."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

import core.data as data_module
from core.data import (
    Location,
    dataset_cache,
    default_locations,
    load_datasets,
    resize_nearest,
)
from core.errors import DataError

# seed-spec Appendix C: legacy-nearest source index per destination index.
MAP_32 = [0, 0, 1, 2, 3, 4, 5, 6, 7, 7, 8, 9, 10, 11, 12, 13, 14, 14, 15, 16, 17, 18, 19, 20, 21,
          21, 22, 23, 24, 25, 26, 27]  # fmt: skip
MAP_64 = [0, 0, 0, 1, 1, 2, 2, 3, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 7, 8, 8, 9, 9, 10, 10, 10, 11, 11,
          12, 12, 13, 13, 14, 14, 14, 15, 15, 16, 16, 17, 17, 17, 18, 18, 19, 19, 20, 20, 21, 21,
          21, 22, 22, 23, 23, 24, 24, 24, 25, 25, 26, 26, 27, 27]  # fmt: skip

Writer = Callable[..., Path]


def no_download(dataset: str, root: Path) -> None:
    raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\nno network in tests")


def load(locations: list[Location], cache: Path, size: int = 28, **kwargs: object):
    kwargs.setdefault("download", no_download)
    return load_datasets("fmnist", size, "cpu", locations=locations, cache=cache, **kwargs)


@pytest.mark.parametrize("layout", ["flat-gz", "flat", "torchvision", "torchvision-gz"])
def test_every_layout_loads_both_splits(tmp_path: Path, idx_writer: Writer, layout: str) -> None:
    folder = idx_writer(tmp_path / "data", train=40, test=24, layout=layout)
    data = load([Location("x", folder)], tmp_path / "cache")
    assert data.train.shape == (40, 1, 28, 28) and data.validation.shape == (24, 1, 28, 28)
    assert data.train.dtype == torch.uint8 and data.source == str(folder)
    assert data.train.max() > 0


def test_torchvision_layout_uncompressed_is_read_in_place(
    tmp_path: Path, idx_writer: Writer
) -> None:
    folder = idx_writer(tmp_path / "data", layout="torchvision")
    load([Location("x", folder)], tmp_path / "cache")
    assert not (tmp_path / "cache").exists()


def test_flat_gz_is_unpacked_once_into_a_cache_folder_per_content(
    tmp_path: Path, idx_writer: Writer
) -> None:
    first = idx_writer(tmp_path / "one", train=10, test=5, seed=1)
    second = idx_writer(tmp_path / "two", train=12, test=6, seed=2)
    same = idx_writer(tmp_path / "same-as-one", train=10, test=5, seed=1)
    cache = tmp_path / "cache"
    a, b = load([Location("x", first)], cache), load([Location("x", second)], cache)
    assert len(a.train) == 10 and len(b.train) == 12  # the two sources never mix
    # The same files in another folder share the first one's copy (it was one copy per
    # folder: hundreds of copies of one dataset from tests' temporary folders).
    assert torch.equal(load([Location("x", same)], cache).train, a.train)
    unpacked = sorted((dataset_cache("fmnist", cache) / "unpacked").iterdir())
    assert len(unpacked) == 2
    raw = unpacked[0] / "FashionMNIST" / "raw"
    assert sorted(p.name for p in raw.iterdir()) == sorted(
        ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
         "t10k-labels-idx1-ubyte"]
    )  # fmt: skip
    # A second load reads the unpacked copy without unpacking again.
    stamps = {p: p.stat().st_mtime_ns for p in raw.iterdir()}
    assert torch.equal(load([Location("x", first)], cache).train, a.train)
    assert stamps == {p: p.stat().st_mtime_ns for p in raw.iterdir()}


def test_replaced_source_files_are_unpacked_afresh(tmp_path: Path, idx_writer: Writer) -> None:
    folder = idx_writer(tmp_path / "data", train=10, test=5, seed=1)
    assert len(load([Location("x", folder)], tmp_path / "cache").train) == 10
    idx_writer(folder, train=14, test=5, seed=2)
    assert len(load([Location("x", folder)], tmp_path / "cache").train) == 14


@pytest.mark.parametrize("winner", [0, 1, 2, 3])
def test_the_first_location_holding_the_files_wins(
    tmp_path: Path, idx_writer: Writer, winner: int
) -> None:
    labels = ["--data-dir", "$RESCONV_DATA", "user cache", "debian"]
    locations = [Location(label, tmp_path / label.strip("-$ ")) for label in labels]
    for i, location in enumerate(locations[winner:], start=winner):
        idx_writer(location.path, train=10 + i, test=5)  # later ones hold files too
    data = load(locations, tmp_path / "cache")
    assert data.source == str(locations[winner].path)
    assert len(data.train) == 10 + winner


def test_download_is_the_last_resort(tmp_path: Path, idx_writer: Writer) -> None:
    calls = []

    def fake_download(dataset: str, root: Path) -> None:
        calls.append((dataset, root))
        idx_writer(root, train=9, test=3, layout="torchvision")

    data = load([Location("a", tmp_path / "missing")], tmp_path / "cache", download=fake_download)
    assert calls == [("fmnist", dataset_cache("fmnist", tmp_path / "cache"))]
    assert len(data.train) == 9 and data.source.startswith("downloaded to ")


def test_nothing_found_names_every_place_and_the_fix(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    locations = [Location("--data-dir", tmp_path / "empty"), Location("user cache", tmp_path / "c")]
    with pytest.raises(DataError) as caught:
        load(locations, tmp_path / "cache")
    message = str(caught.value)
    assert str(tmp_path / "empty") in message and str(tmp_path / "c") in message
    assert "--data-dir" in message and "user cache" in message
    assert "no network in tests" in message  # the download failure is folded in
    assert "RESCONV_DATA" in message and "apt install dataset-fashion-mnist" in message


def test_the_user_cache_finds_the_published_copy_unpacked_there_from_another_folder(
    tmp_path: Path, idx_writer: Writer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A worker started without $RESCONV_DATA on a box that had trained: "user cache: ...
    # (no train-images-idx3-ubyte(.gz) etc. there)", a whole checked copy one folder down.
    cache = tmp_path / "cache"
    published = idx_writer(tmp_path / "published", train=10, test=5, seed=1)
    first = load([Location("$RESCONV_DATA", published)], cache)
    (copy,) = (dataset_cache("fmnist", cache) / "unpacked").iterdir()
    labels = copy / "FashionMNIST" / "raw" / "t10k-labels-idx1-ubyte"
    digest = hashlib.md5(labels.read_bytes(), usedforsecurity=False).hexdigest()
    monkeypatch.setitem(data_module.PUBLISHED_TEST_LABELS, digest, "FashionMNIST")
    # Other files unpacked later (a test's 12 images, a subset): newer, and never taken.
    load([Location("$RESCONV_DATA", idx_writer(tmp_path / "other", train=12, test=6, seed=2))],
         cache)  # fmt: skip
    (default,) = default_locations("fmnist", env={"RESCONV_CACHE": str(cache)})[:1]
    assert default.label == "user cache" and default.copies
    again = load([default], cache)
    assert torch.equal(again.train, first.train) and again.source == str(copy)
    # A copy missing a file (left by an older version) is no copy: not found, said so.
    labels.unlink()
    with pytest.raises(DataError, match="user cache: "):
        load([default], cache)


def test_default_locations_follow_the_documented_order(tmp_path: Path) -> None:
    env = {"RESCONV_DATA": str(tmp_path / "env"), "RESCONV_CACHE": str(tmp_path / "cache")}
    locations = default_locations("fmnist", tmp_path / "arg", env=env)
    assert [loc.path for loc in locations] == [
        tmp_path / "arg",
        tmp_path / "env",
        tmp_path / "cache" / "data" / "fashion-mnist",
        Path("/usr/share/datasets/fashion-mnist"),
    ]
    mnist = default_locations("mnist", env={"HOME": "/h", "RESCONV_CACHE": "/c"})
    assert [loc.path for loc in mnist] == [Path("/c/data/mnist"), Path("/usr/share/datasets/mnist")]


def test_an_empty_resconv_data_is_said_not_skipped_silently(tmp_path: Path) -> None:
    # `export RESCONV_DATA="$(realpath ../shared/...)"` in a clone elsewhere set it to "":
    # the list of places looked in left it out, and nothing said why it was not used.
    env = {"RESCONV_DATA": "", "RESCONV_CACHE": str(tmp_path / "cache")}
    locations = default_locations("fmnist", env=env)
    assert locations[0].label == "$RESCONV_DATA" and locations[0].empty
    with pytest.raises(DataError, match=r"\$RESCONV_DATA: set, but empty \(did the command"):
        load(locations, tmp_path / "cache")


def test_mnist_uses_its_own_class_folder(tmp_path: Path, idx_writer: Writer) -> None:
    folder = idx_writer(tmp_path / "m", train=7, test=3, layout="torchvision", class_name="MNIST")
    data = load_datasets(
        "mnist", 28, "cpu", locations=[Location("x", folder)], cache=tmp_path / "c", download=None
    )
    assert len(data.train) == 7


def test_unknown_dataset_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="unknown dataset"):
        load_datasets("cifar", 28, "cpu", locations=[], cache=tmp_path, download=None)


@pytest.mark.parametrize(("size", "index_map"), [(32, MAP_32), (64, MAP_64)])
def test_resize_is_the_logbooks_legacy_nearest(size: int, index_map: list[int]) -> None:
    # Pixel (r, c) holds a unique code, so the output shows which source pixel it copied.
    codes = torch.arange(28 * 28, dtype=torch.int32).view(1, 1, 28, 28)
    rows, cols = (codes // 28).to(torch.uint8), (codes % 28).to(torch.uint8)
    assert resize_nearest(rows, size)[0, 0, :, 0].tolist() == index_map
    assert resize_nearest(cols, size)[0, 0, 0, :].tolist() == index_map
    assert resize_nearest(rows, size).dtype == torch.uint8


def test_loaded_splits_are_resized(tmp_path: Path, idx_writer: Writer) -> None:
    folder = idx_writer(tmp_path / "data", train=6, test=4, layout="torchvision")
    native = load([Location("x", folder)], tmp_path / "cache")
    big = load([Location("x", folder)], tmp_path / "cache", size=64)
    assert big.train.shape == (6, 1, 64, 64)
    assert torch.equal(big.validation, resize_nearest(native.validation, 64))
    index = torch.tensor(MAP_64)
    assert torch.equal(big.train[:, :, :, :], native.train[:, :, index][:, :, :, index])


def test_environment_variables_drive_the_real_defaults(
    tmp_path: Path, idx_writer: Writer, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = idx_writer(tmp_path / "env-data", train=11, test=4)
    monkeypatch.setenv("RESCONV_DATA", str(folder))
    monkeypatch.setenv("RESCONV_CACHE", str(tmp_path / "cache"))
    data = load_datasets("fmnist", 28, "cpu", download=no_download)
    assert data.source == str(folder) and len(data.train) == 11
    assert (tmp_path / "cache" / "data" / "fashion-mnist" / "unpacked").is_dir()
    explicit = idx_writer(tmp_path / "arg-data", train=13, test=4)
    assert len(load_datasets("fmnist", 28, "cpu", data_dir=explicit).train) == 13


def test_a_partial_folder_says_which_files_are_missing(tmp_path: Path, idx_writer: Writer) -> None:
    folder = idx_writer(tmp_path / "partial")
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match=r"missing t10k-labels-idx1-ubyte\(\.gz\)"):
        load([Location("--data-dir", folder)], tmp_path / "cache")


def test_a_corrupt_gz_is_reported_not_raised_raw(tmp_path: Path, idx_writer: Writer) -> None:
    folder = idx_writer(tmp_path / "bad")
    (folder / "train-images-idx3-ubyte.gz").write_bytes(b"not gzip")
    with pytest.raises(DataError, match=r"bad/train-images-idx3-ubyte.gz is damaged: BadGzipFile"):
        load([Location("--data-dir", folder)], tmp_path / "cache")


def test_a_flat_folder_of_the_other_dataset_is_not_this_one(
    tmp_path: Path, idx_writer: Writer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Same four file names: MNIST's published files passed for Fashion-MNIST's (and back),
    # so RESCONV_DATA=.../fashion-mnist trained a dataset: mnist run on Fashion-MNIST.
    import hashlib

    import core.data as data

    folder = idx_writer(tmp_path / "mnist-files", train=7, test=3)
    labels = (folder / "t10k-labels-idx1-ubyte.gz").read_bytes()
    monkeypatch.setitem(data.PUBLISHED_TEST_LABELS, hashlib.md5(labels).hexdigest(), "MNIST")
    assert data.find_files(folder, "MNIST") is not None
    assert data.find_files(folder, "FashionMNIST") is None
    with pytest.raises(DataError, match="holds MNIST's files"):
        load([Location("$RESCONV_DATA", folder)], tmp_path / "cache")


def test_tests_never_write_to_the_users_cache() -> None:
    # tests/conftest.py's own_user_cache: ~/.cache/resconv-tui held ~225 unpacked copies
    # of test data, one per temporary folder (it is keyed by content now as well).
    from core.data import cache_root

    assert Path.home() / ".cache" not in cache_root().parents
