"""Layers and models: `tinygen.nn.functional` (functions of tensors), `Module` and the layer
classes built on it, the loss modules, `tinygen.nn.init` for weight initialisation and
`tinygen.nn.utils` for gradient clipping, each where PyTorch keeps it."""

from tinygen.nn import functional, init, utils
from tinygen.nn.gan_layers import (
    GaussianNoise,
    VirtualBatchNorm1d,
    VirtualBatchNorm2d,
    init_weight_norm_,
    weight_norm,
)
from tinygen.nn.layers import (
    ELU,
    AvgPool2d,
    BatchNorm1d,
    BatchNorm2d,
    Conv2d,
    ConvTranspose2d,
    Dropout,
    Embedding,
    Flatten,
    Identity,
    InstanceNorm2d,
    LayerNorm,
    LeakyReLU,
    Linear,
    LogSigmoid,
    LogSoftmax,
    MaxPool2d,
    ReLU,
    Sigmoid,
    Softmax,
    Softplus,
    Tanh,
    Unflatten,
    Upsample,
)
from tinygen.nn.losses import (
    BCELoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    L1Loss,
    MSELoss,
    NLLLoss,
)
from tinygen.nn.module import Module, ModuleList, Parameter, Sequential
