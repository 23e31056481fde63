"""Convolution as matrix multiplication: the readable NumPy reference kernels.

What this file teaches
----------------------
A 2-D convolution is a matrix multiplication in disguise. ``im2col`` copies every receptive
field (patch) of the input into one row of a matrix; the conv is then one GEMM with the weight
flattened to ``(C_out, C_in*kh*kw)``. Its backward passes are two more GEMMs, and ``col2im``
(the adjoint of ``im2col``: it scatter-adds patches back into an image) finishes the input
gradient. (The name says "col" because the classic layout stores patches as columns.)

A transposed convolution needs no kernels of its own: its forward *is* the conv's input
gradient, its input gradient *is* the conv's forward, and its weight gradient is the conv's
weight gradient with the two activations swapped. Read the file top to bottom.

Column layout
-------------
``cols`` has shape ``(N*Ho*Wo, C*kh*kw)``: one row per output pixel ``(n, oh, ow)`` holding its
receptive field, flattened in the order ``(c, i, j)`` of ``w.reshape(O, -1)``. So a row is a
patch and ``cols @ w.reshape(O, -1).T`` is the conv. Two reasons for this layout:

* The whole batch sits in the rows, so each pass is ONE large GEMM (e.g. 6272 x 1024 x 128),
  which BLAS runs far faster than 128 small per-sample GEMMs with only Ho*Wo = 49 rows each.
* Each sample's patches are one contiguous block of memory, so building it (im2col) and
  scattering it back (col2im) stream through memory instead of hopping between 1024 rows
  that are each N*Ho*Wo elements apart. (The transposed layout (C*kh*kw, N*Ho*Wo) made the
  Numba im2col and col2im slower; the README's Performance notes have the measurement.)

Conventions: activations are NCHW; conv weights are ``(C_out, C_in, kh, kw)`` as in PyTorch's
Conv2d; ``stride``, ``padding`` and ``dilation`` are ints or ``(h, w)`` pairs. Every returned
array is freshly allocated and has the input dtype (float32 or float64).

Next: ``numba_kernels.py`` has the same functions with the same signatures, made fast; diff
the two files to see what changes. ``__init__.py`` picks the backend.
"""

import numpy as np

# ---------------------------------------------------------------------------------------------
# Geometry helpers (shared by both backends, so the two can never disagree about shapes).
# ---------------------------------------------------------------------------------------------


def pair(v):
    """Normalise an int or a 2-sequence to an ``(h, w)`` tuple of ints."""
    if isinstance(v, (int, np.integer)):
        return int(v), int(v)
    h, w = v
    return int(h), int(w)


def conv_output_hw(op, hw, k, stride, padding, dilation):
    """Output (Ho, Wo) of a conv over an (H, W) input; raises if the kernel does not fit.

    Each axis follows ``out = floor((in + 2p - d*(k-1) - 1) / s) + 1``; ``d*(k-1) + 1`` is the
    extent of the dilated kernel, which must fit inside the padded input at least once.
    """
    out = []
    for size, kk, s, p, d, axis in zip(hw, k, stride, padding, dilation, "HW", strict=True):
        if s < 1 or d < 1 or p < 0:
            raise ValueError(
                f"{op}: need stride >= 1, dilation >= 1, padding >= 0, got "
                f"stride={s}, dilation={d}, padding={p}"
            )
        extent = d * (kk - 1) + 1
        if extent > size + 2 * p:
            raise ValueError(
                f"{op}: dilated kernel extent {extent} along {axis} (k={kk}, "
                f"dilation={d}) is larger than the padded input {size + 2 * p} "
                f"({size} + 2*padding {p})"
            )
        out.append((size + 2 * p - extent) // s + 1)
    return tuple(out)


def conv_transpose_output_hw(hw, k, stride, padding, output_padding, dilation):
    """Output (H, W) of a transposed conv, PyTorch's formula, with PyTorch's validation.

    ``out = (in - 1)*s - 2p + d*(k-1) + output_padding + 1``. Several conv inputs sizes map to
    the same conv output size (the floor in the conv formula); output_padding picks one, so it
    must be smaller than the stride (or the dilation), exactly as PyTorch requires.
    """
    out = []
    for size, kk, s, p, op, d in zip(hw, k, stride, padding, output_padding, dilation, strict=True):
        if not (0 <= op < s or 0 <= op < d):
            raise ValueError(
                f"conv_transpose2d: output_padding must be smaller than either "
                f"stride or dilation, got output_padding={output_padding}, "
                f"stride={stride}, dilation={dilation}"
            )
        n = (size - 1) * s - 2 * p + d * (kk - 1) + op + 1
        if n < 1:
            raise ValueError(
                f"conv_transpose2d: output size {n} is not positive for input "
                f"{size}, kernel {kk}, stride {s}, padding {p}, dilation {d}"
            )
        out.append(n)
    return tuple(out)


def conv_transpose_input_hw(out_hw, k, stride, padding, output_padding, dilation):
    """Invert the transposed-conv size formula: the input (H, W) that gave ``out_hw``."""
    s, p, op, d = pair(stride), pair(padding), pair(output_padding), pair(dilation)
    return tuple(
        (out_hw[a] - 1 + 2 * p[a] - d[a] * (k[a] - 1) - op[a]) // s[a] + 1 for a in range(2)
    )


def check_conv_args(op, x_shape, w_shape, dtypes, bias_shape=None):
    """Validate NCHW / OIHW shapes, an (O,) bias and a single float dtype; raise clear errors."""
    if len(x_shape) != 4 or len(w_shape) != 4:
        raise ValueError(f"{op}: expected 4-D input and weight, got shapes {x_shape}, {w_shape}")
    if x_shape[1] != w_shape[1]:
        raise ValueError(
            f"{op}: input has {x_shape[1]} channels but the weight expects "
            f"{w_shape[1]} (input {x_shape}, weight {w_shape})"
        )
    if bias_shape is not None and tuple(bias_shape) != (w_shape[0],):
        raise ValueError(
            f"{op}: bias has shape {tuple(bias_shape)} but the weight {w_shape} has "
            f"{w_shape[0]} output channels, so it must be ({w_shape[0]},)"
        )
    kinds = {np.dtype(d) for d in dtypes}
    if len(kinds) != 1 or kinds.pop() not in (np.float32, np.float64):
        raise TypeError(f"{op}: arrays must all be float32 or all float64, got {dtypes}")


def match_output(gy, hw):
    """Zero-pad ``gy`` at the bottom/right up to the conv's full output size ``hw``.

    A transposed conv with output_padding >= stride (allowed when dilation is larger) reaches
    one conv-output row/column fewer than the plain conv formula gives; padding with zeros
    makes the missing positions contribute nothing, which is exactly right.
    """
    dh, dw = hw[0] - gy.shape[2], hw[1] - gy.shape[3]
    if dh < 0 or dw < 0:
        raise ValueError(
            f"conv2d: grad_output spatial size {gy.shape[2:]} exceeds the conv output size {hw}"
        )
    if dh == 0 and dw == 0:
        return gy
    return np.pad(gy, ((0, 0), (0, 0), (0, dh), (0, dw)))


# ---------------------------------------------------------------------------------------------
# im2col and its adjoint col2im.
# ---------------------------------------------------------------------------------------------


def im2col(x, kh, kw, stride, padding, dilation):
    """Copy every receptive field of ``x`` (N, C, H, W) into a column.

    Returns ``cols`` of shape (N*Ho*Wo, C*kh*kw) with
    ``cols[(n*Ho + oh)*Wo + ow, (c*kh + i)*kw + j] = xpad[n, c, oh*sh + i*dh, ow*sw + j*dw]``.
    """
    (sh, sw), (ph, pw), (dh, dw) = pair(stride), pair(padding), pair(dilation)
    N, C, H, W = x.shape
    Ho, Wo = conv_output_hw("im2col", (H, W), (kh, kw), (sh, sw), (ph, pw), (dh, dw))
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))  # (N, C, H+2ph, W+2pw)
    cols = np.empty((N, Ho, Wo, C, kh, kw), dtype=x.dtype)
    # Loop over the kh*kw taps only: for a fixed tap (i, j) the pixels it sees across all
    # output positions form one strided slice of the padded image, so NumPy copies it at once.
    for i in range(kh):
        for j in range(kw):
            top, left = i * dh, j * dw
            patch = xp[
                :, :, top : top + sh * (Ho - 1) + 1 : sh, left : left + sw * (Wo - 1) + 1 : sw
            ]
            cols[..., i, j] = patch.transpose(0, 2, 3, 1)  # (N, Ho, Wo, C)
    return cols.reshape(N * Ho * Wo, C * kh * kw)


def col2im(cols, x_shape, kh, kw, stride, padding, dilation):
    """Adjoint of ``im2col``: scatter-add each column back to the pixels it was copied from.

    A pixel that sat in several receptive fields receives the sum of all its copies, which is
    what makes ``<im2col(x), c> == <x, col2im(c)>`` hold. Padded positions are dropped.
    """
    (sh, sw), (ph, pw), (dh, dw) = pair(stride), pair(padding), pair(dilation)
    N, C, H, W = x_shape
    Ho, Wo = conv_output_hw("col2im", (H, W), (kh, kw), (sh, sw), (ph, pw), (dh, dw))
    cols6 = cols.reshape(N, Ho, Wo, C, kh, kw)
    xp = np.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            top, left = i * dh, j * dw
            # += on a strided slice is safe here: within one tap no two output positions map
            # to the same pixel, so there are no duplicate indices inside a single update.
            xp[:, :, top : top + sh * (Ho - 1) + 1 : sh, left : left + sw * (Wo - 1) + 1 : sw] += (
                cols6[..., i, j].transpose(0, 3, 1, 2)
            )  # (N, C, Ho, Wo)
    return xp[:, :, ph : ph + H, pw : pw + W].copy()  # (N, C, H, W)


# ---------------------------------------------------------------------------------------------
# Conv2d: forward and the two vector-Jacobian products, each one GEMM.
# ---------------------------------------------------------------------------------------------


# What conv2d_forward(save=True) keeps for conv2d_backward: x's im2col, tagged with its column
# order so that a backend never reads another backend's layout (numba_kernels uses (i, j, c)).
SAVED_COLS = "im2col, columns (c, i, j)"


def conv2d_forward(x, w, stride=1, padding=0, dilation=1, bias=None, save=False):
    """y = conv2d(x, w) + bias: x (N, C, H, W), w (O, C, kh, kw), bias (O,) or None.

    Returns y of shape (N, O, Ho, Wo), or ``(y, saved)`` with ``save=True``: ``saved`` is the
    im2col matrix the forward built anyway, which ``conv2d_backward`` then reuses for the
    weight gradient instead of building it again.
    """
    dtypes = (x.dtype, w.dtype) if bias is None else (x.dtype, w.dtype, bias.dtype)
    check_conv_args("conv2d", x.shape, w.shape, dtypes, None if bias is None else bias.shape)
    N, O, (kh, kw) = x.shape[0], w.shape[0], w.shape[2:]
    Ho, Wo = conv_output_hw(
        "conv2d", x.shape[2:], (kh, kw), pair(stride), pair(padding), pair(dilation)
    )
    cols = im2col(x, kh, kw, stride, padding, dilation)  # (N*Ho*Wo, C*kh*kw)
    y = cols @ w.reshape(O, -1).T  # (N*Ho*Wo, O): every patch dotted with every filter
    if bias is not None:
        y += bias  # one bias per output channel, i.e. per column
    # The GEMM gives channels-last (N, Ho, Wo, O); one transposing copy makes it NCHW.
    y = np.ascontiguousarray(y.reshape(N, Ho, Wo, O).transpose(0, 3, 1, 2))
    return (y, (SAVED_COLS, cols)) if save else y


def conv2d_input_grad(gy, w, x_shape, stride=1, padding=0, dilation=1):
    """gx = dL/dx given gy = dL/dy: the transpose of conv2d_forward as a map x -> y.

    y = cols(x) @ W^T, so gcols = gy @ W, and col2im (the adjoint of im2col) gives gx.
    """
    check_conv_args("conv2d_input_grad", x_shape, w.shape, (gy.dtype, w.dtype))
    O, (kh, kw) = w.shape[0], w.shape[2:]
    hw = conv_output_hw(
        "conv2d_input_grad", x_shape[2:], (kh, kw), pair(stride), pair(padding), pair(dilation)
    )
    gy = match_output(gy, hw)
    gy2 = gy.transpose(0, 2, 3, 1).reshape(-1, O)  # (N*Ho*Wo, O)
    gcols = gy2 @ w.reshape(O, -1)  # (N*Ho*Wo, C*kh*kw)
    return col2im(gcols, x_shape, kh, kw, stride, padding, dilation)  # (N, C, H, W)


def conv2d_weight_grad(gy, x, w_shape, stride=1, padding=0, dilation=1):
    """gw = dL/dw given gy = dL/dy: y = cols(x) @ W^T, so gW = gy^T @ cols(x)."""
    check_conv_args("conv2d_weight_grad", x.shape, w_shape, (gy.dtype, x.dtype))
    kh, kw = w_shape[2:]
    hw = conv_output_hw(
        "conv2d_weight_grad", x.shape[2:], (kh, kw), pair(stride), pair(padding), pair(dilation)
    )
    gy = match_output(gy, hw)
    cols = im2col(x, kh, kw, stride, padding, dilation)  # (N*Ho*Wo, C*kh*kw)
    return _weight_grad_from_cols(gy, cols, w_shape)


def _weight_grad_from_cols(gy, cols, w_shape):
    """gW = gy^T @ cols, with gy (N, O, Ho, Wo) and cols = im2col(x)."""
    gy2 = gy.transpose(0, 2, 3, 1).reshape(-1, w_shape[0])  # (N*Ho*Wo, O)
    # The sum over N*Ho*Wo inside this GEMM is the sum over the batch and over positions.
    return (gy2.T @ cols).reshape(w_shape)  # (O, C, kh, kw)


def conv2d_backward(gy, x, w, stride=1, padding=0, dilation=1, needs=(True, True, True),
                    saved=None):
    """(gx, gw, gb) of ``conv2d_forward`` given gy, each None where ``needs`` says it is not wanted.

    The three gradients all read gy, so a fast backend computes them in one pass over it; here
    they are simply the two functions above and the bias gradient, the sum of gy over every
    position of each output channel. ``saved`` is what ``conv2d_forward(save=True)`` returned.
    """
    need_x, need_w, need_b = needs
    gx = conv2d_input_grad(gy, w, x.shape, stride, padding, dilation) if need_x else None
    gw = None
    if need_w and saved is not None and saved[0] == SAVED_COLS:
        hw = conv_output_hw("conv2d_backward", x.shape[2:], w.shape[2:], pair(stride),
                            pair(padding), pair(dilation))
        gw = _weight_grad_from_cols(match_output(gy, hw), saved[1], w.shape)
    elif need_w:
        gw = conv2d_weight_grad(gy, x, w.shape, stride, padding, dilation)
    gb = gy.sum(axis=(0, 2, 3)) if need_b else None
    return gx, gw, gb


# ---------------------------------------------------------------------------------------------
# ConvTranspose2d: no new kernels, just the three above with roles exchanged.
# The weight is PyTorch's ConvTranspose2d layout (C_in, C_out, kh, kw). Read as a *conv* weight
# (O=C_in, C=C_out, kh, kw) it describes the conv that maps the transposed conv's OUTPUT back to
# its input; the transposed conv is the adjoint (transpose) of that conv.
# ---------------------------------------------------------------------------------------------


def conv_transpose2d_forward(x, w, stride=1, padding=0, output_padding=0, dilation=1):
    """y = conv_transpose2d(x, w): x (N, C_in, H, W), w (C_in, C_out, kh, kw).

    Built on ``conv2d_input_grad``: a transposed conv IS the input gradient of the conv that
    has the same weight. Output size per axis: (H-1)*s - 2p + d*(k-1) + output_padding + 1.
    """
    k, s, p, d = w.shape[2:], pair(stride), pair(padding), pair(dilation)
    if x.ndim != 4 or w.ndim != 4 or x.shape[1] != w.shape[0]:
        raise ValueError(
            f"conv_transpose2d: input {x.shape} does not match weight {w.shape} "
            f"(expected input channels == weight.shape[0])"
        )
    hw = conv_transpose_output_hw(x.shape[2:], k, s, p, pair(output_padding), d)
    y_shape = (x.shape[0], w.shape[1], *hw)  # (N, C_out, Hout, Wout)
    return conv2d_input_grad(x, w, y_shape, s, p, d)


def conv_transpose2d_input_grad(gy, w, stride=1, padding=0, dilation=1, output_padding=0):
    """gx for conv_transpose2d: built on ``conv2d_forward`` (the adjoint of the adjoint).

    ``output_padding`` is only needed when it is >= stride (PyTorch allows that if it is below
    the dilation): the conv then yields one extra row/column, which is cropped off.
    """
    gx = conv2d_forward(gy, w, stride, padding, dilation)  # (N, C_in, >=H, >=W)
    hw = conv_transpose_input_hw(
        gy.shape[2:], w.shape[2:], stride, padding, output_padding, dilation
    )
    return gx if gx.shape[2:] == hw else np.ascontiguousarray(gx[:, :, : hw[0], : hw[1]])


def conv_transpose2d_weight_grad(x, gy, w_shape, stride=1, padding=0, dilation=1):
    """gw for conv_transpose2d: ``conv2d_weight_grad`` with the activations' roles swapped.

    The transposed conv's output gradient ``gy`` plays the conv's input and its input ``x``
    plays the conv's output gradient; ``w_shape`` is (C_in, C_out, kh, kw).
    """
    return conv2d_weight_grad(x, gy, w_shape, stride, padding, dilation)


def conv_transpose2d_backward(gy, x, w, stride=1, padding=0, dilation=1, output_padding=0,
                              needs=(True, True)):
    """(gx, gw) of ``conv_transpose2d_forward``, each None where ``needs`` says it is not wanted.

    Both read gy, so a fast backend computes them in one pass; here they are the two above.
    """
    need_x, need_w = needs
    gx = gw = None
    if need_x:
        gx = conv_transpose2d_input_grad(gy, w, stride, padding, dilation, output_padding)
    if need_w:
        gw = conv_transpose2d_weight_grad(x, gy, w.shape, stride, padding, dilation)
    return gx, gw


# ---------------------------------------------------------------------------------------------
# Activation gradients and batch norm: not convolutions, but the other hot loops of a conv net.
# Each is a few whole-array NumPy passes; ``numba_pointwise.py`` does the same in one or two.
# ---------------------------------------------------------------------------------------------


def leaky_relu_forward(x, negative_slope):
    """y = x where x > 0, else slope * x.

    For a slope below 1 this is max(x, slope x) exactly (above 1, the min): one vectorised
    pass, where ``np.where``'s branchy select is about 6x slower on mixed signs.
    """
    pick = np.maximum if negative_slope <= 1 else np.minimum
    return pick(x, x * negative_slope)


def leaky_relu_backward(g, x, negative_slope):
    """dL/dx = g where x > 0, else slope * g; selected with exact arithmetic (no np.where)."""
    positive = x > 0
    return g * positive + (g * negative_slope) * ~positive


def relu_backward(g, x):
    """dL/dx = g where x > 0, else 0."""
    return g * (x > 0)


def _per_channel(x):
    """x (N, C, *spatial) seen as (N, C, S): batch norm's statistics are per C."""
    return x.reshape(x.shape[0], x.shape[1], -1)


def batch_norm_stats(x):
    """(mean, var) per channel of x (N, C, *spatial), each (C,) in x's dtype.

    The variance is the biased one (divided by the count), as the batch-norm paper normalises.
    """
    x3 = _per_channel(x)
    mean = x3.mean(axis=(0, 2))
    var = np.square(x3 - mean[:, None]).mean(axis=(0, 2))
    return mean, var


def batch_norm_forward(x, scale, shift):
    """y = x * scale + shift, with scale and shift (C,) broadcast along channel axis 1.

    Training-mode batch norm, (x - mean) / sqrt(var + eps) * w + b, folds into this one scale
    (w / sqrt(var + eps)) and one shift (b - mean * scale) per channel, so the big array is read
    once and written once.
    """
    x3 = _per_channel(x)
    return (x3 * scale[:, None] + shift[:, None]).reshape(x.shape)


def batch_norm_backward(g, x, mean, inv, w, need_x=True):
    """(gx, gw, gb) of training-mode batch norm; gx is None unless ``need_x``.

    With xhat = (x - mean) inv, inv = 1/sqrt(var + eps), and M values per channel:

        dL/db = sum g,   dL/dw = sum g xhat,
        dL/dx = w inv (g - (dL/db)/M - xhat (dL/dw)/M)

    The mean and the variance both depend on x; the last two terms are their corrections,
    each a sum over the channel. mean, inv and w are (C,).
    """
    g3, x3 = _per_channel(g), _per_channel(x)
    m = x3.shape[0] * x3.shape[2]
    xc = x3 - mean[:, None]
    gb = g3.sum(axis=(0, 2))
    gw = (g3 * xc).sum(axis=(0, 2)) * inv
    gx = None
    if need_x:
        xc *= (inv * gw / m)[:, None]          # xhat (dL/dw) / M, in place
        gx = g3 - xc
        gx -= (gb / m)[:, None]
        gx *= (w * inv)[:, None]
        gx = gx.reshape(x.shape)
    return gx, gw, gb


# ---------------------------------------------------------------------------------------------
# Minibatch discrimination's closeness (Salimans et al. 2016, section 3.2). Composed from engine
# ops it is six passes over an (N, N, B, C) array forward and more backward; here it is one
# primitive with a closed-form VJP, and ``numba_minibatch.py`` never builds the big array.
# ---------------------------------------------------------------------------------------------


def minibatch_closeness_forward(M):
    """o[i, b] = sum_j exp(-||M[i, b] - M[j, b]||_1), for M (N, B, C): (N, B).

    How close example i sits to the rest of its batch, seen through kernel b. The sum runs
    over every j, i itself included (exp 0 = 1), so a batch of N copies of one example gives N.
    """
    l1 = np.abs(M[:, None] - M[None]).sum(axis=3)           # (N, N, B), symmetric in i, j
    return np.exp(-l1).sum(axis=1)


def minibatch_closeness_backward(g, M):
    """dL/dM (N, B, C) from g = dL/do (N, B).

    With c[i, j, b] = exp(-l1[i, j, b]), M[k, b] appears in o[k, b] through every c[k, j, b]
    and in each o[j, b] through c[j, k, b] = c[k, j, b], and dl1/dM[k, b, c] = sign(M[k] - M[j]):

        dL/dM[k, b, c] = -sum_j (g[k, b] + g[j, b]) c[k, j, b] sign(M[k, b, c] - M[j, b, c])

    The j = k term is 0 (sign 0), as the composed ops' |x|' = sign x gives at 0.
    """
    diff = M[:, None] - M[None]                              # (N, N, B, C)
    c = np.exp(-np.abs(diff).sum(axis=3))
    w = (g[:, None] + g[None]) * c                           # (N, N, B)
    return -(w[..., None] * np.sign(diff)).sum(axis=1)


# ---------------------------------------------------------------------------------------------
# Adam's update (the NumPy twin of numba_optim.py). In place on the parameter and its moments;
# `optim/adam.py` explains the formulas and computes the scalars.
# ---------------------------------------------------------------------------------------------


def adam_update(p, g, m, v, vmax, beta1, beta2, step_size, bias2_sqrt, eps):
    """m, v <- the moving averages of g and g^2; p -= step_size * m / (sqrt(v) / bias2_sqrt + eps).

    step_size = lr / (1 - beta1^t) and bias2_sqrt = sqrt(1 - beta2^t) are the bias corrections.
    With amsgrad, vmax (the running maximum of v) replaces v in the denominator."""
    m *= beta1
    m += (1 - beta1) * g
    v *= beta2
    v += (1 - beta2) * g * g
    if vmax is not None:
        v = np.maximum(vmax, v, out=vmax)
    p -= step_size * (m / (np.sqrt(v) / bias2_sqrt + eps))
