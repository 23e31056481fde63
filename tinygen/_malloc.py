"""Why tinygen adjusts glibc's malloc when it is imported (Linux only).

Every NumPy op returns a fresh array, so a training step allocates and frees hundreds of
arrays of a few hundred kilobytes. By default glibc hands freed memory at the top of the heap
back to the operating system and serves large requests with fresh `mmap`s, so the next
allocation of the same size page-faults every 4 kB page in again. Measured on a 2-core
machine: a chain of 11 elementwise float32 ops on 128 x 784 arrays took 1.55 ms with the
defaults and 0.48 ms with the thresholds below; the MLP-VAE training step (benchmarks/
bench_engine.py) went from 6.2-7.5 ms to 5.8-6.0 ms. PyTorch avoids the same cost with its
own caching allocator.

So we raise three thresholds (see `man mallopt`): keep up to 512 MB of freed memory instead of
trimming it, pad each heap growth by 64 MB, and use `mmap` only for blocks above 32 MB. The
process may keep more memory than it is using; set TINYGEN_MALLOPT=0 before importing
tinygen to leave malloc alone. Elsewhere (macOS, Windows, musl) this does nothing.
"""

import ctypes
import os
import sys

M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
SETTINGS = {M_TRIM_THRESHOLD: 512 << 20, M_TOP_PAD: 64 << 20, M_MMAP_THRESHOLD: 32 << 20}


def tune_malloc() -> bool:
    """Apply SETTINGS through glibc's mallopt; True if every setting was accepted."""
    if not sys.platform.startswith("linux") or os.environ.get("TINYGEN_MALLOPT") == "0":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):        # not glibc
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return all(mallopt(param, value) == 1 for param, value in SETTINGS.items())


TUNED = tune_malloc()
