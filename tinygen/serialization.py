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
   valid one.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from tinygen.autograd import Tensor

FORMAT = "tinygen-checkpoint"
VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint could not be read or does not hold what it claims."""


# ----------------------------------------------------------------------------------------------
# Encoding a nest as JSON plus named arrays.


def _encode(obj, arrays: dict):
    if isinstance(obj, Tensor):
        obj = obj.data
    if isinstance(obj, np.ndarray):
        key = f"a{len(arrays)}"
        arrays[key] = obj
        return {"__array__": key, "sha256": _digest(obj)}
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


def _decode(obj, arrays, path):
    if isinstance(obj, list):
        return [_decode(v, arrays, path) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if "__array__" in obj:
        return _checked_array(obj, arrays, path)
    if "__tuple__" in obj:
        return tuple(_decode(v, arrays, path) for v in obj["__tuple__"])
    if "__dict__" in obj:
        return {_hashable(_decode(k, arrays, path)): _decode(v, arrays, path)
                for k, v in obj["__dict__"]}
    raise CheckpointError(f"{path}: unrecognised entry in the manifest: {str(obj)[:80]}")


def _hashable(key):
    return tuple(key) if isinstance(key, list) else key


def _digest(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def _checked_array(ref, arrays, path):
    key = ref["__array__"]
    if key not in arrays:
        raise CheckpointError(f"{path}: array {key} is listed in the manifest but missing")
    a = arrays[key]
    if _digest(a) != ref.get("sha256"):
        raise CheckpointError(f"{path}: array {key} {a.shape} does not match its checksum; "
                              f"the file was modified or damaged")
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
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(buffer.getbuffer())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


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
    return _decode(manifest["data"], arrays, path)


def _read_manifest(raw, path) -> dict:
    if raw is None:
        raise CheckpointError(f"{path}: has no __manifest__; not a tinygen checkpoint")
    try:
        manifest = json.loads(raw.tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{path}: manifest is not valid JSON: {err}") from None
    if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
        raise CheckpointError(f"{path}: format {manifest.get('format')!r} version "
                              f"{manifest.get('version')!r}, expected {FORMAT!r} {VERSION}")
    return manifest
