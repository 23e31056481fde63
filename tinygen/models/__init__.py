"""Every trainable model, registered by name for the `tinygen` command.

Each entry maps a name to (module, model class). The module's `Config` dataclass lists the
model's options with CPU-friendly defaults; `tinygen train NAME --help` shows them.
"""

from tinygen.models import (
    aae,
    aae_cluster,
    aae_semi,
    ae,
    cgan,
    classifier,
    cvae,
    cyclegan,
    dae,
    dcgan,
    gan,
    pix2pix,
    ssgan,
    vae,
)

REGISTRY = {
    "classifier": (classifier, classifier.Classifier),
    "vae": (vae, vae.VAE),
    "cvae": (cvae, cvae.CVAE),
    "ae": (ae, ae.AE),
    "dae": (dae, dae.DAE),
    "gan": (gan, gan.GAN),
    "dcgan": (dcgan, dcgan.DCGAN),
    "cgan": (cgan, cgan.CGAN),
    "ssgan": (ssgan, ssgan.SSGAN),
    "aae": (aae, aae.AAE),
    "aae_semi": (aae_semi, aae_semi.CategoricalAAE),
    "aae_cluster": (aae_cluster, aae_semi.CategoricalAAE),
    "cyclegan": (cyclegan, cyclegan.CycleGAN),
    "pix2pix": (pix2pix, pix2pix.Pix2Pix),
}


def build(name: str, config):
    """A fresh model of registered type `name` from its Config."""
    if name not in REGISTRY:
        raise KeyError(f"unknown model {name!r}; choose from {', '.join(REGISTRY)}")
    return REGISTRY[name][1](config)


def name_of(model) -> str | None:
    """The registered name of a model built from a registered Config, else None (so a run
    folder can record what to rebuild: `tinygen eval` and `sample` read it)."""
    for name, (module, cls) in REGISTRY.items():
        if type(model) is cls and type(model.cfg) is module.Config:
            return name
    return None
