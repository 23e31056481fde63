"""tinygen.kernels.team: the calling thread plus parked helpers share a kernel's chunks.

The kernels here are plain Python functions with the team's calling convention
`kernel(*args, t0, t1)`; the Numba kernels use the same convention (see test_kernels.py for
their results). No timing assertions: speed is measured in benchmarks/.
"""

import multiprocessing
import threading
import time

import numba
import numpy as np
import pytest

from tinygen.kernels import numba_kernels, reference, team


def record_shares(hits, owners, t0, t1):
    for t in range(t0, t1):
        hits[t] += 1
        owners[t] = threading.get_ident()


@pytest.mark.parametrize("chunks", [1, 2, 3, 16, 17, 100])
def test_every_chunk_runs_exactly_once(chunks):
    hits, owners = np.zeros(chunks, int), np.zeros(chunks, np.int64)
    team.run(record_shares, (hits, owners), chunks)
    np.testing.assert_array_equal(hits, 1)


def slow_shares(owners, t0, t1):
    time.sleep(0.02)  # releases the GIL, like a nogil Numba kernel
    owners[t0:t1] = threading.get_ident()


def test_the_caller_and_a_helper_both_take_pieces():
    if numba.get_num_threads() < 2:
        pytest.skip("one thread: no helpers")
    owners = np.zeros(8, np.int64)
    team.run(slow_shares, (owners,), 8)
    assert threading.get_ident() in owners
    assert len(set(owners.tolist())) >= 2


def fail_in_last_share(chunks, t0, t1):
    if t1 == chunks:
        time.sleep(0.02)  # let a helper claim some piece first
        raise ValueError(f"share [{t0}, {t1}) failed")


def test_an_error_in_any_piece_reaches_the_caller_and_the_team_recovers():
    if numba.get_num_threads() < 2:
        pytest.skip("one thread: no helpers")
    with pytest.raises(ValueError, match=r"share \[\d+, 8\) failed"):
        team.run(fail_in_last_share, (8,), 8)
    hits, owners = np.zeros(8, int), np.zeros(8, np.int64)
    team.run(record_shares, (hits, owners), 8)
    np.testing.assert_array_equal(hits, 1)


def test_two_python_threads_calling_kernels_at_once_get_right_answers():
    """While one thread has the team, another runs its kernel alone; both must be right."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 1, 12, 12))
    w = rng.standard_normal((8, 1, 3, 3))
    want = reference.conv2d_forward(x, w, 1, 1)
    results, errors = [], []

    def worker():
        try:
            for _ in range(20):
                results.append(numba_kernels.conv2d_forward(x, w, 1, 1))
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(results) == 60
    for y in results:
        np.testing.assert_allclose(y, want, rtol=1e-12, atol=1e-12)


def conv_in_child(x, w):
    return numba_kernels.conv2d_forward(x, w, 1, 1)


def test_a_forked_child_starts_its_own_helpers():
    """Helper threads do not survive fork(); a child must not wait for them forever."""
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((8, 1, 10, 10)), rng.standard_normal((4, 1, 3, 3))
    want = numba_kernels.conv2d_forward(x, w, 1, 1)  # the parent's helpers exist now
    with multiprocessing.get_context("fork").Pool(1) as pool:
        got = pool.apply_async(conv_in_child, (x, w)).get(timeout=60)
    np.testing.assert_array_equal(got, want)
