"""Locate and load Fashion-MNIST / MNIST as uint8 tensors resident on the device.

The data folder is searched in this order (the first that holds the four files wins):

1. the explicit ``data_dir`` (CLI ``--data-dir``): if given, it must hold the
   files; the search does not go on past it (that would train on data the user
   did not choose, without a word)
2. ``$RESCONV_DATA``
3. the user cache: ``$RESCONV_CACHE`` or ``~/.cache/resconv-tui``, ``data/<dataset>``
   (torchvision's download there, else the newest copy of the published files unpacked
   there from a folder)
4. Debian's ``/usr/share/datasets/<dataset>`` (package ``dataset-fashion-mnist``)
5. torchvision's download into the user cache

A folder may hold the four original files flat (``train-images-idx3-ubyte.gz``
..., gzipped or not) or torchvision's layout (``FashionMNIST/raw/...``).
torchvision's classes only read uncompressed files in their own layout, so
anything else is copied once into the user cache in that layout, in a folder
keyed by the files' content (the same dataset in two folders shares one copy),
with atomic writes (a crash never leaves a half file).
Every file is checked against its IDX header (``idx_problem``): the header gives
the item count and dimensions, hence the exact length, so a truncated, empty or
wrong-size file is a DataError naming it, not an EOFError or a reshape error later.

Images are resized with PyTorch's legacy ``nearest`` (source index =
floor(dst * 28 / size)), which is what the logbook's torchvision ``resize(...,
NEAREST)`` did. Labels are ignored: the task only needs pixels.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import socket
import zlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from core.errors import DataError
from core.files import atomic_write

# The four original files, as torchvision names them once uncompressed.
FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
LABELS_FILE = "t10k-labels-idx1-ubyte"
# MD5 of the published t10k labels, packed and unpacked -> torchvision class name.
PUBLISHED_TEST_LABELS = {
    "bb300cfdad3c16e7a12a480ee83cd310": "FashionMNIST",
    "15d484375f8d13e6eb1aabb0c3f46965": "FashionMNIST",
    "ec29112dd5afa0611ce80d1b7f02629c": "MNIST",
    "27ae3e4e09519cfbb04c329615203637": "MNIST",
}
# dataset key -> (torchvision class name, folder name in caches and /usr/share/datasets)
DATASETS: dict[str, tuple[str, str]] = {
    "fmnist": ("FashionMNIST", "fashion-mnist"),
    "mnist": ("MNIST", "mnist"),
}
ANY = "any"  # check_data_dir: a folder with either dataset will do
NATIVE_SIZE = 28
DOWNLOAD_TIMEOUT_S = 30  # a firewalled host should fail, not hang for minutes
IDX_UBYTE = 0x08  # IDX type code of unsigned bytes: the one type of the four files


@dataclass(frozen=True)
class Datasets:
    """Both splits of one dataset as uint8 (N, 1, H, W) tensors on the training device."""

    train: torch.Tensor
    validation: torch.Tensor
    source: str  # the folder the files came from (or "downloaded to ...")


@dataclass(frozen=True)
class Location:
    """One place to look for a data folder, with the reason it is on the list."""

    label: str  # e.g. "--data-dir", "$RESCONV_DATA", "user cache"
    path: Path
    explicit: bool = False  # named by the user for this run: unusable is an error, not a skip
    empty: bool = False  # named, but as "": said where it looked, not looked in (not ".")
    copies: bool = False  # the user cache: the copies unpacked there from other folders too


Downloader = Callable[[str, Path], None]
DEBIAN_DATASETS = Path("/usr/share/datasets")  # package dataset-fashion-mnist puts it here


# ----- where to look -----------------------------------------------------------------


def cache_root(env: Mapping[str, str] | None = None) -> Path:
    """The user cache: ``$RESCONV_CACHE`` or ``~/.cache/resconv-tui``."""
    env = os.environ if env is None else env
    return Path(env.get("RESCONV_CACHE") or Path.home() / ".cache" / "resconv-tui")


def dataset_cache(dataset: str, cache: Path) -> Path:
    """The dataset's folder inside the user cache, e.g. ``<cache>/data/fashion-mnist``."""
    return cache / "data" / _dataset_info(dataset)[1]


def default_locations(
    dataset: str,
    data_dir: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> list[Location]:
    """The search list of the module docstring, minus the download."""
    env = os.environ if env is None else env
    folder = _dataset_info(dataset)[1]
    locations = []
    if data_dir:
        locations.append(Location("--data-dir", Path(data_dir), explicit=True))
    if env.get("RESCONV_DATA", "").strip():
        locations.append(Location("$RESCONV_DATA", Path(env["RESCONV_DATA"])))
    elif "RESCONV_DATA" in env:  # `export RESCONV_DATA="$(realpath ...)"` of a missing folder
        locations.append(Location("$RESCONV_DATA", Path(), empty=True))
    locations.append(Location("user cache", dataset_cache(dataset, cache_root(env)), copies=True))
    debian = "package dataset-fashion-mnist" if dataset == "fmnist" else "Debian datasets"
    locations.append(Location(debian, DEBIAN_DATASETS / folder))
    return locations


def check_data_dir(data_dir: str | os.PathLike[str], cache: Path | None = None) -> None:
    """A DataError naming ``data_dir`` if it holds neither dataset's four files, or naming
    the file if one is damaged (truncated, empty, not the size its header gives).

    For the worker's start: an explicit folder is never skipped (see the module
    doc), so a typo or a damaged file would fail every queued run in turn. The worker
    trains runs of either dataset, so either will do here; a run whose dataset is not
    there goes back to the queue and stops the worker (``NoDataHere``). Each dataset
    found is prepared as a load would (``torchvision_root``: checked whole and unpacked
    into the cache once), so the first run reads the checked copy, not unpacking again.
    """
    location = Location("--data-dir", Path(data_dir), explicit=True)
    try:
        found = [key for key, (name, _) in DATASETS.items() if find_files(location.path, name)]
        for dataset in found:
            torchvision_root(location.path, dataset, cache_root() if cache is None else cache)
        if found:
            return
        why = _why_not(location.path)
    except OSError as exc:
        why = f"cannot use it: {_first_line(exc)}"
    raise DataError(_explicit_message(ANY, location, why))


# ----- finding and preparing a folder ---------------------------------------------


def find_files(folder: Path, class_name: str) -> dict[str, Path] | None:
    """The four files in ``folder`` (flat or torchvision layout, .gz or not), or None.

    MNIST's and Fashion-MNIST's files have the same names: a flat folder holding the
    other dataset's published files (told by its 10 KB test labels) is not this one's,
    or an MNIST run would train on Fashion-MNIST without a word."""
    for candidate in (folder / class_name / "raw", folder / "raw", folder):
        found = {}
        for name in FILES:
            plain, packed = candidate / name, candidate / f"{name}.gz"
            found[name] = plain if plain.is_file() else packed if packed.is_file() else None
        if all(found.values()) and published_as(found[LABELS_FILE]) in (None, class_name):
            return {name: path for name, path in found.items() if path is not None}
    return None


def published_as(labels: Path | None) -> str | None:
    """Which dataset's published test labels ``labels`` (.gz or not) are, if either's."""
    if labels is None:
        return None
    digest = hashlib.md5(labels.read_bytes(), usedforsecurity=False).hexdigest()
    return PUBLISHED_TEST_LABELS.get(digest)


def torchvision_root(folder: Path, dataset: str, cache: Path) -> Path:
    """A root torchvision can read for the files in ``folder`` (copied to the cache if needed).

    Every file is checked against its IDX header here, the one step both the loading
    and the worker's start-up check pass: a damaged file is a DataError naming it,
    never torchvision's EOFError or reshape error about a cache copy."""
    class_name = _dataset_info(dataset)[0]
    files = find_files(folder, class_name)
    if files is None:
        raise DataError(f"{folder} does not hold the four {class_name} files")
    raw = next(iter(files.values())).parent
    in_layout = raw.name == "raw" and raw.parent.name == class_name
    if in_layout and all(path.suffix != ".gz" for path in files.values()):
        for name, path in files.items():  # read in place: header and size are enough
            if problem := _file_problem(path, name):
                raise _damaged(path, problem)
        return raw.parent.parent  # already torchvision's layout, uncompressed: read in place
    root = dataset_cache(dataset, cache) / "unpacked" / _content_key(files)
    target = root / class_name / "raw"
    # A copy is checked whole when written; header and size again are cheap, and an
    # unusable one (left by an older version, say) is written afresh. Every file is
    # read and checked before any is written: a damaged fourth file left the three
    # before it behind, 53 MB kept for good under a key no file will have again.
    wanted = [name for name in files if not _copy_is_whole(target / name, name, cache)]
    unpacked = {name: _read_checked(files[name], name) for name in wanted}
    for name, data in unpacked.items():
        _write_copy(target / name, data, cache)
    return root


def unpacked_copy(dataset_folder: Path, dataset: str) -> Path | None:
    """The newest whole copy of the published dataset unpacked into the user cache
    (``dataset_folder``, as ``dataset_cache`` gives it) from any folder, as a torchvision
    root; None if none is. A worker started without $RESCONV_DATA on a box that trained
    before finds it there: the cache held it, yet "no ... files there". The published
    one only (its test labels tell it), never a copy of other files (a test's 50 images,
    a subset) that happens to be the newest."""
    class_name = _dataset_info(dataset)[0]
    try:
        roots = [path for path in (dataset_folder / "unpacked").iterdir() if path.is_dir()]
        roots.sort(key=lambda path: path.stat().st_mtime, reverse=True)
    except OSError:  # no copies yet, or none this user may read: nothing found there
        return None
    for root in roots:
        raw = root / class_name / "raw"
        try:
            whole = all((raw / name).is_file() and _file_problem(raw / name, name) is None
                        for name in FILES)  # fmt: skip
            if whole and published_as(raw / LABELS_FILE) == class_name:
                return root
        except OSError:
            continue
    return None


def _content_key(files: dict[str, Path]) -> str:
    # Keyed by the files' bytes, not their folder: the same dataset in many folders (a
    # test's temporary folder each time, a second checkout) shares one copy, where one
    # copy per folder ever used filled the cache; files replaced in place get a new one.
    # Hashing the four .gz files takes about 30 ms.
    digest = hashlib.sha256()
    for name, path in sorted(files.items()):
        with path.open("rb") as handle:
            digest.update(name.encode() + hashlib.file_digest(handle, "sha256").digest())
    return digest.hexdigest()[:16]


def idx_problem(name: str, head: bytes, size: int, unpacked: bool = False) -> str | None:
    """What is wrong with the IDX file ``name`` (one of FILES) of ``size`` bytes starting
    with ``head`` (its first 16 bytes or fewer), or None. The header gives the item count
    and dimensions, hence the exact length: a file cut short is found here."""
    holds = "unpacks to" if unpacked else "holds"
    if size == 0:
        return f"is empty ({holds} 0 bytes)"
    dims = 3 if "idx3" in name else 1  # images: count x rows x columns; labels: count
    magic = bytes([0, 0, IDX_UBYTE, dims])
    if head[:4] != magic:
        return f"is not an IDX file (starts with {head[:4].hex()}, expected {magic.hex()})"
    header = 4 + 4 * dims
    if size < header:
        return f"is truncated: {holds} {size} bytes, less than its {header}-byte IDX header"
    shape = [int.from_bytes(head[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    expected = header + math.prod(shape)
    if size == expected:
        return None
    wrong = "is truncated" if size < expected else "has the wrong size"
    return (
        f"{wrong}: {holds} {size:,} bytes, its IDX header says {'x'.join(map(str, shape))} "
        f"({expected:,} bytes)"
    )


def _file_problem(path: Path, name: str) -> str | None:
    """``idx_problem`` of an uncompressed file on disk, from its header and size alone."""
    with path.open("rb") as handle:
        head = handle.read(16)
    return idx_problem(name, head, path.stat().st_size)


def _read_checked(source: Path, name: str) -> bytes:
    """The whole of ``source`` (gunzipped if .gz), or a DataError naming it if it is
    damaged; an OSError (cannot read it) is left to the caller, as for the folder."""
    packed = source.suffix == ".gz"
    raw = source.read_bytes()
    if not raw:
        raise _damaged(source, "is empty (0 bytes)")
    try:
        data = gzip.decompress(raw) if packed else raw
    except EOFError:
        raise _damaged(source, "is truncated: its gzip data ends before the end marker") from None
    except (zlib.error, gzip.BadGzipFile) as exc:
        raise _damaged(source, f"is damaged: {_first_line(exc)}") from None
    if problem := idx_problem(name, data[:16], len(data), unpacked=packed):
        raise _damaged(source, problem)
    return data


def _copy_is_whole(copy: Path, name: str, cache: Path) -> bool:
    """Whether the cache holds ``copy`` whole (header and size: it was checked when written;
    an unusable one, left by an older version say, is written afresh)."""
    try:
        return copy.is_file() and _file_problem(copy, name) is None
    except OSError as exc:
        raise _cache_problem(cache, exc) from None


def _write_copy(copy: Path, data: bytes, cache: Path) -> None:
    """Write an unpacked copy into the cache (atomically: a crash never leaves half a file)."""
    try:
        atomic_write(copy, lambda dst: dst.write(data))
    except OSError as exc:
        raise _cache_problem(cache, exc) from None


def _cache_problem(cache: Path, exc: OSError) -> DataError:
    # The cache's fault, not the data folder's: said as such (and not skipped for the next
    # place, which would meet the same cache), or a good $RESCONV_DATA read as unusable.
    given = os.environ.get("RESCONV_CACHE")
    name = f"RESCONV_CACHE={given}" if given and Path(given) == cache else f"user cache {cache}"
    reason = f"{exc.strerror}: {exc.filename}" if exc.strerror and exc.filename else exc
    return DataError(
        f"{name}: cannot keep the unpacked dataset there ({reason}); point RESCONV_CACHE "
        "at a writable folder"
    )


def _damaged(path: Path, problem: str) -> DataError:
    return DataError(f"{path} {problem}; replace it with the original file")


# ----- downloading -------------------------------------------------------------------


def torchvision_download(dataset: str, root: Path) -> None:
    """Download with torchvision into ``root`` (its own layout); raises on any failure."""
    import torchvision.datasets as tvd

    class_name = _dataset_info(dataset)[0]
    with _socket_timeout(DOWNLOAD_TIMEOUT_S):
        getattr(tvd, class_name)(str(root), train=True, download=True)


@contextmanager
def _socket_timeout(seconds: float) -> Iterator[None]:
    # torchvision's urlopen has no timeout of its own; restore the global afterwards.
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


# ----- loading -----------------------------------------------------------------------


def locate(
    dataset: str, locations: list[Location], cache: Path, download: Downloader | None
) -> tuple[Path, str]:
    """(torchvision root, source description) of the first usable location, else DataError."""
    tried = []
    for location in locations:
        if location.empty:
            tried.append(f"{location.label}: set, but empty (did the command that set it fail?)")
            continue
        try:
            if find_files(location.path, _dataset_info(dataset)[0]) is not None:
                return torchvision_root(location.path, dataset, cache), str(location.path)
            if location.copies and (copy := unpacked_copy(location.path, dataset)):
                return copy, str(copy)
            why = _why_not(location.path)
        except OSError as exc:
            why = f"cannot use it: {_first_line(exc)}"
        if location.explicit:
            raise DataError(_explicit_message(dataset, location, why))
        tried.append(f"{location.label}: {location.path} ({why})")
    target = dataset_cache(dataset, cache)
    if download is not None:
        try:
            download(dataset, target)
            return torchvision_root(target, dataset, cache), f"downloaded to {target}"
        except Exception as exc:  # any failure (no network, disk full) ends in the one message
            tried.append(f"download into {target}: {_first_line(exc)}")
    raise DataError(_not_found_message(dataset, tried))


def load_split(root: Path, dataset: str, train: bool) -> torch.Tensor:
    """One split as uint8 (N, 1, 28, 28) on the CPU, read by torchvision's dataset class."""
    import torchvision.datasets as tvd

    class_name = _dataset_info(dataset)[0]
    try:
        split = getattr(tvd, class_name)(str(root), train=train, download=False)
    except (RuntimeError, ValueError, TypeError, OSError) as exc:
        raise DataError(f"cannot read {class_name} from {root}: {_first_line(exc)}") from None
    return split.data.unsqueeze(1).contiguous()


def resize_nearest(images: torch.Tensor, size: int) -> torch.Tensor:
    """Legacy nearest resize of uint8 (N, 1, H, W) images to (size, size), as the logbook did."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    # mode="nearest" (not "nearest-exact"): source index = floor(dst * in / out).
    return F.interpolate(images, size=(size, size), mode="nearest")


def load_datasets(
    dataset: str,
    image_size: int,
    device: torch.device | str,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    locations: list[Location] | None = None,
    cache: Path | None = None,
    download: Downloader | None = torchvision_download,
) -> Datasets:
    """Find, read, resize and move both splits of ``dataset`` to ``device``.

    ``locations``, ``cache`` and ``download`` default to the real search list, the
    user cache and torchvision's download; tests pass their own.
    """
    cache = cache_root() if cache is None else cache
    if locations is None:
        locations = default_locations(dataset, data_dir)
    root, source = locate(dataset, locations, cache, download)
    train, validation = (
        resize_nearest(load_split(root, dataset, flag), image_size).to(device)
        for flag in (True, False)
    )
    return Datasets(train=train, validation=validation, source=source)


# ----- messages ----------------------------------------------------------------------


def _dataset_info(dataset: str) -> tuple[str, str]:
    if dataset not in DATASETS:
        raise DataError(f"unknown dataset '{dataset}' (known: {', '.join(DATASETS)})")
    return DATASETS[dataset]


def _why_not(folder: Path) -> str:
    if not folder.exists():
        return "does not exist"
    if not folder.is_dir():
        return "not a folder"
    missing = [n for n in FILES if not any((folder / f"{n}{x}").is_file() for x in ("", ".gz"))]
    if len(missing) < len(FILES):
        if not missing:  # all four there: find_files refused them
            labels = next(p for x in ("", ".gz") if (p := folder / f"{LABELS_FILE}{x}").is_file())
            return f"holds {published_as(labels)}'s files"
        return "missing " + ", ".join(f"{name}(.gz)" for name in missing)
    return "no train-images-idx3-ubyte(.gz) etc. there"


def _first_line(exc: BaseException, limit: int = 240) -> str:
    # torchvision's download errors span several lines; the reason is on the last one.
    text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return f"{type(exc).__name__}: {text}".rstrip(": ")


def _explicit_message(dataset: str, location: Location, why: str) -> str:
    if dataset == ANY:
        class_name = " or ".join(name for name, _ in DATASETS.values())
    else:
        class_name = _dataset_info(dataset)[0]
    return (
        f"{location.label} {location.path}: {why}; it must hold the four {class_name} files "
        "(train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, "
        f"t10k-labels-idx1-ubyte.gz), or leave {location.label} out to search $RESCONV_DATA "
        "and the caches"
    )


def _not_found_message(dataset: str, tried: list[str]) -> str:
    class_name, folder = _dataset_info(dataset)
    places = "\n".join(f"  - {line}" for line in tried)
    fix = (
        f"set RESCONV_DATA or pass --data-dir to a folder with the four {class_name} files "
        "(train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, "
        "t10k-labels-idx1-ubyte.gz)"
    )
    if dataset == "fmnist":
        fix += ", or `apt install dataset-fashion-mnist`"
    return f"{class_name} not found; looked in:\n{places}\nFix: {fix}."
