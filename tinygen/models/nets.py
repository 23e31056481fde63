"""Network bodies shared by the model files: an MLP, a pair of conv encoder/decoder stacks,
and the PatchGAN discriminator of the image-to-image models.

The conv pair is the DCGAN-style design used by most small generative models on MNIST: each
stride-2, kernel-4, padding-1 convolution halves the image side (28 -> 14 -> 7), and each
transposed convolution with the same settings doubles it back (7 -> 14 -> 28). With kernel 4
and stride 2 every output pixel of the transposed conv receives the same number of taps, which
avoids the checkerboard artefacts of kernel 3.
"""

from __future__ import annotations

from tinygen import nn


def mlp(sizes, act=nn.ReLU, final=None) -> nn.Sequential:
    """Linear layers of the given sizes with `act` between them (and `final` at the end)."""
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(act())
    if final is not None:
        layers.append(final())
    return nn.Sequential(*layers)


class ConvEncoder(nn.Module):
    """(N, C, S, S) -> (N, out_features) through two stride-2 convs and a linear layer."""

    def __init__(self, channels: int, image_size: int, out_features: int, width: int = 32):
        super().__init__()
        if image_size % 4:
            raise ValueError(f"ConvEncoder: image_size must be a multiple of 4, got {image_size}")
        side = image_size // 4
        self.convs = nn.Sequential(
            nn.Conv2d(channels, width, 4, 2, 1), nn.ReLU(),            # S -> S/2
            nn.Conv2d(width, 2 * width, 4, 2, 1), nn.ReLU(),           # S/2 -> S/4
            nn.Flatten())
        self.fc = nn.Linear(2 * width * side * side, out_features)

    def forward(self, x):
        return self.fc(self.convs(x))


class ConvDecoder(nn.Module):
    """(N, in_features) -> (N, C, S, S) logits: a linear layer, then two stride-2 transposed
    convs that double the side twice."""

    def __init__(self, in_features: int, channels: int, image_size: int, width: int = 32):
        super().__init__()
        side = image_size // 4
        self.fc = nn.Sequential(nn.Linear(in_features, 2 * width * side * side), nn.ReLU(),
                                nn.Unflatten(1, (2 * width, side, side)))
        self.deconvs = nn.Sequential(
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1), nn.ReLU(),  # S/4 -> S/2
            nn.ConvTranspose2d(width, channels, 4, 2, 1))              # S/2 -> S

    def forward(self, z):
        return self.deconvs(self.fc(z))


def patch_discriminator(in_channels: int, width: int) -> nn.Sequential:
    """PatchGAN (Isola et al. 2017, Section 3.2.2), sized for 28x28: a score per patch.

    Instead of one verdict per image, D is fully convolutional and outputs a grid of scores,
    each judging only the patch it can see, so D models local texture and sharpness, while
    the L1 or cycle loss takes care of the image as a whole. Three convs: kernel 4 stride 2
    twice, then kernel 3 stride 1, so each score sees an 18x18 input patch (receptive field
    4, then 4 + 3*2 = 10, then 10 + 2*4 = 18) of the 28x28 image, and the grid is 7x7.
    (The paper's 70x70 PatchGAN on 256x256 images has five convs.) Instance norm on the
    middle layer, none on the first (as in the paper); LeakyReLU(0.2).

        (N, C, S, S) -> Conv(C, w, 4, 2, 1) -> LeakyReLU                   # S/2
                     -> Conv(w, 2w, 4, 2, 1) -> InstanceNorm -> LeakyReLU  # S/4
                     -> Conv(2w, 1, 3, 1, 1)                              # (N, 1, S/4, S/4)
    """
    w = width
    return nn.Sequential(
        nn.Conv2d(in_channels, w, 4, 2, 1), nn.LeakyReLU(0.2),
        nn.Conv2d(w, 2 * w, 4, 2, 1), nn.InstanceNorm2d(2 * w, affine=True), nn.LeakyReLU(0.2),
        nn.Conv2d(2 * w, 1, 3, 1, 1))
