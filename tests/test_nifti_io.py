"""NIfTI reading/writing: napari axis order, exact header round trips, napari reader/writer, bad input."""

from __future__ import annotations

import gzip
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from napari_weakseg.errors import InputError
from napari_weakseg.io import load_case, load_mask, napari_io, read_nifti, write_nifti
from napari_weakseg.io.case import read_volume
from napari_weakseg.io.nifti import InputWarning, spacing_from_header, to_napari_order, to_nifti_order

SUFFIXES = [".nii", ".nii.gz"]


# --- helpers -----------------------------------------------------------------------------


def rotation(ax: float, ay: float, az: float) -> np.ndarray:
    """A proper rotation from three angles in degrees."""
    a, b, c = np.deg2rad([ax, ay, az])
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    return rz @ ry @ rx


def oblique_affine(zooms=(0.8, 1.1, 2.5), angles=(12.0, -20.0, 33.0), offset=(-90.5, 12.25, 30.75)) -> np.ndarray:
    aff = np.eye(4)
    aff[:3, :3] = rotation(*angles) @ np.diag(zooms)
    aff[:3, 3] = offset
    return aff


def make_nifti(
    path: Path,
    data: np.ndarray,
    affine=None,
    *,
    qcode=1,
    scode=4,
    qform=None,
    descrip=b"weakseg test source",
    cls=nib.Nifti1Image,
    units=("mm", "sec"),
) -> Path:
    """Write ``data`` (NIfTI (i, j, k) order) with a non-trivial header; returns the path."""
    affine = oblique_affine() if affine is None else affine
    img = cls(data, affine)
    img.header.set_xyzt_units(*units)
    img.header["descrip"] = descrip
    img.set_qform(affine if qform is None else qform, qcode)
    img.set_sform(affine, scode)
    nib.save(img, str(path))
    return path


def raw_header(path: Path) -> bytes:
    """The header bytes as stored in the file (348 for NIfTI-1, 540 for NIfTI-2)."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as fh:
        head = fh.read(540)
    return head[:348] if int.from_bytes(head[:4], "little") == 348 else head[:540]


def assert_geometry_equal(src: Path, out: Path, allow_dtype_change: bool) -> None:
    """The written file's header fields equal the source's (datatype/bitpix may differ)."""
    h_src, h_out = nib.load(str(src)).header, nib.load(str(out)).header
    assert type(h_src) is type(h_out)
    np.testing.assert_array_equal(nib.load(str(out)).affine, nib.load(str(src)).affine)
    np.testing.assert_array_equal(h_out.get_qform(), h_src.get_qform())
    np.testing.assert_array_equal(h_out.get_sform(), h_src.get_sform())
    for key in (
        "qform_code",
        "sform_code",
        "quatern_b",
        "quatern_c",
        "quatern_d",
        "qoffset_x",
        "qoffset_y",
        "qoffset_z",
        "srow_x",
        "srow_y",
        "srow_z",
        "pixdim",
        "dim",
        "xyzt_units",
        "descrip",
        "intent_code",
        "slice_code",
        "cal_min",
        "cal_max",
    ):
        np.testing.assert_array_equal(h_out[key], h_src[key], err_msg=key)
    assert h_out.get_xyzt_units() == h_src.get_xyzt_units()
    assert h_out.get_zooms() == h_src.get_zooms()
    differing = {k for k in h_src if not np.array_equal(h_src[k], h_out[k], equal_nan=h_src[k].dtype.kind == "f")}
    if allow_dtype_change:
        assert differing <= {"datatype", "bitpix"}, differing
    else:
        assert differing == set(), differing
        assert h_out == h_src
        assert raw_header(out) == raw_header(src)


@pytest.fixture
def ijk_data():
    """A (7, 9, 5) float32 volume with distinct sizes so that transposes cannot hide."""
    return np.random.default_rng(3).normal(10, 3, size=(7, 9, 5)).astype(np.float32)


# --- axis order and geometry -----------------------------------------------------------------


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_read_3d_is_transpose_of_nibabel(tmp_path, ijk_data, suffix):
    aff = oblique_affine()
    path = make_nifti(tmp_path / f"vol{suffix}", ijk_data, aff)
    data, affine, header = read_nifti(path)
    assert data.shape == (5, 9, 7)  # (Z, Y, X) = (k, j, i)
    assert data.dtype == np.float32
    np.testing.assert_array_equal(data, np.transpose(nib.load(str(path)).get_fdata(dtype=np.float32), (2, 1, 0)))
    # a voxel check that does not rely on np.transpose semantics
    assert data[4, 8, 6] == ijk_data[6, 8, 4]
    assert data[1, 2, 3] == ijk_data[3, 2, 1]
    np.testing.assert_allclose(affine, aff, atol=1e-5)  # stored as float32 in the sform
    np.testing.assert_array_equal(affine, nib.load(str(path)).affine)
    assert header == nib.load(str(path)).header


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_read_4d_gives_channels_first(tmp_path, suffix):
    ijkc = np.random.default_rng(4).random((7, 9, 5, 3)).astype(np.float32)
    path = make_nifti(tmp_path / f"multi{suffix}", ijkc)
    data, _, _ = read_nifti(path)
    assert data.shape == (3, 5, 9, 7)  # (C, Z, Y, X)
    for c in range(3):
        np.testing.assert_array_equal(data[c], ijkc[..., c].T)
    assert data[2, 4, 1, 6] == ijkc[6, 1, 4, 2]


def test_5d_with_single_time_point_is_read_as_channels(tmp_path):
    ijktc = np.random.default_rng(5).random((4, 6, 5, 1, 2)).astype(np.float32)
    path = make_nifti(tmp_path / "vector.nii.gz", ijktc)
    data, _, _ = read_nifti(path)
    assert data.shape == (2, 5, 6, 4)
    np.testing.assert_array_equal(data[1], ijktc[:, :, :, 0, 1].T)


def test_4d_with_one_volume_is_3d(tmp_path):
    ijk1 = np.random.default_rng(6).random((4, 6, 5, 1)).astype(np.float32)
    data, _, _ = read_nifti(make_nifti(tmp_path / "one.nii.gz", ijk1))
    assert data.shape == (5, 6, 4)


def test_order_conversion_is_its_own_inverse():
    a3 = np.arange(2 * 3 * 4).reshape(2, 3, 4)
    a4 = np.arange(2 * 3 * 4 * 5).reshape(2, 3, 4, 5)
    assert to_napari_order(a3).shape == (4, 3, 2)
    assert to_napari_order(a4).shape == (5, 4, 3, 2)
    np.testing.assert_array_equal(to_nifti_order(to_napari_order(a3)), a3)
    np.testing.assert_array_equal(to_nifti_order(to_napari_order(a4)), a4)


def test_spacing_from_header_is_in_napari_order(tmp_path, ijk_data):
    path = make_nifti(tmp_path / "vol.nii.gz", ijk_data, oblique_affine(zooms=(0.8, 1.1, 2.5)))
    _, _, header = read_nifti(path)
    sz, sy, sx = spacing_from_header(header)
    assert (sz, sy, sx) == pytest.approx((2.5, 1.1, 0.8), abs=1e-6)
    vol = read_volume(path)
    assert vol.spacing == pytest.approx((2.5, 1.1, 0.8), abs=1e-6)
    assert vol.shape == (5, 9, 7)
    assert vol.data.shape == (1, 5, 9, 7)
    assert vol.channel_names == ["vol"]


def test_spacing_falls_back_to_one_for_zero_zooms(tmp_path, ijk_data):
    hdr = nib.Nifti1Header()
    hdr.set_data_shape(ijk_data.shape)
    hdr.set_zooms((0.0, 2.0, 3.0))
    assert spacing_from_header(hdr) == (3.0, 2.0, 1.0)


def test_4d_volume_channel_names(tmp_path):
    path = make_nifti(tmp_path / "t1t2.nii.gz", np.zeros((4, 5, 6, 2), np.float32))
    vol = read_volume(path)
    assert vol.data.shape == (2, 6, 5, 4)
    assert vol.channel_names == ["t1t2[0]", "t1t2[1]"]


# --- writing with the source header ----------------------------------------------------------

HEADER_CASES = {
    "q1-s4": {"qcode": 1, "scode": 4},
    "q0-s2": {"qcode": 0, "scode": 2},
    "q2-s1-distinct-qform": {"qcode": 2, "scode": 1, "qform": oblique_affine(zooms=(0.8, 1.1, 2.5), angles=(0, 0, 90), offset=(1, 2, 3))},
    "q1-s0": {"qcode": 1, "scode": 0},
}


@pytest.mark.parametrize("suffix", SUFFIXES)
@pytest.mark.parametrize("case", list(HEADER_CASES))
def test_labels_written_with_source_header_keep_geometry(tmp_path, ijk_data, suffix, case):
    src = make_nifti(tmp_path / f"img{suffix}", ijk_data, **HEADER_CASES[case])
    data, affine, header = read_nifti(src)
    labels = (data > 10).astype(np.uint8)
    labels[0, 0, 0] = 3
    out = tmp_path / f"labels{suffix}"
    write_nifti(out, labels, affine=affine, header=header)
    assert out.is_file()
    if suffix == ".nii.gz":
        with gzip.open(out) as fh:  # really gzip-compressed
            fh.read(4)
    else:
        assert out.read_bytes()[344:348] == b"n+1\x00"
    assert_geometry_equal(src, out, allow_dtype_change=True)
    assert nib.load(str(out)).get_data_dtype() == np.uint8
    back, back_affine, _ = read_nifti(out, labels=True)
    np.testing.assert_array_equal(back, labels)
    assert back.dtype == np.uint8
    np.testing.assert_array_equal(back_affine, affine)
    # and in NIfTI order, the stored array is the transpose
    np.testing.assert_array_equal(np.asarray(nib.load(str(out)).dataobj), labels.T)


def test_sheared_sform_is_kept_exactly(tmp_path, ijk_data):
    sheared = oblique_affine()
    sheared[0, 1] += 0.3  # a shear: not representable by a qform
    qform = oblique_affine()
    src = make_nifti(tmp_path / "shear.nii.gz", ijk_data, sheared, qcode=1, scode=2, qform=qform)
    data, affine, header = read_nifti(src)
    out = tmp_path / "shear_mask.nii.gz"
    write_nifti(out, (data > 9).astype(np.uint8), header=header)
    assert_geometry_equal(src, out, allow_dtype_change=True)
    np.testing.assert_allclose(nib.load(str(out)).affine, sheared, atol=1e-5)


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_same_dtype_gives_identical_header(tmp_path, ijk_data, suffix):
    src = make_nifti(tmp_path / f"img{suffix}", ijk_data, qcode=2, scode=1)
    data, affine, header = read_nifti(src)
    out = tmp_path / f"copy{suffix}"
    write_nifti(out, data, header=header)
    assert_geometry_equal(src, out, allow_dtype_change=False)
    back, _, _ = read_nifti(out)
    np.testing.assert_array_equal(back, data)


def test_same_dtype_labels_give_identical_header(tmp_path):
    lab = np.zeros((7, 9, 5), np.uint8)
    lab[2:5, 3:6, 1:3] = 1
    lab[0, 0, 4] = 2
    src = make_nifti(tmp_path / "truth_seg.nii.gz", lab)
    data, _, header = read_nifti(src, labels=True)
    assert data.dtype == np.uint8
    out = tmp_path / "again_seg.nii.gz"
    write_nifti(out, data, header=header)
    assert_geometry_equal(src, out, allow_dtype_change=False)


def test_nifti2_header_round_trip(tmp_path, ijk_data):
    src = make_nifti(tmp_path / "n2.nii.gz", ijk_data, cls=nib.Nifti2Image, qcode=1, scode=2)
    data, _, header = read_nifti(src)
    assert isinstance(header, nib.Nifti2Header)
    out = tmp_path / "n2_mask.nii.gz"
    write_nifti(out, (data > 10).astype(np.uint8), header=header)
    assert isinstance(nib.load(str(out)), nib.Nifti2Image)
    assert_geometry_equal(src, out, allow_dtype_change=True)


def test_write_without_header_uses_affine_for_both_forms(tmp_path):
    aff = oblique_affine()
    data = np.arange(5 * 9 * 7, dtype=np.int16).reshape(5, 9, 7)
    out = tmp_path / "plain.nii.gz"
    write_nifti(out, data, affine=aff)
    img = nib.load(str(out))
    assert img.shape == (7, 9, 5)
    np.testing.assert_allclose(img.affine, aff, atol=1e-5)
    assert int(img.header["qform_code"]) == 1 and int(img.header["sform_code"]) == 1
    np.testing.assert_allclose(img.header.get_qform(), aff, atol=1e-5)
    np.testing.assert_array_equal(np.asarray(img.dataobj), data.T)
    # the default is the identity
    write_nifti(tmp_path / "eye.nii", data)
    np.testing.assert_array_equal(nib.load(str(tmp_path / "eye.nii")).affine, np.eye(4))


def test_write_bool_and_int64_get_portable_types(tmp_path):
    mask = np.zeros((3, 4, 5), bool)
    mask[1, 2, 3] = True
    write_nifti(tmp_path / "b.nii.gz", mask)
    assert nib.load(str(tmp_path / "b.nii.gz")).get_data_dtype() == np.uint8
    small = np.full((3, 4, 5), 7, np.int64)
    write_nifti(tmp_path / "s.nii.gz", small)
    assert nib.load(str(tmp_path / "s.nii.gz")).get_data_dtype() == np.int16
    big = np.full((3, 4, 5), 70000, np.int64)
    write_nifti(tmp_path / "l.nii.gz", big)
    assert nib.load(str(tmp_path / "l.nii.gz")).get_data_dtype() == np.int32
    np.testing.assert_array_equal(read_nifti(tmp_path / "l.nii.gz", labels=True)[0], big)


def test_write_4d_channels(tmp_path, ijk_data):
    src = make_nifti(tmp_path / "img.nii.gz", ijk_data)
    data, _, header = read_nifti(src)
    stack = np.stack([data, 2 * data])  # (C, Z, Y, X)
    out = tmp_path / "stack.nii.gz"
    write_nifti(out, stack, header=header)
    img = nib.load(str(out))
    assert img.shape == (7, 9, 5, 2)
    np.testing.assert_array_equal(img.affine, nib.load(str(src)).affine)
    back, _, _ = read_nifti(out)
    np.testing.assert_array_equal(back, stack)


def test_write_leaves_no_temporary_files(tmp_path, ijk_data):
    write_nifti(tmp_path / "a.nii.gz", ijk_data.T)
    write_nifti(tmp_path / "a.nii.gz", ijk_data.T * 2)  # overwrite in place
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.nii.gz"]
    np.testing.assert_array_equal(read_nifti(tmp_path / "a.nii.gz")[0], ijk_data.T * 2)


# --- napari reader and writer ---------------------------------------------------------------


@pytest.fixture
def npe2_plugins():
    """Make napari's writer lookup see this plugin (a viewer would do this on start)."""
    from npe2 import PluginManager

    pm = PluginManager.instance()
    pm.discover()
    assert "napari-weakseg" in {m.name for m in pm.iter_manifests()}
    return pm


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_save_layers_round_trip_of_a_mask(tmp_path, npe2_plugins, suffix):
    import napari

    aff = oblique_affine()
    lab = np.zeros((7, 9, 5), np.uint8)
    lab[1:4, 2:7, 1:4] = 1
    lab[5, 5, 4] = 2
    src = make_nifti(tmp_path / f"case01_mask{suffix}", lab, aff, qcode=1, scode=2)

    layer_data = napari_io.layer_data_for(src)
    assert len(layer_data) == 1
    data, meta, kind = layer_data[0]
    assert kind == "labels"
    assert meta["name"] == "case01_mask"
    assert data.shape == (5, 9, 7)
    assert meta["scale"] == pytest.approx((2.5, 1.1, 0.8), abs=1e-6)
    layer = napari.layers.Labels(data, **meta)
    layer.data[0, 0, 0] = 4  # an edit made in napari

    out = tmp_path / "edited.nii.gz"
    written = napari.save_layers(str(out), [layer])
    assert written == [str(out)]
    assert out.is_file()
    assert not (tmp_path / "edited.nii.gz.nii.gz").exists()
    assert not (tmp_path / "edited.nii").exists()
    assert_geometry_equal(src, out, allow_dtype_change=False)
    back, _, _ = read_nifti(out, labels=True)
    expected = lab.T.copy()
    expected[0, 0, 0] = 4
    np.testing.assert_array_equal(back, expected)


def test_save_layers_of_an_image_layer_from_read_paths(tmp_path, npe2_plugins, ijk_data):
    import napari

    src = make_nifti(tmp_path / "flair.nii.gz", ijk_data, qcode=1, scode=1)
    layer_data = napari_io.read_paths(str(src))
    assert len(layer_data) == 1
    data, meta, kind = layer_data[0]
    assert kind == "image" and meta["name"] == "flair"
    layer = napari.layers.Image(data, **meta)
    out = tmp_path / "flair_copy.nii.gz"
    assert napari.save_layers(str(out), [layer]) == [str(out)]
    assert_geometry_equal(src, out, allow_dtype_change=False)
    np.testing.assert_array_equal(read_nifti(out)[0], read_nifti(src)[0])


def test_save_layers_labels_without_source_header_uses_scale(tmp_path, npe2_plugins):
    import napari

    layer = napari.layers.Labels(np.ones((3, 4, 5), np.uint8), scale=(3.0, 2.0, 0.5), translate=(10.0, 20.0, 30.0))
    out = tmp_path / "fresh.nii.gz"
    assert napari.save_layers(str(out), [layer]) == [str(out)]
    img = nib.load(str(out))
    assert img.shape == (5, 4, 3)
    np.testing.assert_allclose(img.affine, [[0.5, 0, 0, 30], [0, 2, 0, 20], [0, 0, 3, 10], [0, 0, 0, 1]])


def test_writer_adds_suffix_and_drops_header_of_other_grid(tmp_path, ijk_data):
    src = make_nifti(tmp_path / "img.nii.gz", ijk_data)
    _, affine, header = read_nifti(src)
    meta = {"metadata": napari_io.nifti_metadata(affine, header, [str(src)]), "scale": (1.0, 1.0, 1.0)}
    paths = napari_io.write_single_layer(str(tmp_path / "noext"), np.zeros((5, 9, 7), np.uint8), meta)
    assert paths == [str(tmp_path / "noext.nii.gz")]
    assert_geometry_equal(src, tmp_path / "noext.nii.gz", allow_dtype_change=True)
    # a cropped layer no longer lies on the source grid: the header is not reused
    paths = napari_io.write_single_layer(str(tmp_path / "crop.nii.gz"), np.zeros((5, 9, 6), np.uint8), meta)
    assert paths == [str(tmp_path / "crop.nii.gz")]
    assert nib.load(paths[0]).shape == (6, 9, 5)
    np.testing.assert_array_equal(nib.load(paths[0]).affine, np.eye(4))


def test_writer_refuses_2d_layers(tmp_path, monkeypatch):
    notes = []
    monkeypatch.setattr(napari_io, "_notify", lambda kind, msg: notes.append((kind, msg)))
    assert napari_io.write_single_layer(str(tmp_path / "flat.nii.gz"), np.zeros((4, 5)), {}) == []
    assert not (tmp_path / "flat.nii.gz").exists()
    assert notes and notes[0][0] == "error" and "2D layer" in notes[0][1]


def test_get_reader_dispatch(tmp_path, ijk_data):
    txt = tmp_path / "notes.txt"
    txt.write_text("hello")
    nii = make_nifti(tmp_path / "a.nii.gz", ijk_data)
    plain = make_nifti(tmp_path / "b.nii", ijk_data)
    folder = tmp_path / "slices"
    folder.mkdir()
    assert napari_io.get_reader(str(txt)) is None
    assert napari_io.get_reader(str(tmp_path / "image.png")) is None
    assert napari_io.get_reader(str(tmp_path / "store.zarr")) is None
    assert napari_io.get_reader([]) is None
    assert napari_io.get_reader([str(nii), str(txt)]) is None  # all or nothing
    for ok in (str(nii), str(plain), nii, str(folder), [str(nii), str(plain)], str(tmp_path / "UPPER.NII.GZ")):
        reader = napari_io.get_reader(ok)
        assert callable(reader), ok
    assert napari_io.get_reader(str(nii)) is napari_io.read_paths


def test_read_paths_image_4d_and_folder(tmp_path):
    from skimage import io as skio

    ijkc = np.random.default_rng(7).random((6, 5, 4, 2)).astype(np.float32)
    src = make_nifti(tmp_path / "mr.nii.gz", ijkc)
    ((data, meta, kind),) = napari_io.read_paths(str(src))
    assert kind == "image"
    assert data.shape == (2, 4, 5, 6)
    assert meta["channel_axis"] == 0
    assert meta["visible"] == [True, False]
    assert len(meta["name"]) == 2 and meta["name"][0] == "mr[0]"
    assert meta["metadata"]["weakseg"]["header"] is not None
    np.testing.assert_array_equal(meta["metadata"]["weakseg"]["affine"], nib.load(str(src)).affine)

    folder = tmp_path / "pngs"
    folder.mkdir()
    for i in range(3):
        skio.imsave(str(folder / f"s{i}.png"), np.full((6, 8), 40 * i, np.uint8), check_contrast=False)
    ((data, meta, kind),) = napari_io.read_paths(str(folder))
    assert kind == "image" and data.shape == (3, 6, 8) and meta["name"] == "pngs"
    assert meta["metadata"]["weakseg"]["header"] is None


def test_read_paths_mask_named_files_open_as_labels(tmp_path):
    lab = np.zeros((4, 5, 6), np.int16)
    lab[1, 2, 3] = 300
    src = make_nifti(tmp_path / "patient_seg.nii.gz", lab)
    ((data, meta, kind),) = napari_io.read_paths(src)
    assert kind == "labels"
    assert data.dtype == np.uint16 and data[3, 2, 1] == 300


def _bad_files(tmp_path: Path) -> dict[str, Path]:
    good = make_nifti(tmp_path / "good.nii.gz", np.random.default_rng(0).random((20, 20, 20)).astype(np.float32))
    raw = good.read_bytes()
    files = {"truncated": tmp_path / "truncated.nii.gz", "text": tmp_path / "x.nii.gz"}
    files["truncated"].write_bytes(raw[: len(raw) // 2])
    files["text"].write_text("this is not an image\n")
    files["2d"] = make_nifti(tmp_path / "flat.nii.gz", np.zeros((6, 7), np.float32))
    files["5d"] = make_nifti(tmp_path / "five.nii.gz", np.zeros((3, 4, 5, 2, 2), np.float32))
    return files


BAD_MESSAGES = {
    "truncated": ("truncated.nii.gz", "is the file truncated"),
    "text": ("x.nii.gz", "not a readable NIfTI file"),
    "2d": ("flat.nii.gz", "2D NIfTI", "expected a 3D volume"),
    "5d": ("five.nii.gz", "5D NIfTI", "(3, 4, 5, 2, 2)", "expected a 3D volume"),
}


@pytest.mark.parametrize("which", list(BAD_MESSAGES))
def test_bad_files_raise_input_error_with_clear_message(tmp_path, which):
    path = _bad_files(tmp_path)[which]
    with pytest.raises(InputError) as info:
        read_nifti(path)
    msg = str(info.value)
    for part in BAD_MESSAGES[which]:
        assert part in msg, msg
    assert "\n" not in msg
    assert "Traceback" not in msg
    with pytest.raises(InputError):  # the same through the case reader
        load_case([path])


@pytest.mark.parametrize("which", list(BAD_MESSAGES))
def test_read_paths_notifies_and_returns_sentinel(tmp_path, monkeypatch, which):
    path = _bad_files(tmp_path)[which]
    notes = []
    monkeypatch.setattr(napari_io, "_notify", lambda kind, msg: notes.append((kind, msg)))
    assert napari_io.read_paths(str(path)) == [(None,)]
    assert len(notes) == 1
    kind, msg = notes[0]
    assert kind == "error"
    assert BAD_MESSAGES[which][0] in msg and BAD_MESSAGES[which][1] in msg


def test_read_paths_reaches_napari_notifications(tmp_path):
    from napari.utils.notifications import NotificationSeverity, notification_manager

    path = _bad_files(tmp_path)["text"]
    got = []
    notification_manager.notification_ready.connect(got.append)
    try:
        result = napari_io.read_paths([str(path)])
    finally:
        notification_manager.notification_ready.disconnect(got.append)
    assert result == [(None,)]
    assert len(got) == 1
    assert got[0].severity == NotificationSeverity.ERROR
    assert "x.nii.gz: not a readable NIfTI file" in str(got[0].message)


def test_read_paths_keeps_good_files_when_one_is_bad(tmp_path, monkeypatch, ijk_data):
    bad = _bad_files(tmp_path)["2d"]
    good = make_nifti(tmp_path / "ok.nii.gz", ijk_data)
    notes = []
    monkeypatch.setattr(napari_io, "_notify", lambda kind, msg: notes.append((kind, msg)))
    layers = napari_io.read_paths([str(bad), str(good)])
    assert len(layers) == 1 and layers[0][1]["name"] == "ok"
    assert [k for k, _ in notes] == ["error"]


def test_non_finite_voxels_warn_and_become_zero(tmp_path, ijk_data):
    bad = ijk_data.copy()
    bad[0, 0, 0] = np.nan
    bad[1, 2, 3] = np.inf
    bad[6, 8, 4] = -np.inf
    path = make_nifti(tmp_path / "nans.nii.gz", bad)
    with pytest.warns(InputWarning, match=r"nans\.nii\.gz: 3 NaN/Inf voxel\(s\) replaced by 0"):
        data, _, _ = read_nifti(path)
    assert np.isfinite(data).all()
    assert data[0, 0, 0] == 0 and data[3, 2, 1] == 0 and data[4, 8, 6] == 0
    finite = np.isfinite(bad)
    np.testing.assert_array_equal(data.T[finite], bad[finite])


def test_clean_file_does_not_warn(tmp_path, ijk_data):
    path = make_nifti(tmp_path / "clean.nii.gz", ijk_data)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_nifti(path)


def test_non_finite_voxels_are_a_napari_warning(tmp_path, monkeypatch, ijk_data):
    bad = ijk_data.copy()
    bad[2, 2, 2] = np.nan
    path = make_nifti(tmp_path / "nan1.nii.gz", bad)
    notes = []
    monkeypatch.setattr(napari_io, "_notify", lambda kind, msg: notes.append((kind, msg)))
    layers = napari_io.read_paths(str(path))
    assert len(layers) == 1 and layers[0][2] == "image"
    assert np.isfinite(layers[0][0]).all()
    assert notes == [("warning", "nan1.nii.gz: 1 NaN/Inf voxel(s) replaced by 0")]


def test_non_finite_mask_is_refused(tmp_path):
    lab = np.zeros((4, 5, 6), np.float32)
    lab[0, 0, 0] = np.nan
    with pytest.raises(InputError, match="mask with NaN/Inf"):
        read_nifti(make_nifti(tmp_path / "m.nii.gz", lab), labels=True)


def test_mask_value_checks(tmp_path):
    frac = np.zeros((4, 5, 6), np.float32)
    frac[1, 1, 1] = 0.5
    with pytest.raises(InputError, match="whole-number labels"):
        read_nifti(make_nifti(tmp_path / "frac.nii.gz", frac), labels=True)
    neg = np.zeros((4, 5, 6), np.int16)
    neg[1, 1, 1] = -1
    with pytest.raises(InputError, match="negative labels"):
        read_nifti(make_nifti(tmp_path / "neg.nii.gz", neg), labels=True)
    whole = np.zeros((4, 5, 6), np.float32)
    whole[1, 1, 1] = 2.0
    data, _, _ = read_nifti(make_nifti(tmp_path / "whole.nii.gz", whole), labels=True)
    assert data.dtype.kind == "i" and data[1, 1, 1] == 2
    noisy = np.zeros((4, 5, 6), np.float32)
    noisy[1, 1, 1] = np.float32(0.99999997)  # float storage noise of a label 1
    noisy[2, 2, 2] = np.float32(2.0000002)
    data, _, _ = read_nifti(make_nifti(tmp_path / "noisy.nii.gz", noisy), labels=True)
    assert data[1, 1, 1] == 1 and data[2, 2, 2] == 2 and data.sum() == 3


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_nifti(tmp_path / "absent.nii.gz")
    with pytest.raises(InputError, match="no such file"):
        load_case(str(tmp_path / "absent.nii.gz"))


def test_unknown_file_type_for_a_case(tmp_path):
    txt = tmp_path / "notes.txt"
    txt.write_text("x")
    with pytest.raises(InputError, match=r"notes\.txt: not a NIfTI file \(\.nii, \.nii\.gz\) or a folder"):
        load_case(txt)
    with pytest.raises(InputError, match="no image given"):
        load_case([])


# --- cases and masks ---------------------------------------------------------------------------


def test_load_case_stacks_registered_channels(tmp_path):
    aff = oblique_affine()
    rng = np.random.default_rng(8)
    a, b = rng.random((2, 7, 9, 5)).astype(np.float32)
    pa = make_nifti(tmp_path / "t1.nii.gz", a, aff)
    pb = make_nifti(tmp_path / "flair.nii", b, aff)
    vol = load_case([pa, pb])
    assert vol.data.shape == (2, 5, 9, 7)
    np.testing.assert_array_equal(vol.data[0], a.T)
    np.testing.assert_array_equal(vol.data[1], b.T)
    assert vol.channel_names == ["t1", "flair"]
    assert [Path(s).name for s in vol.sources] == ["t1.nii.gz", "flair.nii"]
    np.testing.assert_array_equal(vol.affine, nib.load(str(pa)).affine)
    assert vol.header == nib.load(str(pa)).header


def test_load_case_refuses_channels_of_another_shape(tmp_path):
    aff = oblique_affine()
    pa = make_nifti(tmp_path / "t1.nii.gz", np.zeros((7, 9, 5), np.float32), aff)
    pb = make_nifti(tmp_path / "t2.nii.gz", np.zeros((7, 9, 6), np.float32), aff)
    with pytest.raises(InputError) as info:
        load_case([pa, pb])
    msg = str(info.value)
    assert "t2.nii.gz" in msg and "(6, 9, 7)" in msg and "(5, 9, 7)" in msg and "one grid" in msg


def test_load_case_refuses_unregistered_channels(tmp_path):
    pa = make_nifti(tmp_path / "t1.nii.gz", np.zeros((7, 9, 5), np.float32), oblique_affine())
    pb = make_nifti(tmp_path / "t2.nii.gz", np.zeros((7, 9, 5), np.float32), oblique_affine(offset=(-90.5, 12.25, 31.75)))
    with pytest.raises(InputError) as info:
        load_case([pa, pb])
    assert "t2.nii.gz: its affine differs from t1.nii.gz" in str(info.value)
    assert "registered" in str(info.value)


def test_load_mask_on_the_image_grid(tmp_path):
    aff = oblique_affine()
    img = make_nifti(tmp_path / "img.nii.gz", np.zeros((7, 9, 5), np.float32), aff)
    lab = np.zeros((7, 9, 5), np.int32)
    lab[3, 4, 2] = 1
    lab[0, 0, 0] = 256
    vol = load_case(img)
    mask = load_mask(make_nifti(tmp_path / "m.nii.gz", lab, aff), vol)
    assert mask.shape == (5, 9, 7) and mask.dtype == np.uint16
    assert mask[2, 4, 3] == 1 and mask[0, 0, 0] == 256
    lab[0, 0, 0] = 0
    mask8 = load_mask(make_nifti(tmp_path / "m8.nii.gz", lab, aff), vol)
    assert mask8.dtype == np.uint8


def test_load_mask_shape_mismatch(tmp_path):
    aff = oblique_affine()
    vol = load_case(make_nifti(tmp_path / "img.nii.gz", np.zeros((7, 9, 5), np.float32), aff))
    bad = make_nifti(tmp_path / "small_mask.nii.gz", np.zeros((7, 9, 4), np.uint8), aff)
    with pytest.raises(InputError) as info:
        load_mask(bad, vol)
    msg = str(info.value)
    assert msg == "small_mask.nii.gz: mask shape (4, 9, 7) does not match the image shape (5, 9, 7)"


def test_load_mask_affine_mismatch_and_4d(tmp_path):
    vol = load_case(make_nifti(tmp_path / "img.nii.gz", np.zeros((7, 9, 5), np.float32), oblique_affine()))
    moved = make_nifti(tmp_path / "moved_mask.nii.gz", np.zeros((7, 9, 5), np.uint8), oblique_affine(angles=(0, 0, 0)))
    with pytest.raises(InputError, match="moved_mask.nii.gz: its affine differs from the image's"):
        load_mask(moved, vol)
    four = make_nifti(tmp_path / "four_mask.nii.gz", np.zeros((7, 9, 5, 2), np.uint8), oblique_affine())
    with pytest.raises(InputError, match="a mask must be 3D"):
        load_mask(four, vol)
    txt = tmp_path / "m.txt"
    txt.write_text("x")
    with pytest.raises(InputError, match="a mask must be a NIfTI file or a folder"):
        load_mask(txt, vol)
