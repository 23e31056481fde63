"""Bad shapes, dims, sizes and data: each is an error that names the op and what is wrong.

Before these checks, several of them returned a wrong answer without a word: `unsqueeze(5)` on
a 2-D tensor wrapped round to dim 2, complex data lost its imaginary part, and an empty batch
crashed inside a Numba kernel.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygen as tg
from tinygen.nn import functional as F

# ----------------------------------------------------------------------------------------------
# Dims out of range raise (they used to wrap with `% ndim`).

X = tg.zeros(2, 3)


@pytest.mark.parametrize("call, message", [
    (lambda: X.unsqueeze(5), r"unsqueeze: dim 5 out of range for a 2-D tensor \(expected -3..2\)"),
    (lambda: X.unsqueeze(-4), r"unsqueeze: dim -4 out of range"),
    (lambda: X.permute(0, 5), r"permute: dim 5 out of range for a 2-D tensor \(expected -2..1\)"),
    (lambda: X.flatten(5), r"flatten: dim 5 out of range"),
    (lambda: X.flatten(0, 7), r"flatten: dim 7 out of range"),
    (lambda: tg.stack([X, X], dim=5), r"stack: dim 5 out of range for a 2-D tensor"),
    (lambda: tg.cat([X, X], dim=2), r"cat: dim 2 out of range"),
    (lambda: X.transpose(0, 4), r"transpose: dim 4 out of range for a 2-D tensor"),
    (lambda: X.split(1, dim=3), r"split: dim 3 out of range"),
    (lambda: X.chunk(2, dim=-3), r"chunk: dim -3 out of range"),
    (lambda: X.squeeze(2), r"squeeze: dim 2 out of range"),
    (lambda: X.sum(dim=2), r"sum: dim 2 out of range"),
    (lambda: X.size(2), r"size: dim 2 out of range"),
    (lambda: X.argmax(dim=2), r"argmax: dim 2 out of range"),
])
def test_dim_out_of_range_is_an_index_error(call, message):
    with pytest.raises(IndexError, match=message):
        call()


@given(st.integers(1, 4), st.integers(-6, 6))
def test_dims_in_range_match_numpy_and_others_raise(ndim, dim):
    x = tg.zeros(*range(2, 2 + ndim))
    if -(ndim + 1) <= dim <= ndim:
        assert x.unsqueeze(dim).shape == np.expand_dims(x.data, dim).shape
        assert tg.stack([x, x], dim=dim).shape == np.stack([x.data, x.data], dim).shape
    else:
        with pytest.raises(IndexError, match="unsqueeze"):
            x.unsqueeze(dim)
    if -ndim <= dim < ndim:
        assert x.flatten(dim).shape == x.data.reshape(x.shape[:dim % ndim] + (-1,)).shape
    else:
        with pytest.raises(IndexError, match="flatten"):
            x.flatten(dim)


@pytest.mark.parametrize("call, error, message", [
    (lambda: X.permute(0), ValueError, r"permute: \(0,\) names 1 dims, but the input has 2"),
    (lambda: X.permute(1, -1), ValueError, r"permute: \(1, -1\) is not a permutation"),
    (lambda: X.flatten(1, 0), ValueError, r"flatten: start_dim 1 comes after end_dim 0"),
    (lambda: X.split(0), ValueError, r"split: split_size must be a positive int, got 0"),
    (lambda: X.split(-2), ValueError, r"split: split_size must be a positive int"),
    (lambda: X.split([1, 2]), ValueError, r"split: sizes \[1, 2\] must be >= 0 and add up to 2"),
    (lambda: X.chunk(0), ValueError, r"chunk: chunks must be a positive int, got 0"),
    (lambda: X.chunk(1.5), ValueError, r"chunk: chunks must be a positive int, got 1.5"),
    (lambda: tg.zeros(3).transpose(), ValueError, r"transpose: needs at least 2 dims"),
    (lambda: X.sum(dim=(0, 0)), ValueError, r"sum: dim \(0, 0\) repeats a dimension"),
    (lambda: X.unsqueeze(1.0), TypeError, r"unsqueeze: dim must be an int, got 1.0"),
])
def test_bad_shape_arguments_say_what_is_wrong(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_chunk_of_a_short_dim_gives_fewer_pieces_like_pytorch():
    assert [c.shape for c in tg.zeros(2, 3).chunk(5)] == [(1, 3), (1, 3)]
    assert [c.shape for c in tg.zeros(0, 3).split(2)] == [(0, 3)]


# ----------------------------------------------------------------------------------------------
# Sizes in creation functions and layer constructors.


@pytest.mark.parametrize("call, error, message", [
    (lambda: tg.zeros(-1), ValueError, r"zeros: size \(-1,\) has a negative entry -1"),
    (lambda: tg.ones(2, -3), ValueError, r"ones: size \(2, -3\) has a negative entry"),
    (lambda: tg.randn((2, -1)), ValueError, r"randn: size \(2, -1\)"),
    (lambda: tg.rand(-2), ValueError, r"rand: size"),
    (lambda: tg.full((2, -1), 1.0), ValueError, r"full: size"),
    (lambda: tg.eye(-2), ValueError, r"eye: size"),
    (lambda: tg.randint(0, 5, (-1,)), ValueError, r"randint: size"),
    (lambda: tg.randint(5, 5, (2,)), ValueError, r"randint: low must be below high"),
    (lambda: tg.arange(0, 3, 0), ValueError, r"arange: step must be nonzero"),
    (lambda: tg.zeros(2.5), TypeError, r"zeros: size must be a tuple of ints, got \(2.5,\)"),
    (lambda: tg.nn.Conv2d(1, 2, 0), ValueError, r"Conv2d: kernel_size must be >= 1, got 0"),
    (lambda: tg.nn.Conv2d(0, 2, 3), ValueError, r"Conv2d: in_channels must be >= 1, got 0"),
    (lambda: tg.nn.Conv2d(1, 2, 3, stride=(1, 0)), ValueError, r"Conv2d: stride must be >= 1"),
    (lambda: tg.nn.Conv2d(1, 2, 3, padding=-1), ValueError, r"Conv2d: padding must be >= 0"),
    (lambda: tg.nn.ConvTranspose2d(2, 1, -3), ValueError, r"ConvTranspose2d: kernel_size"),
    (lambda: tg.nn.ConvTranspose2d(2, 1, 3, output_padding=-1), ValueError,
     r"ConvTranspose2d: output_padding must be >= 0"),
    (lambda: tg.nn.Linear(-1, 2), ValueError, r"Linear: in_features must be >= 1, got -1"),
    (lambda: tg.nn.Linear(3, 0), ValueError, r"Linear: out_features must be >= 1, got 0"),
    (lambda: tg.nn.Linear(3.0, 2), TypeError, r"Linear: in_features must be an int"),
    (lambda: tg.nn.Embedding(0, 4), ValueError, r"Embedding: num_embeddings must be >= 1"),
    (lambda: tg.nn.BatchNorm2d(0), ValueError, r"BatchNorm2d: num_features must be >= 1"),
    (lambda: tg.nn.MaxPool2d(0), ValueError, r"MaxPool2d: kernel_size must be >= 1"),
    (lambda: tg.nn.AvgPool2d(2, stride=0), ValueError, r"AvgPool2d: stride must be >= 1"),
])
def test_bad_sizes_name_the_function_and_argument(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_zero_sizes_make_empty_tensors():
    assert tg.zeros(0, 3).shape == (0, 3)
    assert tg.randn(2, 0).shape == (2, 0)


# ----------------------------------------------------------------------------------------------
# What tg.tensor refuses.


@pytest.mark.parametrize("data, error, message", [
    (1 + 2j, TypeError, "complex numbers are not supported"),
    (np.array([1 + 1j, 2]), TypeError, r"array of dtype complex128 .*complex numbers"),
    (["a", "b"], TypeError, "strings are not numbers"),
    ([None, 1.0], TypeError, "it holds Python objects"),
    (np.array([1, "x"], dtype=object), TypeError, "it holds Python objects"),
    ([[1, 2], [3]], ValueError, "is ragged"),
    (2**70, TypeError, "does not fit in int64"),
    ([1, 2**63], TypeError, "does not fit in int64"),
    (-2**63 - 1, TypeError, "does not fit in int64"),
])
def test_tensor_refuses_data_it_cannot_hold(data, error, message):
    with pytest.raises(error, match="tensor: .*" + message):
        tg.tensor(data)


def test_tensor_edges_that_are_allowed():
    assert tg.tensor(2**63 - 1).dtype == np.int64
    assert tg.tensor(-2**63).dtype == np.int64
    assert tg.tensor(np.array([2**63], dtype=np.uint64)).dtype == np.uint64  # asked for
    assert tg.tensor([True, False]).dtype == bool
    assert tg.tensor([1.5]).dtype == np.float32


# ----------------------------------------------------------------------------------------------
# Layers and losses.


@pytest.mark.parametrize("backend", ["numba", "reference"])
def test_an_empty_batch_goes_through_conv_layers_forward_and_backward(backend):
    from tinygen import kernels

    tg.manual_seed(0)
    net = tg.nn.Sequential(tg.nn.Conv2d(1, 2, 3, padding=1), tg.nn.ReLU(),
                           tg.nn.ConvTranspose2d(2, 1, 4, stride=2, padding=1))
    x = tg.zeros(0, 1, 5, 5, requires_grad=True)
    with kernels.use_backend(backend):
        y = net(x)
        assert y.shape == (0, 1, 10, 10)
        y.sum().backward()
    assert x.grad.shape == (0, 1, 5, 5)
    for p in net.parameters():           # no examples: every gradient is exactly zero
        assert p.grad.shape == p.shape and not p.grad.any()


def test_cross_entropy_with_a_wrong_target_shape_names_the_op_and_both_shapes():
    logits = tg.zeros(3, 4)
    with pytest.raises(ValueError, match=r"cross_entropy: .*got input \(3, 4\) and target "
                                         r"\(3, 1\)"):
        F.cross_entropy(logits, np.zeros((3, 1), np.int64))
    with pytest.raises(ValueError, match=r"cross_entropy: .*target \(4,\)"):
        tg.nn.CrossEntropyLoss()(logits, np.zeros(4, np.int64))


@pytest.mark.parametrize("call, message", [
    (lambda: F.max_pool2d(tg.zeros(1, 1, 4, 4), 2, 0), r"max_pool2d: stride must be >= 1, got 0"),
    (lambda: F.avg_pool2d(tg.zeros(1, 1, 4, 4), 0), r"avg_pool2d: kernel_size must be >= 1"),
    (lambda: F.interpolate(tg.zeros(1, 1, 4, 4), scale_factor=0),
     r"interpolate: scale_factor must be positive and finite, got 0"),
    (lambda: F.interpolate(tg.zeros(1, 1, 4, 4), scale_factor=-2), r"interpolate: scale_factor"),
    (lambda: F.interpolate(tg.zeros(1, 1, 4, 4), scale_factor=float("nan")), r"scale_factor"),
    (lambda: F.interpolate(tg.zeros(1, 1, 4, 4), size=(0, 3)), r"interpolate: size must be >= 1"),
    (lambda: F.conv2d(tg.zeros(1, 1, 5, 5), tg.zeros(2, 1, 3, 3), stride=0),
     r"conv2d: stride must be >= 1"),
])
def test_pooling_resizing_and_conv_arguments(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_a_float64_input_to_a_float32_transposed_conv_names_the_layer():
    layer = tg.nn.ConvTranspose2d(2, 1, 3, stride=2)
    x = tg.zeros(1, 2, 4, 4, dtype=np.float64)
    with pytest.raises(TypeError, match=r"ConvTranspose2d\(2, 1, kernel_size=\(3, 3\).*input "
                                        r"dtype float64 does not match the weights' float32"):
        layer(x)
    with pytest.raises(TypeError, match=r"^conv_transpose2d: input dtype float64"):
        F.conv_transpose2d(x, layer.weight)
    with pytest.raises(TypeError, match=r"Conv2d\(1, 2"):
        tg.nn.Conv2d(1, 2, 3)(tg.zeros(1, 1, 5, 5, dtype=np.float64))
    assert layer.double()(x).dtype == np.float64        # the fix the message suggests works


@pytest.mark.parametrize("p", [-0.1, 1.5, float("nan")])
def test_binary_cross_entropy_refuses_inputs_outside_0_1(p):
    with pytest.raises(ValueError, match="binary_cross_entropy: input"):
        F.binary_cross_entropy(tg.tensor([0.5, p]), np.array([1.0, 0.0]))
    with pytest.raises(ValueError, match="binary_cross_entropy"):
        tg.nn.BCELoss()(tg.tensor([p]), np.array([1.0]))
