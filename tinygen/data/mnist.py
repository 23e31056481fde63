"""MNIST and Fashion-MNIST: find the files, download them safely, check them, load them.

This file teaches the unglamorous half of machine learning: getting the right bytes. Three
habits carry over to any dataset.

1. **Look before you download.** Data is searched for in this order: the `data_dir=` argument;
   else the `TINYGEN_DATA` environment variable, then the user cache `~/.cache/tinygen` (or
   `$XDG_CACHE_HOME/tinygen`). A data root holds one folder per dataset (`mnist/`,
   `fashion_mnist/`), and each file may be gzipped (`train-images-idx3-ubyte.gz`) or not.
   A root may also be the dataset folder itself, e.g. `data_dir="data/mnist"`.
2. **Check what you got.** Every file is verified against a known md5 before it is used. For
   MNIST we hash the *uncompressed* payload, because re-compressing a file changes the `.gz`
   bytes but not the data. For Fashion-MNIST we only know the md5s of the official `.gz`
   files for certain, so those are what we check, and an uncompressed Fashion-MNIST file gets
   the IDX structure checks only (see `SOURCES`).
3. **Never leave half a file.** A download goes to a temporary file in the destination folder,
   is verified there, and only then is renamed into place with `os.replace`, which is atomic on
   one file system. A failed or corrupt download leaves nothing behind to trip the next run.
4. **Never wait forever.** A socket timeout alone does not bound a download: it only limits
   each wait for the next bytes, so a server that trickles one byte every few seconds would
   keep it going for hours. Each file therefore has a *stall* timeout (no byte for
   `STALL_TIMEOUT` s) and an overall *deadline* (`DOWNLOAD_DEADLINE` s, across all mirrors).

Pixel convention (shared with `digits.py`): loaders return the raw integer pixels the dataset
stores (uint8, 0..255 here), and `normalize=True` returns float32 in [0, 1] instead. Labels are
int64. Parsed arrays are cached in-process and returned read-only, so a second load is free and
nobody can change the cached copy by accident; `.copy()` them to edit.

Read next: `digits.py`, a small real dataset that needs no download at all.
"""

from __future__ import annotations

import functools
import hashlib
import os
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinygen.data.idx import DatasetError, parse_idx, read_payload
from tinygen.data.loader import ArrayDataset

__all__ = ["FashionMNIST", "MNIST", "SOURCES", "cache_dir", "fetch", "load_mnist"]


# eq=False keeps identity hashing, so a Source can be part of an lru_cache key despite its dicts.
@dataclass(frozen=True, eq=False)
class Source:
    """Where a dataset lives and how to recognise its files."""

    folder: str  # sub-folder of a data root
    mirrors: tuple[str, ...]  # base URLs; the file name is appended
    md5: dict[str, str]  # file stem -> md5 of the uncompressed IDX bytes
    gz_md5: dict[str, str]  # file stem -> md5 of the official .gz file, used when md5 is unknown
    classes: tuple[str, ...]


SPLITS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

SOURCES = {
    "mnist": Source(
        folder="mnist",
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
            "http://yann.lecun.com/exdb/mnist/",
        ),
        # The canonical release's uncompressed payloads (as listed in shared/data/mnist/README).
        md5={
            "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
            "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
            "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
            "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
        },
        gz_md5={},
        classes=tuple(str(d) for d in range(10)),
    ),
    "fashion_mnist": Source(
        folder="fashion_mnist",
        mirrors=(
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        ),
        # We could not confirm the md5s of the *uncompressed* Fashion-MNIST files from a source
        # we trust, and a guessed checksum is worse than none. These are the md5s of the
        # official .gz files, which several independent loaders agree on.
        md5={},
        gz_md5={
            "train-images-idx3-ubyte": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train-labels-idx1-ubyte": "25c81989df183df01b3e8a0aad5dffbe",
            "t10k-images-idx3-ubyte": "bef4ecab320f06d8554ea6380940ec79",
            "t10k-labels-idx1-ubyte": "bb300cfdad3c16e7a12a480ee83cd310",
        },
        classes=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                 "Sneaker", "Bag", "Ankle boot"),
    ),
}


# ---------------------------------------------------------------------------------------------
# Public loaders
# ---------------------------------------------------------------------------------------------

def load_mnist(split: str = "train", data_dir: str | os.PathLike | None = None,
               download: bool = True, name: str = "mnist",
               normalize: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Load MNIST (or `name="fashion_mnist"`) as (images (N, 28, 28), labels (N,) int64).

    Images are uint8 in 0..255, or float32 in [0, 1] with `normalize=True`. Missing files are
    downloaded into `data_dir/<name>/` (or the user cache) when `download` is True.
    """
    source = _source(name)
    if split not in SPLITS:
        raise ValueError(f"split must be one of {sorted(SPLITS)}, got {split!r}")
    paths = _locate(source, SPLITS[split], data_dir, download)
    images, labels = (_load_checked(paths[stem], source, stem) for stem in SPLITS[split])
    _check_pair(images, labels, paths, len(source.classes))
    labels = _readonly(labels.astype(np.int64))
    if normalize:
        # A fresh float copy each call: 60000 float32 images are 188 MB, too big to cache.
        images = images.astype(np.float32) / 255.0
    return images, labels


class MNIST(ArrayDataset):
    """MNIST as a dataset: `ds[i] -> (image, label)`, `len(ds)`, and fast DataLoader batches.

    Also exposes `images`, `labels` and `classes` (the label names).
    """

    name = "mnist"

    def __init__(self, split: str = "train", data_dir: str | os.PathLike | None = None,
                 download: bool = True, normalize: bool = False):
        self.split = split
        self.images, self.labels = load_mnist(split, data_dir, download, self.name, normalize)
        self.classes = SOURCES[self.name].classes
        super().__init__(self.images, self.labels)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(split={self.split!r}, n={len(self)})"


class FashionMNIST(MNIST):
    """Fashion-MNIST (Zalando's clothing images), a drop-in for MNIST with the same layout."""

    name = "fashion_mnist"


def cache_dir() -> Path:
    """The per-user download cache: `$XDG_CACHE_HOME/tinygen`, else `~/.cache/tinygen`."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "tinygen"


# Limits of one file's download. MNIST's largest file is 9.9 MB: 5 minutes allows 33 kB/s.
STALL_TIMEOUT = 15.0        # seconds without a byte (also the connect timeout)
DOWNLOAD_DEADLINE = 300.0   # seconds for the whole file, over every mirror tried


def fetch(url: str, dest: Path, deadline: float | None = None) -> None:
    """Copy `url` into the file `dest`, giving up (TimeoutError) when no byte arrives for
    `STALL_TIMEOUT` seconds or the transfer outlasts `deadline` seconds. Tests replace this
    function to stay off the network."""
    deadline = DOWNLOAD_DEADLINE if deadline is None else deadline
    give_up = time.monotonic() + deadline
    # timeout= bounds the connect and every single read: that is the stall timeout.
    with urllib.request.urlopen(url, timeout=min(STALL_TIMEOUT, deadline)) as response, \
            open(dest, "wb") as out:
        # read1 returns whatever has arrived (up to 64 kB) instead of waiting for 64 kB, so
        # the deadline is checked after every trickle of bytes, however small.
        while chunk := response.read1(1 << 16):
            out.write(chunk)
            if time.monotonic() > give_up:
                raise TimeoutError(f"gave up after {deadline:.0f} s (the download deadline, "
                                   f"tinygen.data.mnist.DOWNLOAD_DEADLINE); the server is "
                                   f"too slow")


# ---------------------------------------------------------------------------------------------
# Finding and downloading files
# ---------------------------------------------------------------------------------------------

def _source(name: str) -> Source:
    if name not in SOURCES:
        raise ValueError(f"unknown dataset {name!r}; choose one of {sorted(SOURCES)}")
    return SOURCES[name]


def _roots(data_dir) -> list[Path]:
    """Data roots to search, in order: an explicit data_dir alone, else TINYGEN_DATA and cache."""
    if data_dir is not None:
        return [Path(data_dir)]
    env = os.environ.get("TINYGEN_DATA")
    return ([Path(env)] if env else []) + [cache_dir()]


def _find(folder: Path, stem: str) -> Path | None:
    """The uncompressed or gzipped copy of `stem` in `folder`, if either exists."""
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _dataset_folder(root: Path, source: Source) -> Path:
    """`root/<dataset>`, or `root` itself when it already is the dataset's folder.

    Matching by name (data_dir=".../mnist" works) rather than by looking for files in `root`
    means MNIST files can never be picked up as Fashion-MNIST by accident.
    """
    return root if root.name == source.folder else root / source.folder


def _locate(source: Source, stems, data_dir, download: bool) -> dict[str, Path]:
    """Paths to every file in `stems`, from the first folder that has them all, else download."""
    folders = [_dataset_folder(root, source) for root in _roots(data_dir)]
    for folder in folders:
        found = {stem: _find(folder, stem) for stem in stems}
        if all(found.values()):
            return found
    if not download:
        err = FileNotFoundError(
            f"{source.folder} files {list(stems)} not found in any of "
            f"{[str(f) for f in folders]}. Set TINYGEN_DATA to a folder containing "
            f"{source.folder}/, pass data_dir=, or pass download=True.")
        raise _searched(err, source, folders)
    # Download into the last place searched: data_dir when given, else the user cache.
    target = folders[-1]
    try:
        return {stem: _find(target, stem) or _download(source, stem, target) for stem in stems}
    except DatasetError as err:
        raise _searched(err, source, folders) from None


def _searched(err: Exception, source: Source, folders) -> Exception:
    """Attach what was looked for and where, so a front end (the CLI) can word its own advice
    (`--data-dir` rather than `data_dir=`) without parsing this module's message."""
    err.dataset, err.searched = source.folder, [str(f) for f in folders]
    return err


def _download(source: Source, stem: str, folder: Path) -> Path:
    """Fetch `stem`.gz from the first mirror that serves a verified copy; return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    _remove_stale_parts(folder, stem)
    errors = []
    give_up = time.monotonic() + DOWNLOAD_DEADLINE
    for mirror in source.mirrors:
        url = f"{mirror}{stem}.gz"
        remaining = give_up - time.monotonic()
        if remaining <= 0:
            errors.append(f"  {url}: not tried, the {DOWNLOAD_DEADLINE:.0f} s deadline passed")
            continue
        # The temp file sits in the destination folder so os.replace is a same-disk rename.
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{stem}.", suffix=".part")
        os.close(fd)
        try:
            fetch(url, Path(tmp), deadline=remaining)
            _read_checked(Path(tmp), source, stem, display=url)
            os.replace(tmp, folder / f"{stem}.gz")
            return folder / f"{stem}.gz"
        except (OSError, DatasetError) as err:  # urllib's URLError is an OSError
            errors.append(f"  {url}: {err}")
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
    raise DatasetError(
        f"could not download {stem}.gz into {folder}:\n" + "\n".join(errors) + "\n"
        "If this machine is offline, point tinygen at a folder that already holds the files: "
        f"set TINYGEN_DATA=/path/to/data (containing {source.folder}/) or pass data_dir=.")


def _remove_stale_parts(folder: Path, stem: str) -> None:
    """Delete `.part` files of `stem` left by a download that was killed (kill -9, power
    loss). A live download writes at least every STALL_TIMEOUT seconds, or gives up; a file
    untouched for twice that long has no writer left."""
    now = time.time()
    for part in folder.glob(f".{stem}.*.part"):
        try:
            if now - part.stat().st_mtime > 2 * STALL_TIMEOUT:
                part.unlink()
        except FileNotFoundError:
            pass


# ---------------------------------------------------------------------------------------------
# Reading, verifying and caching
# ---------------------------------------------------------------------------------------------

def _load_checked(path: Path, source: Source, stem: str) -> np.ndarray:
    """Verified array for `path`, parsed once per process (until the file changes)."""
    stat = path.stat()
    # Size and mtime in the key mean a replaced file is re-read rather than served stale.
    return _load_cached(str(path.resolve()), stat.st_size, stat.st_mtime_ns, source, stem)


@functools.lru_cache(maxsize=16)
def _load_cached(path: str, size: int, mtime_ns: int, source: Source, stem: str) -> np.ndarray:
    return _read_checked(Path(path), source, stem)


def _read_checked(path: Path, source: Source, stem: str, display=None) -> np.ndarray:
    """Read, checksum and parse one IDX file, naming `display` (default: path) in errors."""
    display = display or path
    if stem not in source.md5 and stem in source.gz_md5 and _is_gzip(path):
        _verify(path.read_bytes(), source.gz_md5[stem], display, "compressed file")
    raw = read_payload(path)
    if stem in source.md5:
        _verify(raw, source.md5[stem], display, "uncompressed payload")
    return parse_idx(raw, source=display)


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


def _verify(data: bytes, expected: str, display, what: str) -> None:
    actual = hashlib.md5(data, usedforsecurity=False).hexdigest()
    if actual != expected:
        raise DatasetError(
            f"{display}: md5 mismatch for the {what}: expected {expected}, got {actual}. The "
            "file is damaged or not the official release; delete it to re-download.")


def _check_pair(images: np.ndarray, labels: np.ndarray, paths, n_classes: int) -> None:
    """Shapes and label range that every MNIST-format split must have."""
    where = " and ".join(str(p) for p in paths.values())
    if images.ndim != 3 or images.shape[1:] != (28, 28) or images.dtype != np.uint8:
        raise DatasetError(f"{where}: expected uint8 images of shape (N, 28, 28), got "
                           f"{images.dtype} {images.shape}")
    if labels.ndim != 1 or len(labels) != len(images):
        raise DatasetError(f"{where}: {len(images)} images but labels of shape {labels.shape}")
    if len(labels) and labels.max() >= n_classes:
        raise DatasetError(f"{where}: label {labels.max()} is out of range 0..{n_classes - 1}")


def _readonly(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array
