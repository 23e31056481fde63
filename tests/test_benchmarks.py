"""The benchmark scripts' own logic (never their timings): they must measure what they say."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import profile_step  # noqa: E402

from tinygen import ops  # noqa: E402


def test_profile_step_times_the_primitives_the_step_calls_and_unwraps_them():
    before = {name: (p.forward, p.vjps, p.joint_vjp) for name, p in ops.PRIMITIVES.items()}
    total, timers = profile_step.profile("classifier", steps=2, warmup=1)
    # The classifier's step runs its two convs forward and backward, and one Adam step.
    assert timers.calls["conv2d", "forward"] == 2 * 2
    assert timers.calls["conv2d", "vjp"] == 2 * 2
    assert [k for k in timers.calls if k[1] == "step"] == [("opt (Adam)", "step")]
    assert 0 < sum(timers.seconds.values()) < 2 * total
    after = {name: (p.forward, p.vjps, p.joint_vjp) for name, p in ops.PRIMITIVES.items()}
    assert after == before


def test_profile_step_cli_prints_the_table(capsys):
    profile_step.main(["--model", "ae", "--steps", "1", "--rows", "50"])
    out = capsys.readouterr().out
    assert out.startswith("ae: ") and "| linear | forward |" in out and "outside the" in out


def test_ablation_step_cost_runs_each_backend_and_restores_numba(monkeypatch):
    import improved_gan_ablation

    from tinygen import kernels
    from tinygen.kernels import numba_kernels, reference
    calls = {"reference": 0, "numba": 0}
    for name, module in [("reference", reference), ("numba", numba_kernels)]:
        real = module.minibatch_closeness_forward

        def counted(M, real=real, name=name):
            calls[name] += 1
            return real(M)
        monkeypatch.setattr(module, "minibatch_closeness_forward", counted)
    kernels.set_backend("numba")             # rebinds the names to the counted functions
    try:
        rows = improved_gan_ablation.step_cost(["+ minibatch discrimination"], repeats=10)
        assert kernels.get_backend().__name__ == "tinygen.kernels.numba_kernels"
    finally:
        monkeypatch.undo()
        kernels.set_backend("numba")
    assert calls["reference"] > 0 and calls["numba"] > 0
    assert rows[0][0] == "+ minibatch discrimination" and len(rows[0]) == 4


def test_wide_parts_times_the_passes_that_make_the_conv():
    import bench_kernels
    import numpy as np

    from tinygen.kernels import numba_kernels
    passes, x, w, _, _, y = bench_kernels.wide_forward_passes(batch=3)
    assert not numba_kernels._takes_direct_path(
        numba_kernels.conv_geometry("conv2d", x.shape, (4, 4), 2, 1, 1))   # the GEMM path
    for fn in passes.values():
        fn()
    np.testing.assert_array_equal(y.reshape(3, 128, 7, 7), numba_kernels.conv2d_forward(x, w, 2, 1))
    rows = bench_kernels.wide_parts(batch=3, repeats=2)
    assert set(passes) <= set(rows) and all(t["alone"] > 0 for t in rows.values())
