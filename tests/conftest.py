"""Shared fixtures. torch is imported before Qt (see docs/architecture.md)."""

import os
import tempfile

import numpy as np
import pytest
import torch  # noqa: F401  (import order: torch before Qt avoids OpenMP/Qt clashes)

# napari's settings (e.g. the reader chosen per file extension, which the tagging dock sets) go to a file of
# this test session, never the user's: read by napari when it is first imported, after this line
os.environ["NAPARI_CONFIG"] = os.path.join(tempfile.mkdtemp(prefix="weakseg-tests-napari-"), "settings.yaml")


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    """Tiny networks run fastest on one thread, and do not fight other jobs (or Qt) for the two cores."""
    threads, omp = torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS")
    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"  # what the Trainer (and its training processes) then choose
    yield
    torch.set_num_threads(threads)
    if omp is None:
        os.environ.pop("OMP_NUM_THREADS", None)
    else:
        os.environ["OMP_NUM_THREADS"] = omp


@pytest.fixture(autouse=True)
def _weakseg_home(tmp_path, monkeypatch):
    """Autosaves of never-saved studies go to a per-test folder, not the user's home."""
    monkeypatch.setenv("WEAKSEG_HOME", str(tmp_path / "weakseg-home"))


@pytest.fixture
def phantom():
    from napari_weakseg.data import make_phantom

    return make_phantom(shape=(16, 48, 48), channels=2, seed=1)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def brats(tmp_path):
    """A tiny synthetic data folder in the BraTS layout (``tiny_brats.py``); returns the DATA folder."""
    from tiny_brats import write_brats_folder

    return write_brats_folder(tmp_path / "data")
