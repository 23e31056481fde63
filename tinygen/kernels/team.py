"""A team of threads for short kernels: the calling thread plus parked helpers.

What this file teaches
----------------------
How to split a loop across cores when each call is short (about a millisecond). Numba's
``prange`` would do it, but every parallel launch under its ``workqueue`` threading layer
wakes all the pool's workers and puts the calling thread to sleep until they finish; a
wake-up costs tens of microseconds on a laptop and far more on a cloud VM, whose idle virtual
CPUs are halted; on the 2-core benchmark VM that overhead was a large part of a thin conv's
time (the README's Performance notes have the measurements). Numba's OpenMP layer wakes
faster because its threads spin while idle, but then they take the cores from OpenBLAS's
threads and slow down the big GEMMs of the other layers.

The team does three things differently:

1. The calling thread works too instead of waiting, so a 2-core machine needs just one helper
   and one wake-up per call. Threads claim small pieces of the work from a shared counter, so
   a thread slowed by someone else's spinning threads just does fewer of them.
2. Helpers sleep on an ``Event`` between calls and never spin, so they leave the cores to BLAS.
3. The kernels are ``@njit(nogil=True)`` functions over a range of chunks ``[t0, t1)``; Numba
   releases Python's GIL while they run, so the threads really do run at once.

A kernel splits its work into a fixed number of chunks whatever the thread count (see
``numba_kernels._CHUNKS``), so any sum it makes per chunk comes out bitwise the same on every
machine. If the team is busy (another Python thread is running a kernel) the caller runs all
the chunks itself. The team size is ``numba.get_num_threads()``, so ``NUMBA_NUM_THREADS`` and
``numba.set_num_threads`` apply here too.
"""

import itertools
import os
import threading

import numba


class _Helper:
    """One parked thread: `start` hands it a call, `wait` blocks until it is done."""

    def __init__(self):
        self._go, self._done = threading.Event(), threading.Event()
        self._call, self._error = None, None
        threading.Thread(target=self._loop, name="tinygen-kernel-helper", daemon=True).start()

    def _loop(self):
        while True:
            self._go.wait()
            self._go.clear()
            kernel, args = self._call
            try:
                kernel(*args)
            except BaseException as err:  # re-raised in the calling thread by `wait`
                self._error = err
            self._call = None
            self._done.set()

    def start(self, kernel, args):
        self._done.clear()
        self._error = None
        self._call = (kernel, args)
        self._go.set()

    def wait(self):
        self._done.wait()
        if self._error is not None:
            error, self._error = self._error, None
            raise error


_helpers: list[_Helper] = []
_busy = threading.Lock()


# Each call is cut into this many pieces per thread, claimed one at a time: when another
# process or library (OpenBLAS's threads spin for ~0.1 s after every GEMM) slows one thread,
# the others take more pieces instead of waiting for it. Each claim is one kernel call, a few
# microseconds of dispatch, so the pieces stay few.
_PIECES_PER_THREAD = 4


def run(kernel, args, chunks):
    """Call ``kernel(*args, t0, t1)`` over pieces of ``range(chunks)`` on all the team's threads.

    Returns once every piece is done; an exception in any piece is raised here. Which thread
    runs which piece varies from call to call, so a kernel's result for chunk t must depend
    only on t (never on the thread): then the result is the same every time.
    """
    threads = min(numba.get_num_threads(), chunks)
    if threads <= 1 or not _busy.acquire(blocking=False):
        kernel(*args, 0, chunks)
        return
    try:
        while len(_helpers) < threads - 1:
            _helpers.append(_Helper())
        pieces = min(chunks, _PIECES_PER_THREAD * threads)
        bounds = [i * chunks // pieces for i in range(pieces + 1)]
        claims = itertools.count()  # next() on it is atomic under the GIL

        def work():
            while (i := next(claims)) < pieces:
                kernel(*args, bounds[i], bounds[i + 1])

        helpers = _helpers[: threads - 1]
        for helper in helpers:
            helper.start(work, ())
        try:
            while (i := next(claims)) < pieces:  # the caller claims pieces too: work()'s loop,
                kernel(*args, bounds[i], bounds[i + 1])  # inline so the kernel is one call away
        finally:
            errors = []
            for helper in helpers:  # always wait: a helper may still be writing into args
                try:
                    helper.wait()
                except BaseException as err:
                    errors.append(err)
        if errors:
            raise errors[0]
    finally:
        _busy.release()


def _forget_helpers_after_fork():
    """A forked child has only the thread that forked: start new helpers when needed."""
    global _busy
    _helpers.clear()
    _busy = threading.Lock()


os.register_at_fork(after_in_child=_forget_helpers_after_fork)
