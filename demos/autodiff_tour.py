"""A tour of reverse-mode autodiff on one artificial neuron.

    python demos/autodiff_tour.py          # about a second on a laptop CPU

We build loss = (tanh(w . x + b) - target)^2, print the graph in the order backward will
undo it, with each node's op, shape and *local* derivative (the VJP of a cotangent of ones,
i.e. d node / d input when everything is elementwise), then run backward and let
`tinygen.gradcheck` confirm the result against central differences.
"""

import argparse

import numpy as np

import tinygen as tg
from tinygen.autograd import toposort


def build(x, w, b, target):
    """The neuron, one op per line, so every intermediate tensor has a name for the printout."""
    prod = w * x                  # (3,)  elementwise
    pre = prod.sum()              # ()    w . x
    act_in = pre + b              # ()
    y = act_in.tanh()             # ()
    err = y - target              # ()
    loss = err ** 2               # ()
    return loss, locals()


def local_derivatives(t):
    """d t / d input_i for each input: the op's VJP applied to a cotangent of ones."""
    ones = np.ones_like(t.data)
    arrays = [p.data for p in t._inputs]
    return [t._op.vjp(i, ones, t.data, arrays, t._kwargs) for i in range(len(t._inputs))]


def show_graph(loss, names):
    print(f"{'node':<8} {'op':<11} {'shape':<7} {'value':<28} local derivative(s)")
    for t in toposort(loss):
        name = names.get(id(t), "?")
        value = np.array2string(t.data, precision=3, suppress_small=True)
        if t.is_leaf:
            print(f"{name:<8} {'(leaf)':<11} {str(t.shape):<7} {value:<28}")
            continue
        parts = [f"d/d{names.get(id(p), '?')} = "
                 + np.array2string(np.asarray(d), precision=3, suppress_small=True)
                 for p, d in zip(t._inputs, local_derivatives(t), strict=True)
                 if p.requires_grad]
        print(f"{name:<8} {t._op.name:<11} {str(t.shape):<7} {value:<28} " + ", ".join(parts))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0, help="seed for the random inputs")
    args = parser.parse_args(argv)

    gen = np.random.default_rng(args.seed)
    x = tg.tensor(gen.standard_normal(3))              # float64 data: an input, no grad
    w = tg.tensor(gen.standard_normal(3), requires_grad=True)
    b = tg.tensor(0.1, dtype=np.float64, requires_grad=True)
    target = 0.5

    loss, env = build(x, w, b, target)
    names = {id(v): k for k, v in {**env, "x": x, "w": w, "b": b}.items()
             if isinstance(v, tg.Tensor)}
    print("Forward graph in topological order (inputs before the ops that use them):\n")
    show_graph(loss, names)

    loss.backward()
    print("\nbackward() multiplies local derivatives along every path from loss to a leaf:")
    print(f"  dloss/dw = {w.grad}")
    print(f"  dloss/db = {b.grad}")

    # By hand: dloss/dy = 2 err, dy/dpre = 1 - y^2, dpre/dw = x.
    y = np.tanh(np.dot(w.data, x.data) + b.data)
    by_hand = 2 * (y - target) * (1 - y * y) * x.data
    print(f"  chain rule by hand, dloss/dw = {by_hand}")

    ok = tg.gradcheck(lambda w, b: build(x, w, b, target)[0], w, b)
    print(f"\ngradcheck against central differences (float64): {'passed' if ok else 'FAILED'}")


if __name__ == "__main__":
    main()
