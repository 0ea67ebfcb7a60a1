"""Hostile and damaged input (issue #19): manifest fields checked by type and range, a NIfTI whose header
claims more voxels than memory holds (a "gzip bomb") refused before decompressing, files written with the
user's umask, a mask passed as the image noticed."""

from __future__ import annotations

import gzip
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from napari_weakseg import atomic
from napari_weakseg.errors import InputError, SchemaVersionError
from napari_weakseg.io.case import Volume
from napari_weakseg.io.modality import looks_like_mask
from napari_weakseg.io.nifti import read_nifti
from napari_weakseg.study import Study, load_study, save_study

BIN = Path(sys.executable).parent


def _study(tmp_path) -> Path:
    st = Study()
    im = st.add_image(Volume(np.random.default_rng(0).random((1, 4, 8, 8)).astype(np.float32)), name="img")
    st.set_tags(im, [0, 1], "absence")
    return save_study(st, tmp_path / "s")


def _edit(folder: Path, **fields) -> None:
    path = folder / "study.json"
    m = json.loads(path.read_text())
    for k, v in fields.items():
        if k == "schema_version":
            m[k] = v
        else:
            m["images"][0][k] = v
    path.write_text(json.dumps(m))


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("confirmed_empty", [-1], "confirmed_empty must list slice indices 0..3"),
        ("confirmed_empty", [999], "confirmed_empty must list slice indices 0..3"),
        ("confirmed_empty", [True], "confirmed_empty must list slice indices"),
        ("confirmed_empty", "0", "confirmed_empty must list slice indices"),
        ("mask_revision", "1", "mask_revision must be a whole number"),
        ("mask_revision", 1.5, "mask_revision must be a whole number"),
        ("slice_axis", True, "slice_axis must be a whole number"),
        ("tags", ["a", "a", "u", "u"], "tags must be a string"),
    ],
)
def test_manifest_fields_are_checked_by_type_and_range(tmp_path, field, value, message):
    folder = _study(tmp_path)
    _edit(folder, **{field: value})
    with pytest.raises(InputError, match=message):
        load_study(folder)


def test_schema_version_true_is_not_schema_1(tmp_path):
    folder = _study(tmp_path)
    _edit(folder, schema_version=True)
    with pytest.raises(SchemaVersionError, match="study schema True is not supported"):
        load_study(folder)


def test_a_header_claiming_gigabytes_is_refused_before_decompressing(tmp_path):
    """A small .nii.gz whose header declares 30000 x 30000 x 2000 voxels (6.5 TiB): refused from the header alone."""
    img = nib.Nifti1Image(np.zeros((2, 2, 2), np.float32), np.eye(4))
    raw = img.header.copy()
    raw.set_data_shape((30000, 30000, 2000))
    path = tmp_path / "bomb.nii.gz"
    with gzip.open(path, "wb") as fh:  # the header, then far fewer bytes than it declares
        fh.write(raw.binaryblock + b"\0" * (352 - len(raw.binaryblock)) + b"\0" * 4096)
    assert path.stat().st_size < 10_000
    with pytest.raises(InputError, match=r"bomb.nii.gz: its header declares \(30000, 30000, 2000\) voxels .* refused before decompressing"):
        read_nifti(path)


def test_atomic_writes_respect_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        p = atomic.write_bytes_atomic(tmp_path / "a.bin", b"x")
        assert stat.S_IMODE(p.stat().st_mode) == 0o644  # readable by colleagues, as open() would make it
        os.umask(0o077)
        q = atomic.write_bytes_atomic(tmp_path / "b.bin", b"x")
        assert stat.S_IMODE(q.stat().st_mode) == 0o600
    finally:
        os.umask(old)


def test_a_mask_given_as_the_image_is_noticed(tmp_path):
    rng = np.random.default_rng(0)
    assert looks_like_mask(rng.integers(0, 5, (1, 4, 8, 8)).astype(np.float32))
    assert not looks_like_mask(rng.random((1, 4, 8, 8)).astype(np.float32))
    assert not looks_like_mask(rng.integers(0, 1000, (2, 4, 16, 16)).astype(np.float32))  # many values: an image
    from napari_weakseg.data import make_phantom
    from napari_weakseg.study.build import tags_from_masks

    case = make_phantom(shape=(8, 32, 32), channels=1, seed=1)
    st = Study()
    tags_from_masks(st.add_image(case.volume, name="p", mask=case.mask))
    save_study(st, tmp_path / "study")
    (tmp_path / "tiny.json").write_text(
        json.dumps(
            {"net": {"base": 4, "depth": 2, "max_channels": 8, "code_channels": 4, "unique_channels": 2}, "input_size": 16, "batch_size": 2}
        )
    )
    run = subprocess.run(
        [
            str(BIN / "weakseg"),
            "train",
            str(tmp_path / "study"),
            "--method",
            "seg-only",
            "--out",
            str(tmp_path / "run"),
            "--steps",
            "1",
            "--config",
            str(tmp_path / "tiny.json"),
        ],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    nib.save(nib.Nifti1Image(case.mask.transpose(2, 1, 0).astype(np.float32), np.eye(4)), str(tmp_path / "mask.nii.gz"))
    res = subprocess.run(
        [str(BIN / "weakseg"), "predict", str(tmp_path / "run"), str(tmp_path / "mask.nii.gz"), "--out", str(tmp_path / "pred")],
        capture_output=True,
        text=True,
    )
    assert "holds only a few whole-number values, like a label mask: is it the image?" in res.stderr


def test_a_run_json_with_absurd_sizes_is_refused_on_load(tmp_path):
    """A crafted run.json (depth 100000 would hang building the network; a width of 10^6 would exhaust memory)."""
    from napari_weakseg.data import make_phantom
    from napari_weakseg.inference import TrainedModel
    from napari_weakseg.study.build import tags_from_masks
    from napari_weakseg.training.trainer import TrainConfig, Trainer

    case = make_phantom(shape=(8, 32, 32), channels=1, seed=1)
    st = Study()
    tags_from_masks(st.add_image(case.volume, name="p", mask=case.mask))
    tiny = {"net": {"base": 4, "depth": 2, "max_channels": 8, "code_channels": 4, "unique_channels": 2}, "input_size": 16, "batch_size": 2}
    Trainer(st, tmp_path / "run", TrainConfig(method="seg-only", steps=1, device="cpu", overrides=tiny, val_fraction=0.0)).run()
    path = tmp_path / "run" / "run.json"
    good = json.loads(path.read_text())
    for key, value in (("depth", 100000), ("max_channels", 10**6)):
        info = json.loads(json.dumps(good))
        info["method_config"]["net"][key] = value
        path.write_text(json.dumps(info))
        with pytest.raises(InputError, match=f"option net.{key}"):
            TrainedModel.load(tmp_path / "run")
