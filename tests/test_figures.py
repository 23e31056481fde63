"""Every image grid a learner looks at has a title and labelled rows or columns (issue 15)."""

import numpy as np
import pytest

import tinygen as tg
from tinygen import latent, plotting
from tinygen.models.vae import VAE, Config


@pytest.fixture
def grids(monkeypatch):
    """Record the labels of every grid written, and still write it."""
    calls = []
    real = plotting.save_labelled_grid

    def record(images, path, nrow, row_labels=None, col_labels=None, title=None, scale=None):
        calls.append({"rows": row_labels, "cols": col_labels, "title": title,
                      "n": len(images), "nrow": nrow})
        return real(images, path, nrow, row_labels, col_labels, title, scale)

    monkeypatch.setattr(plotting, "save_labelled_grid", record)
    monkeypatch.setattr(plotting, "save_image_grid", None)     # an unlabelled grid would fail
    return calls


@pytest.fixture
def vae():
    tg.manual_seed(0)
    return VAE(Config(dataset="digits", image_size=8, hidden=16, latent=2))


def digits(n=40):
    rng = np.random.default_rng(0)
    return rng.random((n, 1, 8, 8), dtype=np.float32), np.arange(n) % 10


def test_reconstructions_label_original_and_reconstruction_and_classes(tmp_path, grids, vae):
    x, y = digits()
    latent.save_reconstructions(vae, x, tmp_path / "r.png", y, n=6)
    (g,) = grids
    assert g["rows"] == ["original", "reconstruction"] and g["cols"] == list("012345")
    assert g["title"] and (tmp_path / "r.png").stat().st_size > 0


def test_interpolations_label_lerp_and_slerp_rows_and_t(tmp_path, grids, vae):
    x, y = digits()
    latent.save_interpolations(vae, x, tmp_path / "i.png", y, steps=5, pairs=2)
    (g,) = grids
    assert g["rows"] == ["0->1: lerp", "0->1: slerp", "2->3: lerp", "2->3: slerp"]
    assert g["cols"][0] == "t=0.00" and g["cols"][-1] == "t=1.00" and g["title"]


def test_arithmetic_labels_source_class_and_target_classes(tmp_path, grids, vae):
    x, y = digits()
    latent.save_arithmetic(vae, x, y, tmp_path / "a.png")
    (g,) = grids
    assert g["rows"] == [f"a test {c}" for c in range(4)]
    assert g["cols"] == ["original"] + [f"to {c}" for c in range(10)]


def test_latent_map_labels_its_axes_with_coordinates(tmp_path, grids, vae):
    latent.save_manifold(vae, tmp_path / "m.png", n=5)
    (g,) = grids
    assert "z1" in g["title"] and "z2" in g["title"]
    assert g["rows"][0] == "z2=1.6" and g["rows"][-1] == "z2=-1.6"      # top row: high z2
    cols = [float(c) for c in g["cols"]]                                 # N(0, 1) quantiles
    assert len(cols) == 5 and cols == sorted(cols) and cols[0] == -1.6 and cols[-1] == 1.6
