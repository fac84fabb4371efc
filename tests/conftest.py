"""Shared fixtures. Keep this file small: fixtures that one test folder needs live there."""

from __future__ import annotations

import os

os.environ.pop("NO_COLOR", None)  # NO_COLOR changes Textual's snapshot SVGs

import gzip  # noqa: E402
import struct  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from postgres_server import running_server  # noqa: E402

IDX_FILES = {
    True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def synthetic_images(count: int, size: int = 28, seed: int = 0) -> bytes:
    """``count`` learnable uint8 images: one bright rectangle each on a black background."""
    import random

    rng = random.Random(seed)
    pixels = bytearray(count * size * size)
    for i in range(count):
        top, left = rng.randrange(size - 8), rng.randrange(size - 8)
        height, width, value = rng.randrange(4, 9), rng.randrange(4, 9), rng.randrange(80, 256)
        for row in range(top, top + height):
            start = i * size * size + row * size + left
            pixels[start : start + width] = bytes([value]) * width
    return bytes(pixels)


def write_idx(
    folder: Path,
    train: int = 256,
    test: int = 128,
    layout: str = "flat-gz",
    class_name: str = "FashionMNIST",
    seed: int = 0,
) -> Path:
    """Write the four IDX files of a tiny dataset; returns ``folder``.

    ``layout``: "flat-gz" (the original .gz files in ``folder``), "flat" (uncompressed
    in ``folder``), "torchvision" (uncompressed in ``folder/<class_name>/raw``) or
    "torchvision-gz".
    """
    raw = folder / class_name / "raw" if layout.startswith("torchvision") else folder
    raw.mkdir(parents=True, exist_ok=True)
    packed = layout.endswith("gz")
    for is_train, count in ((True, train), (False, test)):
        images_name, labels_name = IDX_FILES[is_train]
        images = struct.pack(">IIII", 2051, count, 28, 28) + synthetic_images(
            count, seed=seed + is_train
        )
        labels = struct.pack(">II", 2049, count) + bytes(i % 10 for i in range(count))
        for name, content in ((images_name, images), (labels_name, labels)):
            if packed:
                (raw / f"{name}.gz").write_bytes(gzip.compress(content))
            else:
                (raw / name).write_bytes(content)
    return folder


@pytest.fixture(autouse=True)
def own_user_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tests' unpacked datasets go to a cache of the test session (worker and train
    processes they start inherit it), never the user's: ~/.cache/resconv-tui filled up
    with copies of test data. A test may set RESCONV_CACHE itself."""
    monkeypatch.setenv("RESCONV_CACHE", str(tmp_path_factory.getbasetemp() / "resconv-cache"))


@pytest.fixture(autouse=True)
def database_variable_kept() -> Iterator[None]:
    """A test that leaves $RESCONV_DB changed fails, and the variable is put back: the
    tests after it would open that database (a leaked PostgreSQL URL failed a later
    checkpoint test, in one order of the files only)."""
    before = os.environ.get("RESCONV_DB")
    yield
    after = os.environ.get("RESCONV_DB")
    if after == before:
        return
    if before is None:
        del os.environ["RESCONV_DB"]
    else:
        os.environ["RESCONV_DB"] = before
    pytest.fail(f"the test left RESCONV_DB={after!r} (was {before!r}): use monkeypatch")


@pytest.fixture(scope="session")
def idx_writer() -> Callable[..., Path]:
    """The ``write_idx`` function: ``idx_writer(tmp_path / "data", layout="flat-gz")``."""
    return write_idx


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    """A PostgreSQL server for the session (see tests/postgres_server.py), or a skip."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("psycopg is not installed (pip install -e '.[test]')")
    try:
        server = running_server()
        url = server.__enter__()
    except Exception as exc:  # no binaries, no 'postgres' user, a failed start
        pytest.skip(f"no PostgreSQL server for the tests: {exc}")
    try:
        yield url
    finally:
        server.__exit__(None, None, None)
