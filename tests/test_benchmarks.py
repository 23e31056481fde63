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
