"""Checkpoints: `tinygen.save(obj, path)` and `tinygen.load(path)`, safe to trust and to lose power.

What a checkpoint holds is a nest of dicts, lists and tuples whose leaves are arrays, numbers,
strings, booleans or None: a model's state_dict, an optimizer's, the step, the config, the RNG
state. We store it as one `.npz` file (a zip of `.npy` arrays) whose member `__manifest__` is
JSON describing the nest, with every array replaced by a reference and its SHA-256.

Three rules, each answering a way checkpoints go wrong:

1. **No pickle.** Loading a pickle runs arbitrary code; `.npy` and JSON are plain data, and
   `np.load(..., allow_pickle=False)` refuses anything else.
2. **Atomic writes.** We write to a temporary file in the same folder, flush and fsync it,
   then `os.replace` it over the target. A crash leaves the old checkpoint or the new one,
   never half of one.
3. **Verified reads.** A truncated or edited file fails with `CheckpointError` naming the file
   and what is wrong: the zip's CRCs (all checked before anything is parsed) catch damaged
   bytes, and each array's SHA-256 in the manifest catches an array swapped for another
   valid one. The hash covers the array's dtype and shape as well as its bytes: the same
   bytes read as int32 instead of float32 are different weights, and a rewritten `.npy`
   header must not pass.

A Tensor comes back as a Tensor (its `requires_grad` kept); a Module or an optimizer is
refused, since storing one would mean pickling its code: save its `state_dict()` instead.
Version 1 files (whose hashes covered the bytes only) still load, with that weaker check.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import re
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from tinygen.autograd import Tensor

FORMAT = "tinygen-checkpoint"
VERSION = 2            # 2: hashes cover dtype and shape; tensors are marked as tensors
READABLE_VERSIONS = (1, 2)


class CheckpointError(ValueError):
    """A checkpoint could not be read or does not hold what it claims."""


# ----------------------------------------------------------------------------------------------
# Encoding a nest as JSON plus named arrays.


def _encode(obj, arrays: dict):
    if isinstance(obj, Tensor):
        return {"__tensor__": _encode(obj.data, arrays), "requires_grad": obj.requires_grad}
    if isinstance(obj, np.ndarray):
        if obj.dtype.hasobject:       # np.savez would pickle it, and loading would run code
            raise TypeError(f"save: cannot store an array of dtype {obj.dtype} (shape "
                            f"{obj.shape}): it holds Python objects, which only pickle can "
                            f"store; checkpoints hold numeric, boolean and string arrays")
        key = f"a{len(arrays)}"
        arrays[key] = obj
        return {"__array__": key, "sha256": _digest(obj)}
    if callable(getattr(obj, "state_dict", None)):
        kind = type(obj).__name__
        name = "model" if hasattr(obj, "parameters") else "optimizer"
        raise TypeError(f"save: cannot store a {kind} object: tinygen never pickles, so it "
                        f"does not save code. Save {name}.state_dict() instead, and restore "
                        f"it into a freshly built {kind} with "
                        f"{name}.load_state_dict(tinygen.load(path))")
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    if isinstance(obj, dict):
        return {"__dict__": [[_encode(k, arrays), _encode(v, arrays)] for k, v in obj.items()]}
    if isinstance(obj, tuple):
        return {"__tuple__": [_encode(v, arrays) for v in obj]}
    if isinstance(obj, list):
        return [_encode(v, arrays) for v in obj]
    raise TypeError(f"save: cannot store a {type(obj).__name__}; checkpoints hold dicts, lists, "
                    f"tuples, arrays, tensors, numbers, strings, booleans and None")


def _decode(obj, arrays, ctx):
    """Rebuild the nest. `ctx` is (path, version). Every malformed entry, whatever its kind,
    becomes a CheckpointError naming the file, never a KeyError from deep inside."""
    if isinstance(obj, list):
        return [_decode(v, arrays, ctx) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if "__array__" in obj:
        return _checked_array(obj, arrays, ctx)
    if "__tensor__" in obj:
        data = _decode(obj["__tensor__"], arrays, ctx)
        if not isinstance(data, np.ndarray):
            _malformed(ctx, obj)
        return Tensor(data, requires_grad=bool(obj.get("requires_grad", False)))
    if "__tuple__" in obj and isinstance(obj["__tuple__"], list):
        return tuple(_decode(v, arrays, ctx) for v in obj["__tuple__"])
    if "__dict__" in obj and isinstance(obj["__dict__"], list):
        pairs = obj["__dict__"]
        if not all(isinstance(kv, list) and len(kv) == 2 for kv in pairs):
            _malformed(ctx, obj)
        return {_hashable(_decode(k, arrays, ctx), ctx): _decode(v, arrays, ctx)
                for k, v in pairs}
    _malformed(ctx, obj)


def _malformed(ctx, obj):
    raise CheckpointError(f"{ctx[0]}: malformed entry in the manifest: {str(obj)[:80]}")


def _hashable(key, ctx):
    key = tuple(key) if isinstance(key, list) else key
    try:
        hash(key)
    except TypeError:
        _malformed(ctx, key)
    return key


def _digest(a: np.ndarray, version: int = VERSION) -> str:
    """SHA-256 of the array's dtype (with byte order), shape and bytes (version 1: bytes only)."""
    h = hashlib.sha256()
    if version >= 2:
        h.update(f"{a.dtype.str} {a.shape}\n".encode())
    h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def _checked_array(ref, arrays, ctx):
    path, version = ctx
    key, digest = ref.get("__array__"), ref.get("sha256")
    if not isinstance(key, str) or not isinstance(digest, str):
        _malformed(ctx, ref)
    if key not in arrays:
        raise CheckpointError(f"{path}: array {key} is listed in the manifest but missing")
    a = arrays[key]
    if _digest(a, version) != digest:
        raise CheckpointError(f"{path}: array {key} ({a.dtype}, shape {a.shape}) does not "
                              f"match its checksum; the file was modified or damaged")
    return a


# ----------------------------------------------------------------------------------------------
# Writing and reading.


def save(obj, path) -> Path:
    """Write `obj` to `path` atomically (temp file, fsync, rename). Returns the path."""
    path = Path(path)
    arrays: dict[str, np.ndarray] = {}
    manifest = {"format": FORMAT, "version": VERSION, "data": _encode(obj, arrays)}
    buffer = io.BytesIO()
    np.savez(buffer, __manifest__=np.frombuffer(json.dumps(manifest).encode(), np.uint8),
             **arrays)
    _make_folder(path)
    _remove_stale_temps(path)
    try:
        # The temp file's name holds our PID, so a later save can tell a temp file left by a
        # killed process (safe to delete) from one another process is still writing.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.",
                                   suffix=".tmp")
    except OSError as err:
        raise _write_error(path, err) from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(buffer.getbuffer())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        raise _write_error(path, err) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def _make_folder(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise NotADirectoryError(errno.ENOTDIR, f"save: cannot write {path}: a parent of it "
                                 f"is a file, not a folder", str(path.parent)) from None
    except OSError as err:
        raise _write_error(path, err) from None


def _write_error(path: Path, err: OSError) -> OSError:
    """The same kind of OSError, with a message naming the checkpoint (a full disk gives
    `save: cannot write runs/x/checkpoint.npz: No space left on device ...`)."""
    reason = err.strerror or str(err)
    return type(err)(err.errno, f"save: cannot write {path}: {reason}; any previous "
                                f"checkpoint there is unchanged")


_TEMP = re.compile(r"\.(?P<name>.+)\.(?P<pid>\d+)\.[^.]+\.tmp$")


def _remove_stale_temps(path: Path) -> None:
    """Delete temp files of earlier saves to `path` whose writer is dead (killed mid-write)."""
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        m = _TEMP.match(tmp.name)
        if m and m["name"] == path.name and not _alive(int(m["pid"])):
            tmp.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False          # our own leftovers: this process is not writing them now
    try:
        os.kill(pid, 0)       # signal 0 only checks that the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True           # it exists, under another user
    return True


def _fsync_dir(folder: Path) -> None:
    # Make the rename itself durable; not every platform lets us open a directory.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load(path):
    """Read a checkpoint written by `save`, verifying every array; never unpickles."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"load: no checkpoint at {path}")
    try:
        # NumPy may stop reading a member before the zip checks its CRC, so check them all.
        with zipfile.ZipFile(path) as z:
            bad = z.testzip()
        if bad is not None:
            raise CheckpointError(f"{path}: member {bad} is damaged (CRC mismatch)")
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except CheckpointError:
        raise
    except Exception as err:  # zipfile and NumPy raise many types for damaged bytes
        raise CheckpointError(f"{path}: not a readable checkpoint (truncated or corrupt?): "
                              f"{type(err).__name__}: {err}") from None
    manifest = _read_manifest(arrays.pop("__manifest__", None), path)
    return _decode(manifest["data"], arrays, (path, manifest["version"]))


def _read_manifest(raw, path) -> dict:
    if raw is None:
        raise CheckpointError(f"{path}: has no __manifest__; not a tinygen checkpoint")
    try:
        manifest = json.loads(raw.tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{path}: manifest is not valid JSON: {err}") from None
    if not isinstance(manifest, dict):
        raise CheckpointError(f"{path}: manifest is a {type(manifest).__name__}, not an object")
    if manifest.get("format") != FORMAT or manifest.get("version") not in READABLE_VERSIONS:
        raise CheckpointError(f"{path}: format {manifest.get('format')!r} version "
                              f"{manifest.get('version')!r}, expected {FORMAT!r} version "
                              f"{' or '.join(map(str, READABLE_VERSIONS))}")
    if "data" not in manifest:
        raise CheckpointError(f"{path}: manifest has no 'data' field")
    return manifest
