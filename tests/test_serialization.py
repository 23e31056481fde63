"""Checkpoints: exact round trips, atomic writes, and clear errors for damaged files."""

import json
import zipfile

import numpy as np
import pytest

import tinygen as tg
from tinygen.serialization import CheckpointError, load, save


def nest():
    rng = np.random.default_rng(0)
    return {
        "model": {"w": rng.standard_normal((3, 4)).astype(np.float32), "n": np.int64(7)},
        "optimizer": {"state": {0: {"step": 3, "exp_avg": np.ones(4)}},
                      "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.999), "params": [0]}]},
        "rng": rng.bit_generator.state,
        "config": {"name": "vae", "dropout": None, "flags": [True, False]},
    }


def test_round_trip_preserves_structure_types_and_bits(tmp_path):
    original = nest()
    back = load(save(original, tmp_path / "c.npz"))
    assert back["optimizer"]["param_groups"][0]["betas"] == (0.9, 0.999)   # tuple stays tuple
    assert list(back["optimizer"]["state"]) == [0]                          # int key stays int
    assert back["rng"] == original["rng"]
    assert back["config"] == original["config"]
    w = back["model"]["w"]
    assert w.dtype == np.float32
    np.testing.assert_array_equal(w, original["model"]["w"])


def test_tensors_come_back_as_tensors(tmp_path):
    back = load(save({"t": tg.tensor([1.0, 2.0])}, tmp_path / "t.npz"))
    assert isinstance(back["t"], tg.Tensor)
    np.testing.assert_array_equal(back["t"].data, [1.0, 2.0])


def test_no_pickle_inside(tmp_path):
    path = save(nest(), tmp_path / "c.npz")
    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            header = z.read(name)[:128]
            assert b"'descr': '|O'" not in header           # no object arrays


def test_unsupported_objects_are_refused(tmp_path):
    with pytest.raises(TypeError, match="cannot store a object"):
        save({"x": object()}, tmp_path / "bad.npz")
    assert not (tmp_path / "bad.npz").exists()


def test_atomic_write_leaves_old_file_when_encoding_fails(tmp_path):
    path = save({"v": 1}, tmp_path / "c.npz")
    with pytest.raises(TypeError):
        save({"v": object()}, path)
    assert load(path) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["c.npz"]   # no temp files left behind


def test_truncated_file_gives_clear_error(tmp_path):
    path = save(nest(), tmp_path / "c.npz")
    data = path.read_bytes()
    for cut in (10, len(data) // 2, len(data) - 5):
        path.write_bytes(data[:cut])
        with pytest.raises(CheckpointError, match="c.npz"):
            load(path)


def _same(a, b):
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, np.ndarray | np.generic):
        return np.array_equal(a, b) and np.asarray(a).dtype == np.asarray(b).dtype
    return a == b


def test_a_flipped_byte_never_loads_wrong_data(tmp_path):
    # Some bytes are zip metadata that readers ignore (e.g. sizes repeated in local headers);
    # flipping those changes nothing. Every other flip must raise.
    original = nest()
    path = save(original, tmp_path / "c.npz")
    data = path.read_bytes()
    payload = _payload_bytes(path, data)
    for pos in range(0, len(data), 7):
        damaged = bytearray(data)
        damaged[pos] ^= 0x55
        path.write_bytes(bytes(damaged))
        try:
            back = load(path)
        except CheckpointError:
            continue
        assert pos not in payload, f"flip at payload byte {pos} went unnoticed"
        assert _same(back, original), f"flip at byte {pos} loaded different data"


def _payload_bytes(path, data) -> set:
    """Offsets of the members' stored bytes (after each local header)."""
    out = set()
    with zipfile.ZipFile(path) as z:
        for info in z.infolist():
            h = info.header_offset
            name_len = int.from_bytes(data[h + 26:h + 28], "little")
            extra_len = int.from_bytes(data[h + 28:h + 30], "little")
            start = h + 30 + name_len + extra_len
            out.update(range(start, start + info.compress_size))
    return out


def test_swapped_array_fails_its_checksum(tmp_path):
    # A well-formed file whose array was replaced by another valid array of the same shape.
    path = save({"w": np.zeros(3)}, tmp_path / "c.npz")
    with np.load(path) as z:
        manifest = z["__manifest__"]
    np.savez(path, __manifest__=manifest, a0=np.ones(3))
    with pytest.raises(CheckpointError, match="checksum"):
        load(path)


def test_foreign_npz_is_rejected(tmp_path):
    np.savez(tmp_path / "x.npz", a=np.ones(2))
    with pytest.raises(CheckpointError, match="not a tinygen checkpoint"):
        load(tmp_path / "x.npz")
    raw = np.frombuffer(json.dumps({"format": "other", "version": 9}).encode(), np.uint8)
    np.savez(tmp_path / "y.npz", __manifest__=raw)
    with pytest.raises(CheckpointError, match="format"):
        load(tmp_path / "y.npz")


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load(tmp_path / "nope.npz")


def test_top_level_save_and_load_of_a_model_and_optimizer(tmp_path):
    from tinygen import nn, optim

    tg.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    opt = optim.Adam(model.parameters(), lr=1e-2)
    model(tg.randn(5, 3)).sum().backward()
    opt.step()
    tg.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "step": 1},
            tmp_path / "ckpt.npz")
    back = tg.load(tmp_path / "ckpt.npz")
    twin = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    twin.load_state_dict(back["model"])
    for a, b in zip(model.parameters(), twin.parameters(), strict=True):
        np.testing.assert_array_equal(a.data, b.data)
    assert back["step"] == 1 and back["optimizer"]["param_groups"][0]["lr"] == 1e-2


# ----------------------------------------------------------------------------------------------
# Issue 15: the hash covers dtype and shape; object arrays and malformed manifests; write
# errors that name the path; temp files of killed writes.


def _rewrite_member(path, name, transform):
    """Rewrite one zip member (keeping the zip's own CRCs valid, as an editor would)."""
    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist()}
    members[name] = transform(members[name])
    with zipfile.ZipFile(path, "w") as z:
        for n, data in members.items():
            z.writestr(n, data)


def test_a_rewritten_npy_header_fails_the_checksum(tmp_path):
    path = save({"w": np.arange(6, dtype=np.float32)}, tmp_path / "c.npz")
    _rewrite_member(path, "a0.npy", lambda b: b.replace(b"'<f4'", b"'<i4'"))
    with np.load(path) as z:
        assert z["a0"].dtype == np.int32                 # the edit took: same bytes, new dtype
    with pytest.raises(CheckpointError, match=r"a0 \(int32, shape \(6,\)\) does not match its "
                                              r"checksum"):
        load(path)
    path = save({"w": np.arange(6, dtype=np.float32)}, tmp_path / "d.npz")
    _rewrite_member(path, "a0.npy", lambda b: b.replace(b"(6,)", b"(2, 3)"))
    with pytest.raises(CheckpointError, match=r"shape \(2, 3\)\) does not match its checksum"):
        load(path)


def _write_manifest(path, manifest, **arrays):
    raw = np.frombuffer(json.dumps(manifest).encode(), np.uint8)
    np.savez(path, __manifest__=raw, **arrays)
    return path


@pytest.mark.parametrize("data", [
    {"__array__": "a0"},                                    # no sha256
    {"__array__": 3, "sha256": "x"},                        # key not a string
    {"__dict__": [["k"]]},                                  # a pair of one
    {"__dict__": [[["a", ["b"]], 1]]},                      # unhashable key
    {"__dict__": "nope"},
    {"__tuple__": 5},
    {"__tensor__": 1},
    {"something": "else"},
])
def test_malformed_manifest_entries_are_checkpoint_errors(tmp_path, data):
    path = _write_manifest(tmp_path / "m.npz", {"format": "tinygen-checkpoint", "version": 2,
                                                "data": data}, a0=np.zeros(2))
    with pytest.raises(CheckpointError, match="m.npz: malformed entry"):
        load(path)


@pytest.mark.parametrize("manifest, match", [
    ({"format": "tinygen-checkpoint", "version": 2}, "no 'data' field"),
    ({"version": 2, "data": 1}, "format None"),
    ({"format": "tinygen-checkpoint", "data": 1}, "version None"),
    ([1, 2], "manifest is a list"),
])
def test_manifest_missing_fields_are_checkpoint_errors(tmp_path, manifest, match):
    with pytest.raises(CheckpointError, match=match):
        load(_write_manifest(tmp_path / "m.npz", manifest))


def test_version_1_checkpoints_still_load(tmp_path):
    import hashlib

    a = np.arange(3.0)
    ref = {"__array__": "a0", "sha256": hashlib.sha256(a.tobytes()).hexdigest()}
    path = _write_manifest(tmp_path / "old.npz", {"format": "tinygen-checkpoint", "version": 1,
                                                  "data": {"__dict__": [["w", ref]]}}, a0=a)
    np.testing.assert_array_equal(load(path)["w"], a)


def test_object_arrays_are_refused_not_pickled(tmp_path):
    with pytest.raises(TypeError, match=r"save: cannot store an array of dtype object"):
        save({"x": np.array([1, "a"], dtype=object)}, tmp_path / "c.npz")
    assert not list(tmp_path.iterdir())


def test_a_parent_that_is_a_file_names_the_path(tmp_path):
    (tmp_path / "runs").write_text("not a folder")
    with pytest.raises(NotADirectoryError, match=r"save: cannot write .*runs/x/c.npz: a parent "
                                                 r"of it is a file"):
        save({"v": 1}, tmp_path / "runs" / "x" / "c.npz")


def test_a_full_disk_names_the_path_and_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    import errno
    import os

    path = save({"v": 1}, tmp_path / "c.npz")

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match=r"save: cannot write .*c.npz: No space left on device; "
                                      r"any previous checkpoint there is unchanged") as info:
        save({"v": 2}, path)
    assert info.value.errno == errno.ENOSPC
    monkeypatch.undo()
    assert load(path) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["c.npz"]


def test_temp_files_of_a_killed_write_are_removed_by_the_next_save(tmp_path):
    import os
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    stale = tmp_path / f".c.npz.{dead}.k1ll3d.tmp"          # what a killed save leaves
    live = tmp_path / f".c.npz.{os.getppid()}.wr1t1n.tmp"  # a live process's save in progress
    other = tmp_path / f".d.npz.{dead}.k1ll3d.tmp"          # another checkpoint's
    for f in (stale, live, other):
        f.write_bytes(b"partial")
    save({"v": 1}, tmp_path / "c.npz")
    assert not stale.exists()
    assert live.exists() and other.exists()
