"""The two image-to-image tasks' data: two digit domains, and a degraded/clean pair.

This file teaches two things.

1. **A linear resize is a matrix on each side.** Nearest, bilinear and bicubic resizing all
   compute each output row as a weighted sum of input rows, and then each output column from
   input columns, with the same weights for every image. So a resize of (H, W) images to
   (H', W') is `M_h @ x @ M_w.T`, where M_h (H' x H) holds, in row i, the kernel's weights
   of the input rows around output row i's centre. The centres follow the half-pixel rule
   (PyTorch's align_corners=False, PIL's and OpenCV's default): output pixel i sits at input
   coordinate (i + 0.5) H / H' - 0.5. Borders repeat the edge pixel. The kernels:

       nearest    the one input pixel whose cell holds the centre
       bilinear   k(t) = 1 - |t|                 for |t| < 1
       bicubic    Keys' cubic convolution with a = -0.5 (the "bicubic" of most image tools),
                  k(t) = (a+2)|t|^3 - (a+3)|t|^2 + 1        for |t| <= 1
                       = a|t|^3 - 5a|t|^2 + 8a|t| - 4a     for 1 < |t| < 2

   `area_downsample` is the other direction: the mean of each f x f block, which is what a
   sensor with f x f times larger pixels would record (the issue's "4x area-average").

2. **Two real domains, no download.** Domain A is MNIST (28x28, 250 writers, 1990s US census
   staff and students); domain B is scikit-learn's bundled 8x8 digits (43 other writers, each
   pixel a count of ink in a 4x4 block), upsampled bilinearly to 20x20 and framed in 28x28 as
   MNIST's digits are (`frame_like_mnist` says why). Their strokes are thick, blocky and
   blurred by the 4x upsampling: a real shift of writer, resolution and stroke, like MNIST <->
   USPS in the domain-adaptation papers. Both keep their own held-out test split.

Read next: `tinygen/models/cyclegan.py` (which translates between the domains) and
`tinygen/models/pix2pix.py` (which learns to undo `area_downsample`).
"""

from __future__ import annotations

import numpy as np

from tinygen.data.datasets import load_dataset
from tinygen.data.digits import load_digits

DOMAINS = ("mnist", "digits")
RESIZES = ("nearest", "bilinear", "bicubic")


# ----------------------------------------------------------------------------------------------
# Resizing (N, C, H, W) float images.


def _bilinear(t):
    return np.clip(1 - np.abs(t), 0, None)


def _bicubic(t, a=-0.5):
    t = np.abs(t)
    near = ((a + 2) * t - (a + 3)) * t * t + 1                  # |t| <= 1
    far = ((a * t - 5 * a) * t + 8 * a) * t - 4 * a             # 1 < |t| < 2
    return np.where(t <= 1, near, np.where(t < 2, far, 0.0))


KERNELS = {"bilinear": (_bilinear, 1), "bicubic": (_bicubic, 2)}   # kernel, support radius


def resize_matrix(n_in: int, n_out: int, mode: str) -> np.ndarray:
    """(n_out, n_in) weights of the input pixels that make each output pixel, in one dim."""
    centres = (np.arange(n_out) + 0.5) * n_in / n_out - 0.5        # half-pixel rule
    m = np.zeros((n_out, n_in))
    if mode == "nearest":
        m[np.arange(n_out), np.minimum(np.floor(np.arange(n_out) * n_in / n_out),
                                       n_in - 1).astype(int)] = 1
        return m
    kernel, radius = KERNELS[mode]
    for i, c in enumerate(centres):
        taps = np.arange(np.floor(c) - radius + 1, np.floor(c) + radius + 1).astype(int)
        np.add.at(m[i], np.clip(taps, 0, n_in - 1), kernel(taps - c))   # edges repeat
    return m / m.sum(axis=1, keepdims=True)


def _floats(x) -> np.ndarray:
    """x as a float array: float32 unless it already is floating (float64 for gradchecks)."""
    x = np.asarray(x)
    return x if x.dtype.kind == "f" else x.astype(np.float32)


def resize(x, size: int, mode: str = "bilinear") -> np.ndarray:
    """Images (N, C, H, W) resized to (N, C, size, size) with `mode` from RESIZES."""
    if mode not in RESIZES:
        raise ValueError(f"resize: mode must be one of {', '.join(RESIZES)}, got {mode!r}")
    x = _floats(x)
    if x.ndim != 4:
        raise ValueError(f"resize: expected images (N, C, H, W), got shape {x.shape}")
    mh = resize_matrix(x.shape[2], size, mode).astype(x.dtype)
    mw = resize_matrix(x.shape[3], size, mode).astype(x.dtype)
    return np.ascontiguousarray(mh @ x @ mw.T)                     # (N, C, size, size)


def area_downsample(x, factor: int) -> np.ndarray:
    """The mean of each factor x factor block: (N, C, H, W) -> (N, C, H/f, W/f)."""
    x = _floats(x)
    n, c, h, w = x.shape
    if h % factor or w % factor:
        raise ValueError(f"area_downsample: image side {h}x{w} is not a multiple of the "
                         f"factor {factor}")
    return x.reshape(n, c, h // factor, factor, w // factor, factor).mean(axis=(3, 5))


# ----------------------------------------------------------------------------------------------
# The domains.


def frame_like_mnist(x, size: int) -> np.ndarray:
    """8x8 digits (N, 1, 8, 8) at `size`, framed as MNIST frames its digits.

    MNIST's digits were scaled into a 20x20 box and centred in 28x28 (LeCun et al.); the 8x8
    digits fill their frame. Upsampled straight to 28x28 they would be 40% larger than MNIST's,
    and translating between the domains would then mean rescaling every digit: a geometric
    change, which CycleGAN's paper lists among its failures (Section 5.3), not the change of
    writer, resolution and stroke the task is about. So the digits are resized bilinearly to
    the box (size * 20/28, rounded: 20 at 28) and padded with background to `size`.
    """
    if size == x.shape[-1]:
        return x
    box = round(size * 20 / 28)
    lo = (size - box) // 2
    out = np.zeros((len(x), x.shape[1], size, size), np.float32)
    out[:, :, lo:lo + box, lo:lo + box] = np.clip(resize(x, box), 0, 1)
    return out


def made_like_digits(x, size: int = 28, threshold: float = 0.5) -> np.ndarray:
    """MNIST images (N, 1, 28, 28) put through the 8x8 digits' own acquisition, framed at `size`.

    The 8x8 digits (UCI optdigits) were made from 32x32 black-and-white bitmaps by counting
    the ink pixels in each 4x4 block. The same here: MNIST's 20x20 digit box (rows and columns
    4..23) resized to 32x32, thresholded, counted in 4x4 blocks (0..16, divided by 16 as
    `load_digits(normalize=True)` does) and framed like the real 8x8 digits
    (`frame_like_mnist`). A translation A->B that knows how B was made and keeps the MNIST
    writer's strokes: the CycleGAN agreement's hand-made baseline.
    """
    x = _floats(x)
    if x.shape[1:] != (1, 28, 28):
        raise ValueError(f"made_like_digits: expected MNIST images (N, 1, 28, 28), got "
                         f"{x.shape}")
    bitmap = (resize(x[:, :, 4:24, 4:24], 32) > threshold).astype(np.float32)
    return frame_like_mnist(area_downsample(bitmap, 4), size)


def load_domain(name: str, split: str, size: int = 28, data_dir=None):
    """(images (N, 1, size, size) float32 in [0, 1], labels (N,)) of one domain's split.

    "mnist" is MNIST itself (size must be 28); "digits" is the 8x8 digits framed like MNIST
    at `size` (`frame_like_mnist`; 8 keeps them as they are: the offline smoke setting).
    """
    if name == "mnist":
        x, y = load_dataset("mnist", split, data_dir=data_dir)
        if size != x.shape[-1]:
            raise ValueError(f"mnist is 28x28; got image size {size}")
        return x, y
    if name == "digits":
        x, y = load_digits(split, normalize=True)
        return frame_like_mnist(x[:, None], size), y
    raise ValueError(f"unknown domain {name!r}; choose from {', '.join(DOMAINS)}")
