"""Tests for tinygen.data: IDX parsing, MNIST loading and downloading, toys, loaders, splits.

Nothing here touches the network or the user's real cache: downloads go through a replaced
`fetch` (or a file:// URL), and every test gets its own XDG_CACHE_HOME. The real MNIST files are
used when they are present next to the repository (or in TINYGEN_DATA), and skipped otherwise.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import hashlib
import os
import sys
import time
import urllib.error
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygen.data import (
    MNIST,
    ArrayDataset,
    DataLoader,
    DatasetError,
    FashionMNIST,
    Subset,
    grid25,
    grid25_mixture,
    labelled_subset,
    load_mnist,
    random_split,
    read_idx,
    ring8,
    ring8_mixture,
    spiral,
    swiss_roll,
    train_val_split,
    two_moons,
    write_idx,
)
from tinygen.data import digits as digits_module
from tinygen.data import mnist as mnist_module
from tinygen.data.idx import read_payload

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SPLIT_STEMS = mnist_module.SPLITS


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    """Point the download cache at a temp folder and hide any TINYGEN_DATA the user has set."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.delenv("TINYGEN_DATA", raising=False)


def md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


# ---------------------------------------------------------------------------------------------
# IDX format
# ---------------------------------------------------------------------------------------------

DTYPES = ["uint8", "int8", "int16", "int32", "float32", "float64"]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_round_trip(tmp_path, dtype, suffix):
    rng = np.random.default_rng(0)
    array = (rng.standard_normal((3, 4, 5)) * 50).astype(dtype)
    path = write_idx(tmp_path / f"a-idx3{suffix}", array)
    assert path.read_bytes().startswith(b"\x1f\x8b") == (suffix == ".gz")
    loaded = read_idx(path)
    assert loaded.dtype == np.dtype(dtype).newbyteorder("=")
    np.testing.assert_array_equal(loaded, array)
    assert not loaded.flags.writeable


def test_idx_header_layout_is_big_endian(tmp_path):
    path = write_idx(tmp_path / "x", np.arange(6, dtype=np.int16).reshape(2, 3))
    raw = path.read_bytes()
    assert raw[:4] == bytes([0, 0, 0x0B, 2])
    assert raw[4:12] == bytes([0, 0, 0, 2, 0, 0, 0, 3])
    assert raw[12:14] == bytes([0, 0]) and raw[14:16] == bytes([0, 1])  # 0, 1 as >i2


def test_idx_gzip_detected_by_content_not_name(tmp_path):
    array = np.arange(10, dtype=np.uint8)
    path = write_idx(tmp_path / "labels-without-gz-suffix", array, compress=True)
    np.testing.assert_array_equal(read_idx(path), array)


def test_write_idx_rejects_unsupported_dtype(tmp_path):
    with pytest.raises(ValueError, match="int64"):
        write_idx(tmp_path / "x", np.zeros(3, dtype=np.int64))


def _valid_idx_bytes() -> bytes:
    return bytes([0, 0, 0x08, 2, 0, 0, 0, 2, 0, 0, 0, 3]) + bytes(range(6))


@pytest.mark.parametrize("name, raw, message", [
    ("truncated-payload", _valid_idx_bytes()[:-1], "truncated IDX payload"),
    ("truncated-header", _valid_idx_bytes()[:9], "truncated IDX header"),
    ("too-short", b"\x00\x00", "too short"),
    ("bad-magic", b"\x01" + _valid_idx_bytes()[1:], "bad IDX magic"),
    ("bad-type", _valid_idx_bytes()[:2] + b"\x07" + _valid_idx_bytes()[3:], "type code 0x07"),
    ("zero-dims", bytes([0, 0, 0x08, 0]), "0 dimensions"),
    ("trailing", _valid_idx_bytes() + b"junk", "4 bytes of trailing garbage"),
])
@pytest.mark.parametrize("compress", [False, True])
def test_corrupt_idx_raises_naming_the_file(tmp_path, name, raw, message, compress):
    path = tmp_path / name
    path.write_bytes(gzip.compress(raw) if compress else raw)
    with pytest.raises(DatasetError, match=message) as info:
        read_idx(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("damage", ["cut", "flip", "junk-after-stream"])
def test_corrupt_gzip_raises_dataset_error(tmp_path, damage):
    packed = bytearray(gzip.compress(bytes(range(256)) * 40))
    if damage == "cut":
        packed = packed[: len(packed) // 2]
    elif damage == "flip":
        packed[len(packed) // 2] ^= 0xFF  # the deflate data or CRC no longer matches
    else:
        packed += b"junk"  # read as the start of a second gzip member, whose magic is wrong
    path = tmp_path / "broken.gz"
    path.write_bytes(bytes(packed))
    with pytest.raises(DatasetError, match="corrupt gzip") as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_dataset_error_is_a_value_error():
    assert issubclass(DatasetError, ValueError)


# ---------------------------------------------------------------------------------------------
# MNIST loading from small generated files
# ---------------------------------------------------------------------------------------------

def write_split(folder: Path, split: str = "train", n: int = 7, gz: bool = True, seed: int = 0):
    """Write a tiny MNIST-format split; return (images, labels, {stem: md5 of raw payload})."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n, dtype=np.uint8)
    checksums = {}
    for stem, array in zip(SPLIT_STEMS[split], (images, labels), strict=True):
        path = write_idx(folder / (stem + (".gz" if gz else "")), array)
        checksums[stem] = md5(read_payload(path))
    return images, labels, checksums


def use_source(monkeypatch, name="mnist", **changes):
    """Replace SOURCES[name] for one test with some fields changed."""
    source = dataclasses.replace(mnist_module.SOURCES[name], **changes)
    monkeypatch.setitem(mnist_module.SOURCES, name, source)
    return source


@pytest.mark.parametrize("gz", [True, False])
def test_load_mnist_from_data_dir(tmp_path, monkeypatch, gz):
    images, labels, sums = write_split(tmp_path / "root" / "mnist", gz=gz)
    use_source(monkeypatch, md5=sums)
    x, y = load_mnist("train", data_dir=tmp_path / "root", download=False)
    assert x.shape == (7, 28, 28) and x.dtype == np.uint8
    assert y.shape == (7,) and y.dtype == np.int64
    np.testing.assert_array_equal(x, images)
    np.testing.assert_array_equal(y, labels)
    assert not x.flags.writeable and not y.flags.writeable


def test_normalize_gives_float32_unit_range(tmp_path, monkeypatch):
    images, _, sums = write_split(tmp_path / "mnist")
    use_source(monkeypatch, md5=sums)
    x, _ = load_mnist("train", data_dir=tmp_path, download=False, normalize=True)
    assert x.dtype == np.float32 and 0.0 <= x.min() and x.max() <= 1.0
    np.testing.assert_allclose(x * 255, images, atol=1e-3)


def test_data_dir_may_be_the_dataset_folder_itself(tmp_path, monkeypatch):
    _, _, sums = write_split(tmp_path / "mnist", split="test")
    use_source(monkeypatch, md5=sums)
    x, _ = load_mnist("test", data_dir=tmp_path / "mnist", download=False)
    assert len(x) == 7


def test_mnist_files_are_not_picked_up_as_fashion(tmp_path, monkeypatch):
    write_split(tmp_path / "mnist", gz=False)
    use_source(monkeypatch, "fashion_mnist", mirrors=())
    with pytest.raises(FileNotFoundError):
        load_mnist("train", data_dir=tmp_path / "mnist", download=False, name="fashion_mnist")


def test_resolution_order_data_dir_then_env_then_cache(tmp_path, monkeypatch):
    _, _, sums_a = write_split(tmp_path / "explicit" / "mnist", n=3, seed=1)
    _, _, sums_b = write_split(tmp_path / "env" / "mnist", n=4, seed=2)
    _, _, sums_c = write_split(tmp_path / "xdg-cache" / "tinygen" / "mnist", n=5, seed=3)
    use_source(monkeypatch, md5={}, gz_md5={})  # three different files: skip checksums here
    monkeypatch.setenv("TINYGEN_DATA", str(tmp_path / "env"))
    assert len(load_mnist(data_dir=tmp_path / "explicit", download=False)[0]) == 3
    assert len(load_mnist(download=False)[0]) == 4
    monkeypatch.delenv("TINYGEN_DATA")
    assert len(load_mnist(download=False)[0]) == 5


def test_missing_files_without_download_say_how_to_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="TINYGEN_DATA") as info:
        load_mnist("test", data_dir=tmp_path, download=False)
    assert str(tmp_path / "mnist") in str(info.value)


def test_checksum_mismatch_names_file_and_both_md5s(tmp_path, monkeypatch):
    _, _, sums = write_split(tmp_path / "mnist")
    stem = SPLIT_STEMS["train"][0]
    wrong = dict(sums, **{stem: "0" * 32})
    use_source(monkeypatch, md5=wrong)
    with pytest.raises(DatasetError) as info:
        load_mnist("train", data_dir=tmp_path, download=False)
    message = str(info.value)
    assert stem in message and "0" * 32 in message and sums[stem] in message


def test_compressed_md5_checked_when_payload_md5_unknown(tmp_path, monkeypatch):
    folder = tmp_path / "fashion_mnist"
    write_split(folder, split="test")
    gz_sums = {s: md5((folder / f"{s}.gz").read_bytes()) for s in SPLIT_STEMS["test"]}
    use_source(monkeypatch, "fashion_mnist", md5={}, gz_md5=gz_sums)
    assert len(FashionMNIST("test", data_dir=tmp_path, download=False)) == 7
    use_source(monkeypatch, "fashion_mnist", md5={}, gz_md5=dict(gz_sums, **{
        SPLIT_STEMS["test"][1]: "f" * 32}))
    with pytest.raises(DatasetError, match="compressed file"):
        load_mnist("test", data_dir=tmp_path, download=False, name="fashion_mnist")


def test_bad_shapes_and_labels_are_rejected(tmp_path, monkeypatch):
    use_source(monkeypatch, md5={})
    folder = tmp_path / "mnist"
    folder.mkdir()
    write_idx(folder / "t10k-images-idx3-ubyte", np.zeros((2, 28, 28), np.uint8))
    write_idx(folder / "t10k-labels-idx1-ubyte", np.array([1, 12], np.uint8))
    with pytest.raises(DatasetError, match="label 12 is out of range"):
        load_mnist("test", data_dir=tmp_path, download=False)
    write_idx(folder / "t10k-labels-idx1-ubyte", np.array([1, 2, 3], np.uint8))
    with pytest.raises(DatasetError, match="2 images but labels"):
        load_mnist("test", data_dir=tmp_path, download=False)


def test_repeated_loads_are_cached_until_the_file_changes(tmp_path, monkeypatch):
    _, _, sums = write_split(tmp_path / "mnist", n=3)
    use_source(monkeypatch, md5={})
    first = load_mnist("train", data_dir=tmp_path, download=False)[0]
    assert load_mnist("train", data_dir=tmp_path, download=False)[0] is first
    path = tmp_path / "mnist" / f"{SPLIT_STEMS['train'][0]}.gz"
    write_idx(path, np.ones((3, 28, 28), np.uint8))
    os.utime(path, ns=(1, 1))  # a different mtime, even on coarse-clock file systems
    assert load_mnist("train", data_dir=tmp_path, download=False)[0].max() == 1


def test_mnist_dataset_object(tmp_path, monkeypatch):
    images, labels, sums = write_split(tmp_path / "mnist", split="test")
    use_source(monkeypatch, md5=sums)
    ds = MNIST("test", data_dir=tmp_path, download=False)
    assert len(ds) == 7 and ds.classes[3] == "3"
    image, label = ds[2]
    np.testing.assert_array_equal(image, images[2])
    assert label == labels[2]
    x, y = next(iter(DataLoader(ds, batch_size=4)))
    assert x.shape == (4, 28, 28) and y.shape == (4,)


def test_unknown_split_or_name(tmp_path):
    with pytest.raises(ValueError, match="split"):
        load_mnist("validation", data_dir=tmp_path)
    with pytest.raises(ValueError, match="unknown dataset"):
        load_mnist("train", data_dir=tmp_path, name="kmnist")


# ---------------------------------------------------------------------------------------------
# Downloading (never over the network)
# ---------------------------------------------------------------------------------------------

@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """A local 'mirror' folder holding a tiny test split, with SOURCES set to its checksums."""
    images, labels, sums = write_split(tmp_path / "mirror", split="test")
    use_source(monkeypatch, md5=sums, mirrors=("fake://down/", "fake://up/"))
    return tmp_path / "mirror", images, labels


def serve_from(folder: Path, broken_hosts=("down",), payload=None):
    """A replacement for mnist.fetch: 'down' raises like an offline URL, others copy files."""
    def fetch(url: str, dest: Path, deadline=None) -> None:
        host, name = url.removeprefix("fake://").split("/", 1)
        if host in broken_hosts:
            raise urllib.error.URLError("no route to host")
        dest.write_bytes(payload if payload is not None else (folder / name).read_bytes())
    return fetch


def test_download_falls_back_to_next_mirror_and_lands_atomically(tmp_path, monkeypatch, mirror):
    folder, images, labels = mirror
    monkeypatch.setattr(mnist_module, "fetch", serve_from(folder))
    x, y = load_mnist("test")  # nothing on disk yet: downloads into the cache
    np.testing.assert_array_equal(x, images)
    np.testing.assert_array_equal(y, labels)
    cached = tmp_path / "xdg-cache" / "tinygen" / "mnist"
    assert sorted(p.name for p in cached.iterdir()) == sorted(
        f"{s}.gz" for s in SPLIT_STEMS["test"])  # no leftover .part files


def test_download_into_explicit_data_dir(tmp_path, monkeypatch, mirror):
    monkeypatch.setattr(mnist_module, "fetch", serve_from(mirror[0]))
    load_mnist("test", data_dir=tmp_path / "mine")
    assert (tmp_path / "mine" / "mnist" / f"{SPLIT_STEMS['test'][0]}.gz").is_file()


def test_download_with_bad_checksum_leaves_no_file(tmp_path, monkeypatch, mirror):
    bad = gzip.compress(_valid_idx_bytes())  # a valid IDX file, just not the expected one
    monkeypatch.setattr(mnist_module, "fetch", serve_from(mirror[0], (), payload=bad))
    with pytest.raises(DatasetError, match="md5 mismatch") as info:
        load_mnist("test")
    assert md5(_valid_idx_bytes()) in str(info.value)
    cached = tmp_path / "xdg-cache" / "tinygen" / "mnist"
    assert list(cached.iterdir()) == []


def test_offline_download_error_points_to_tinygen_data(tmp_path, monkeypatch, mirror):
    monkeypatch.setattr(mnist_module, "fetch", serve_from(mirror[0], ("down", "up")))
    with pytest.raises(DatasetError, match="TINYGEN_DATA") as info:
        load_mnist("test")
    assert "fake://down/" in str(info.value) and "no route to host" in str(info.value)
    assert list((tmp_path / "xdg-cache" / "tinygen" / "mnist").iterdir()) == []


def test_download_interrupted_midway_leaves_no_file(tmp_path, monkeypatch, mirror):
    def fetch(url, dest, deadline=None):
        dest.write_bytes(b"\x1f\x8b partial")
        raise KeyboardInterrupt  # not an error we handle: it must still clean up
    monkeypatch.setattr(mnist_module, "fetch", fetch)
    with pytest.raises(KeyboardInterrupt):
        load_mnist("test")
    assert list((tmp_path / "xdg-cache" / "tinygen" / "mnist").iterdir()) == []


def test_real_fetch_with_file_url(tmp_path, monkeypatch, mirror):
    use_source(monkeypatch, mirrors=(mirror[0].as_uri() + "/",))
    x, _ = load_mnist("test", data_dir=tmp_path / "dl")
    np.testing.assert_array_equal(x, mirror[1])


# ---------------------------------------------------------------------------------------------
# The real MNIST files, when this machine has them
# ---------------------------------------------------------------------------------------------

def real_mnist_root() -> Path | None:
    for root in (os.environ.get("TINYGEN_DATA"), SHARED_DATA):
        if root and (Path(root) / "mnist" / "t10k-labels-idx1-ubyte.gz").exists():
            return Path(root)
    return None


# The autouse fixture hides TINYGEN_DATA during tests, so read it once at import time.
REAL_ROOT = real_mnist_root()
needs_real_mnist = pytest.mark.skipif(REAL_ROOT is None, reason="real MNIST files not found")


@needs_real_mnist
@pytest.mark.parametrize("split, n, counts", [
    ("train", 60000, [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]),
    ("test", 10000, [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]),
])
def test_real_mnist(split, n, counts):
    x, y = load_mnist(split, data_dir=REAL_ROOT, download=False)
    assert x.shape == (n, 28, 28) and x.dtype == np.uint8
    assert y.shape == (n,) and y.dtype == np.int64
    assert np.bincount(y, minlength=10).tolist() == counts
    assert x.max() == 255 and x.min() == 0


@needs_real_mnist
def test_real_mnist_batches():
    loader = DataLoader(MNIST("test", data_dir=REAL_ROOT), batch_size=256, shuffle=True,
                        generator=0)
    assert len(loader) == 40
    assert sum(len(y) for _, y in loader) == 10000


# ---------------------------------------------------------------------------------------------
# Toy 2-D distributions
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("sampler", [ring8, grid25, spiral, two_moons, swiss_roll])
def test_toy_shapes_dtypes_and_seeding(sampler):
    x = sampler(500, rng=3)
    assert x.shape == (500, 2) and x.dtype == np.float32 and np.isfinite(x).all()
    np.testing.assert_array_equal(x, sampler(500, rng=np.random.default_rng(3)))
    assert not np.array_equal(x, sampler(500, rng=4))


def test_mixture_centres():
    ring = ring8_mixture()
    np.testing.assert_allclose(np.linalg.norm(ring.centers, axis=1), 2.0)
    assert ring.centers.shape == (8, 2) and ring.std == 0.02
    grid = grid25_mixture()
    assert grid.std == 0.05
    assert sorted(map(tuple, grid.centers.tolist())) == [
        (float(i), float(j)) for i in range(-4, 5, 2) for j in range(-4, 5, 2)]


@pytest.mark.parametrize("mixture, sampler", [
    (ring8_mixture(), ring8), (grid25_mixture(), grid25)])
def test_mixture_samples_cover_every_mode_with_high_quality(mixture, sampler):
    x = sampler(5000, rng=0)
    idx, dist = mixture.nearest(x)
    high_quality = dist < 3 * mixture.std
    # In 2-D, P(|noise| > 3 std) = exp(-9/2), about 1.1%.
    assert 0.98 < high_quality.mean() < 0.995
    assert len(np.unique(idx[high_quality])) == len(mixture.centers)


# ---------------------------------------------------------------------------------------------
# ArrayDataset and DataLoader
# ---------------------------------------------------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 120), batch_size=st.integers(1, 40), shuffle=st.booleans(),
       drop_last=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_loader_batches_cover_each_index_once(n, batch_size, shuffle, drop_last, seed):
    x = np.arange(n)
    loader = DataLoader((x, x * 10), batch_size, shuffle=shuffle, drop_last=drop_last,
                        generator=seed)
    batches = list(loader)
    assert len(batches) == len(loader)
    expected = n // batch_size if drop_last else -(-n // batch_size)
    assert len(loader) == expected
    for xb, yb in batches[:-1]:
        assert len(xb) == batch_size
        np.testing.assert_array_equal(yb, xb * 10)  # arrays stay aligned
    seen = np.concatenate([xb for xb, _ in batches]) if batches else np.array([], int)
    assert len(np.unique(seen)) == len(seen)
    if not drop_last:
        assert sorted(seen.tolist()) == list(range(n))
    if not shuffle:
        np.testing.assert_array_equal(seen, np.arange(len(seen)))


def test_seeded_shuffling_is_reproducible_and_changes_every_epoch():
    def epochs(seed):
        loader = DataLoader(np.arange(50), batch_size=50, shuffle=True, generator=seed)
        return [next(iter(loader))[0] for _ in range(3)]
    a, b = epochs(7), epochs(7)
    for ea, eb in zip(a, b, strict=True):
        np.testing.assert_array_equal(ea, eb)
    assert not np.array_equal(a[0], a[1])
    assert not np.array_equal(a[0], epochs(8)[0])


def test_loader_accepts_a_generator_object():
    gen = np.random.default_rng(1)
    loader = DataLoader(np.arange(10), batch_size=10, shuffle=True, generator=gen)
    assert loader.generator is gen


def test_single_array_yields_one_tuples():
    batches = list(DataLoader(np.arange(5), batch_size=2))
    assert [len(b) for b in batches] == [1, 1, 1]
    np.testing.assert_array_equal(batches[-1][0], [4])


class CountingDataset(ArrayDataset):
    calls = 0

    def __getitem__(self, index):
        CountingDataset.calls += 1
        return super().__getitem__(index)


def test_array_backed_loader_fetches_one_batch_per_call():
    CountingDataset.calls = 0
    ds = CountingDataset(np.zeros((100, 3)), np.arange(100))
    assert len(list(DataLoader(ds, batch_size=32))) == 4
    assert CountingDataset.calls == 4


class ItemDataset:
    """A dataset that only knows single items, as a hand-written PyTorch Dataset would."""

    def __len__(self):
        return 9

    def __getitem__(self, i):
        return np.full((2, 2), i), i % 3


def test_item_dataset_is_collated_like_array_dataset():
    slow = list(DataLoader(ItemDataset(), batch_size=4, shuffle=True, generator=5))
    arrays = (np.stack([np.full((2, 2), i) for i in range(9)]), np.arange(9) % 3)
    fast = list(DataLoader(ArrayDataset(*arrays), batch_size=4, shuffle=True, generator=5))
    for (xs, ys), (xf, yf) in zip(slow, fast, strict=True):
        np.testing.assert_array_equal(xs, xf)
        np.testing.assert_array_equal(ys, yf)


def test_loader_and_dataset_argument_errors():
    with pytest.raises(ValueError, match="first dimension"):
        ArrayDataset(np.zeros(3), np.zeros(4))
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="batch_size"):
            DataLoader(np.zeros(3), batch_size=bad)
    with pytest.raises(TypeError):
        DataLoader(42)


# ---------------------------------------------------------------------------------------------
# Splits
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, n_val", [({"val_fraction": 0.2}, 20), ({"val_size": 7}, 7)])
def test_train_val_split(kwargs, n_val):
    train, val = train_val_split(100, seed=3, **kwargs)
    assert len(val) == n_val and len(train) == 100 - n_val
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(100))
    again, _ = train_val_split(100, seed=3, **kwargs)
    np.testing.assert_array_equal(train, again)


def test_train_val_split_errors():
    with pytest.raises(ValueError, match="exactly one"):
        train_val_split(10)
    with pytest.raises(ValueError, match="exactly one"):
        train_val_split(10, val_fraction=0.1, val_size=1)
    with pytest.raises(ValueError):
        train_val_split(10, val_size=11)


# Fractions floor to [5, 2, 2]; the one item left over goes to the first subset, as in PyTorch.
@pytest.mark.parametrize("lengths, sizes", [([6, 3, 1], [6, 3, 1]), ([0.5, 0.25, 0.25], [6, 2, 2])])
def test_random_split_partitions_the_dataset(lengths, sizes):
    ds = ArrayDataset(np.arange(10) * 2)
    parts = random_split(ds, lengths, seed=0)
    assert [len(p) for p in parts] == sizes
    assert all(isinstance(p, Subset) for p in parts)
    values = np.concatenate([p[np.arange(len(p))][0] for p in parts])
    assert sorted(values.tolist()) == list(range(0, 20, 2))
    # A Subset of an ArrayDataset still loads a whole batch per call.
    (xb,) = next(iter(DataLoader(parts[0], batch_size=6)))
    np.testing.assert_array_equal(xb, parts[0].indices * 2)


def test_random_split_bad_lengths():
    with pytest.raises(ValueError, match="sum"):
        random_split(ArrayDataset(np.arange(10)), [5, 4])


def test_labelled_subset_exact_counts():
    labels = np.repeat(np.arange(10), 30)
    np.random.default_rng(0).shuffle(labels)
    idx = labelled_subset(labels, 10, seed=1)
    assert idx.dtype == np.int64 and len(np.unique(idx)) == 100
    assert np.bincount(labels[idx]).tolist() == [10] * 10
    np.testing.assert_array_equal(idx, labelled_subset(labels, 10, seed=1))
    assert not np.array_equal(idx, labelled_subset(labels, 10, seed=2))


def test_labelled_subset_names_short_classes():
    labels = np.array([0] * 5 + [1] * 2 + [2] * 5)
    with pytest.raises(ValueError, match=r"\{1: 2\}"):
        labelled_subset(labels, 3)


# ---------------------------------------------------------------------------------------------
# scikit-learn digits
# ---------------------------------------------------------------------------------------------

def test_digits_splits():
    pytest.importorskip("sklearn")
    x_all, y_all = digits_module.load_digits("all")
    x_tr, y_tr = digits_module.load_digits("train")
    x_te, y_te = digits_module.load_digits("test")
    assert x_all.shape == (1797, 8, 8) and x_all.dtype == np.uint8 and x_all.max() == 16
    assert y_tr.dtype == np.int64 and len(x_tr) + len(x_te) == 1797
    # Stratified: every class loses round(20%) of its members to the test set.
    expected = np.round(np.bincount(y_all) * 0.2).astype(int)
    np.testing.assert_array_equal(np.bincount(y_te), expected)
    np.testing.assert_array_equal(x_te, digits_module.load_digits("test")[0])
    other, _ = digits_module.load_digits("test", seed=1)
    assert not np.array_equal(x_te, other)


def test_digits_normalize():
    pytest.importorskip("sklearn")
    x, _ = digits_module.load_digits("train", normalize=True)
    assert x.dtype == np.float32 and x.min() == 0.0 and x.max() == 1.0


def test_digits_without_sklearn_says_what_to_install(monkeypatch):
    digits_module._all_digits.cache_clear()
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)  # makes the import fail
    try:
        with pytest.raises(ImportError, match=r"tinygen\[digits\]"):
            digits_module.load_digits()
    finally:
        digits_module._all_digits.cache_clear()


def test_data_package_never_imports_torch():
    for path in (REPO_ROOT / "tinygen" / "data").glob("*.py"):
        assert "import torch" not in path.read_text(), path


# ----------------------------------------------------------------------------------------------
# Issue 15: downloads have a stall timeout and an overall deadline, and leave no .part file.


@contextlib.contextmanager
def slow_server(behaviour):
    """A local HTTP server that `behaviour(conn)` answers badly: silence or a trickle."""
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    stop = threading.Event()

    def serve():
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            threading.Thread(target=behaviour, args=(conn, stop), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}/"
    finally:
        stop.set()
        thread.join()
        server.close()


def silent(conn, stop):
    stop.wait()                          # accepts, reads nothing, never answers
    conn.close()


def trickle(conn, stop):
    conn.recv(4096)
    conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 1000000\r\n\r\n")
    while not stop.is_set():             # one byte every 0.05 s: never a stall, never done
        try:
            conn.sendall(b"x")
        except OSError:
            break
        time.sleep(0.05)
    conn.close()


@pytest.fixture
def quick_limits(monkeypatch):
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setattr(mnist_module, "STALL_TIMEOUT", 0.5)
    monkeypatch.setattr(mnist_module, "DOWNLOAD_DEADLINE", 1.5)


def test_a_server_that_never_answers_costs_the_stall_timeout(tmp_path, quick_limits):
    with slow_server(silent) as url:
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            mnist_module.fetch(url + "x.gz", tmp_path / "x.part")
        assert time.monotonic() - start < 1.4            # 0.5 s, not 90 s


def test_a_trickling_server_is_stopped_by_the_deadline(tmp_path, quick_limits):
    with slow_server(trickle) as url:
        start = time.monotonic()
        with pytest.raises(TimeoutError, match="download deadline"):
            mnist_module.fetch(url + "x.gz", tmp_path / "x.part")
        assert 1.4 < time.monotonic() - start < 3.0


def test_slow_mirrors_share_one_deadline_and_leave_no_part_file(tmp_path, monkeypatch,
                                                                  quick_limits, mirror):
    with slow_server(trickle) as url:
        use_source(monkeypatch, mirrors=(url, url, url))
        start = time.monotonic()
        with pytest.raises(DatasetError, match="deadline passed"):
            load_mnist("test", data_dir=tmp_path / "d")
        assert time.monotonic() - start < 3.0            # not 3 x 1.5 s
    assert list((tmp_path / "d" / "mnist").iterdir()) == []


def test_part_files_of_a_killed_download_are_removed(tmp_path, monkeypatch, mirror):
    folder = tmp_path / "d" / "mnist"
    folder.mkdir(parents=True)
    stem = SPLIT_STEMS["test"][0]
    old, fresh = folder / f".{stem}.abc.part", folder / f".{stem}.def.part"
    old.write_bytes(b"partial")
    fresh.write_bytes(b"partial")
    an_hour_ago = time.time() - 3600
    os.utime(old, (an_hour_ago, an_hour_ago))
    monkeypatch.setattr(mnist_module, "fetch", serve_from(mirror[0]))
    load_mnist("test", data_dir=tmp_path / "d")
    assert not old.exists()
    assert fresh.exists()             # may belong to a download still running elsewhere
