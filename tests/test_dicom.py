"""DICOM series in: series the tests write with pydicom (axial, sagittal, tilted, several in one folder,
broken ones) and the real samples inside pydicom; geometry from the positions; the series trains and predicts
through the CLI, and the outputs land on its grid."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from napari_weakseg.cli import main
from napari_weakseg.errors import InputError
from napari_weakseg.io.case import load_case, read_volume
from napari_weakseg.io.dicom import is_dicom_folder, list_series, read_dicom_series
from napari_weakseg.io.napari_io import layer_data_for
from napari_weakseg.io.orientation import axis_letters, is_oriented, study_axis
from napari_weakseg.study import load_study

SAMPLES = Path(pydicom.__file__).parent / "data" / "test_files" / "dicomdirtests"
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])


def write_series(
    folder: Path,
    frames: np.ndarray,
    iop,
    positions,
    spacing=(0.8, 0.6),
    *,
    description="T1 axial",
    slope=2.0,
    intercept=-100.0,
    thickness=9.0,
    uid=None,
) -> list[Path]:
    """Write frames (n, rows, cols) uint16 as a single-frame MR series; files in reverse position order, instance
    numbers shuffled, SliceThickness deliberately wrong (the reader must use the positions)."""
    folder.mkdir(parents=True, exist_ok=True)
    uid = uid or generate_uid()
    study_uid = generate_uid()
    order = np.random.default_rng(0).permutation(len(frames))
    paths = []
    for k in range(len(frames))[::-1]:
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        path = folder / f"im{len(paths):03d}.dcm"
        ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
        ds.Modality, ds.SeriesDescription, ds.SeriesInstanceUID, ds.StudyInstanceUID = "MR", description, uid, study_uid
        ds.PatientName, ds.PatientID, ds.FrameOfReferenceUID = "Test^Phantom", "0", study_uid
        ds.InstanceNumber = int(order[k]) + 1
        ds.ImageOrientationPatient = [float(v) for v in iop]
        ds.ImagePositionPatient = [float(v) for v in positions[k]]
        ds.PixelSpacing = [float(spacing[0]), float(spacing[1])]
        ds.SliceThickness = thickness
        ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
        ds.Rows, ds.Columns = frames.shape[1:]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.PixelData = frames[k].astype(np.uint16).tobytes()
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def frames(n=6, rows=10, cols=12, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 4000, (n, rows, cols)).astype(np.uint16)


def world_of(affine, i, j, k) -> np.ndarray:
    return (affine @ [i, j, k, 1])[:3]


def test_an_axial_series_opens_by_position_with_the_spacing_from_the_positions(tmp_path):
    f = frames()
    ipp = [[-30.0, -40.0, 10.0 + 2.0 * k] for k in range(len(f))]  # 2 mm apart (SliceThickness says 9)
    write_series(tmp_path / "ax", f, [1, 0, 0, 0, 1, 0], ipp)
    assert is_dicom_folder(tmp_path / "ax")
    v = read_volume(tmp_path / "ax")
    assert v.data.shape == (1, 6, 10, 12) and v.spacing == pytest.approx((2.0, 0.8, 0.6))
    assert np.array_equal(v.data[0], f * 2.0 - 100.0)  # ordered by position, rescaled
    for k in (0, 5):  # voxel (i, j, k) -> the slice's position, DICOM LPS seen as RAS
        assert world_of(v.affine, 0, 0, k) == pytest.approx(LPS_TO_RAS @ ipp[k])
    assert world_of(v.affine, 3, 0, 0) == pytest.approx(LPS_TO_RAS @ (np.array(ipp[0]) + [3 * 0.6, 0, 0]))  # columns: x
    assert world_of(v.affine, 0, 2, 0) == pytest.approx(LPS_TO_RAS @ (np.array(ipp[0]) + [0, 2 * 0.8, 0]))  # rows: y
    assert axis_letters(v.affine) == ("S", "P", "L") and is_oriented(v) and study_axis(v) == 0
    assert v.channel_names == ["T1 axial"]


def test_a_sagittal_series_slices_axially_by_default(tmp_path):
    f = frames(n=5, rows=9, cols=11)
    ipp = [[-20.0 + 3.0 * k, -50.0, 60.0] for k in range(len(f))]  # slices along x
    write_series(tmp_path / "sag", f, [0, 1, 0, 0, 0, -1], ipp)  # rows grow inferior, columns posterior
    v = read_volume(tmp_path / "sag")
    assert axis_letters(v.affine) == ("R", "I", "P")  # slices grow along row x column = LPS -x: the right
    assert study_axis(v) == 1 and study_axis(v, "sagittal") == 0


def test_a_tilted_acquisition_keeps_its_sheared_geometry(tmp_path):
    f = frames(n=4)
    tilt = np.tan(np.deg2rad(15))
    ipp = [[-30.0, -40.0 + 2.5 * tilt * k, 2.5 * k] for k in range(len(f))]  # gantry tilt: positions drift in y
    write_series(tmp_path / "tilt", f, [1, 0, 0, 0, 1, 0], ipp)
    v = read_volume(tmp_path / "tilt")
    for k in range(4):
        assert world_of(v.affine, 0, 0, k) == pytest.approx(LPS_TO_RAS @ ipp[k])
    assert int(v.header["sform_code"]) == 1 and int(v.header["qform_code"]) == 0  # a qform cannot hold a shear
    assert v.spacing[0] == pytest.approx(2.5 / np.cos(np.deg2rad(15)))


def test_a_folder_of_several_series_says_which_and_opens_the_one_chosen(tmp_path):
    write_series(tmp_path / "exam" / "a", frames(seed=1), [1, 0, 0, 0, 1, 0], [[0, 0, 2.0 * k] for k in range(6)], description="FLAIR")
    write_series(tmp_path / "exam" / "b", frames(seed=2), [1, 0, 0, 0, 1, 0], [[0, 0, 2.0 * k] for k in range(6)], description="T1c")
    assert [s.description for s in list_series(tmp_path / "exam")] == ["FLAIR", "T1c"]
    with pytest.raises(InputError, match=r"holds 2 series \(1: FLAIR \(MR, 6 image\(s\)\); 2: T1c .*exam#N"):
        read_volume(tmp_path / "exam")
    t1c = read_volume(f"{tmp_path / 'exam'}#2")
    assert t1c.channel_names == ["T1c"] and np.array_equal(t1c.data[0], frames(seed=2) * 2.0 - 100.0)
    both = load_case([f"{tmp_path / 'exam'}#1", f"{tmp_path / 'exam'}#2"])  # two series of one exam as channels
    assert both.data.shape == (2, 6, 10, 12)
    layers = layer_data_for(tmp_path / "exam")  # napari: each series its own layer, the user picks
    assert [meta["name"] for _, meta, _ in layers] == ["FLAIR #1", "T1c #2"]
    with pytest.raises(InputError, match="no series '3'"):
        read_volume(f"{tmp_path / 'exam'}#3")


@pytest.mark.parametrize(
    "case, message",
    [
        ("gap", "unevenly spaced slices"),
        ("same place", "at the same position"),
        ("radial", "different orientations"),
    ],
)
def test_series_that_are_not_one_volume_are_refused_with_the_reason(tmp_path, case, message):
    f = frames(n=4)
    z = {"gap": [0, 2, 4, 8], "same place": [0, 2, 2, 4], "radial": [0, 2, 4, 6]}[case]
    ipp = [[0.0, 0.0, float(v)] for v in z]
    write_series(tmp_path / "s", f, [1, 0, 0, 0, 1, 0], ipp)
    if case == "radial":  # one image turned
        ds = pydicom.dcmread(tmp_path / "s" / "im001.dcm")
        ds.ImageOrientationPatient = [0.0, 1.0, 0.0, 0.0, 0.0, -1.0]
        ds.save_as(tmp_path / "s" / "im001.dcm")
    with pytest.raises(InputError, match=message):
        read_dicom_series(tmp_path / "s")


def test_the_real_samples_inside_pydicom(tmp_path):
    """pydicom ships anonymised exams: a 5-slice axial CT (opens), a stack with a missing run of slices and a
    radial MR (each refused, with the reason), two localisers of different orientations."""
    assert SAMPLES.is_dir(), "pydicom's sample exams are part of its wheel"
    ct = read_volume(SAMPLES / "98892001" / "CT5N")
    assert ct.data.shape[:2] == (1, 5) and ct.spacing[0] == pytest.approx(2.5)
    zs = [world_of(ct.affine, 0, 0, k)[2] for k in range(5)]
    assert zs == pytest.approx([-1.2375, 1.2625, 3.7625, 6.2625, 8.7625])  # ordered by position, not by file
    assert ct.data.min() >= -1024 and axis_letters(ct.affine) == ("S", "P", "L")
    from napari_weakseg.io.dicom_seg import read_dicom_seg, write_dicom_seg

    mask = np.zeros(ct.shape, np.uint8)
    mask[2, 4:9, 3:12] = 1  # a SEG over a real, anonymised exam (some patient fields absent) reads back
    assert np.array_equal(
        read_dicom_seg(write_dicom_seg(tmp_path / "ct-seg.dcm", mask, SAMPLES / "98892001" / "CT5N"), SAMPLES / "98892001" / "CT5N"), mask
    )
    with pytest.raises(InputError, match="unevenly spaced"):
        read_volume(SAMPLES / "77654033" / "CT2")
    with pytest.raises(InputError, match="different orientations"):
        read_volume(SAMPLES / "98892003" / "MR700")
    with pytest.raises(InputError, match="different orientations"):
        read_volume(SAMPLES / "98892001" / "CT2N")


def test_a_dicom_series_trains_and_predicts_on_its_grid(tmp_path, capsys):
    from napari_weakseg.data import make_phantom

    case = make_phantom(shape=(12, 32, 32), channels=1, seed=1)
    scaled = np.round((case.volume.data[0] - case.volume.data[0].min()) * 1000).astype(np.uint16)
    ipp = [[-10.0, -12.0, 3.0 * k] for k in range(12)]
    write_series(tmp_path / "mr", scaled, [1, 0, 0, 0, 1, 0], ipp, slope=1.0, intercept=0.0)
    volume = read_volume(tmp_path / "mr")
    mask = tmp_path / "truth.nii.gz"
    nib.save(nib.Nifti1Image(np.transpose(case.mask, (2, 1, 0)).astype(np.uint8), volume.affine), mask)
    cfg = tmp_path / "tiny.json"
    cfg.write_text(json.dumps({"net": {"base": 4, "depth": 2, "max_channels": 16}, "input_size": 32, "batch_size": 2}))
    study = tmp_path / "study"
    assert main(["study", "create", str(study), "--image", str(tmp_path / "mr"), "--mask", str(mask), "--tags-from-masks"]) == 0
    im = load_study(study).images[0]
    assert im.axis == 0 and is_oriented(im.volume) and np.allclose(im.volume.affine, volume.affine)
    run = tmp_path / "run"
    args = ["train", str(study), "--method", "seg-only", "--out", str(run), "--steps", "3", "--config", str(cfg), "--device", "cpu"]
    assert main(args) == 0
    from napari_weakseg.io.dicom_seg import read_dicom_seg

    predict = ["predict", str(run), str(tmp_path / "mr"), "--device", "cpu"]
    assert main([*predict, "--out", str(tmp_path / "pred"), "--threshold", "0"]) == 0  # everything segmented
    seg = nib.load(tmp_path / "pred" / "mr_seg.nii.gz")
    assert seg.shape == (32, 32, 12) and np.allclose(seg.affine, volume.affine) and np.asarray(seg.dataobj).all()
    # and the same segmentation as a DICOM SEG over the series' images
    assert np.array_equal(read_dicom_seg(tmp_path / "pred" / "mr_seg.dcm", tmp_path / "mr"), np.ones((12, 32, 32)))
    assert main([*predict, "--out", str(tmp_path / "none"), "--threshold", "1"]) == 0  # nothing segmented
    assert not (tmp_path / "none" / "mr_seg.dcm").exists() and "no DICOM SEG written" in capsys.readouterr().err


def test_a_segmentation_is_written_as_dicom_seg_and_reads_back_on_the_series(tmp_path):
    import highdicom as hd

    from napari_weakseg.io.dicom_seg import read_dicom_seg, write_dicom_seg

    f = frames(n=5)
    ipp = [[-30.0, -40.0, 10.0 + 2.0 * k] for k in range(5)]
    write_series(tmp_path / "ax", f, [1, 0, 0, 0, 1, 0], ipp)
    mask = np.zeros((5, 10, 12), np.uint8)
    mask[1, 2:5, 3:7] = 1
    mask[3, 6:8, 1:4] = 2
    path = write_dicom_seg(tmp_path / "seg.dcm", mask, tmp_path / "ax", names={2: "enhancing"})
    assert np.array_equal(read_dicom_seg(path, tmp_path / "ax"), mask)
    seg = hd.seg.segread(str(path))
    assert [s.SegmentLabel for s in seg.SegmentSequence] == ["lesion", "enhancing"]
    series_uid = str(pydicom.dcmread(tmp_path / "ax" / "im000.dcm").SeriesInstanceUID)
    assert str(seg.ReferencedSeriesSequence[0].SeriesInstanceUID) == series_uid
    positions = sorted(float(fr.PlanePositionSequence[0].ImagePositionPatient[2]) for fr in seg.PerFrameFunctionalGroupsSequence)
    assert positions == pytest.approx([12.0, 16.0])  # the frames lie where their source images are
    with pytest.raises(InputError, match="not the series' grid"):
        write_dicom_seg(tmp_path / "bad.dcm", mask[:4], tmp_path / "ax")
    with pytest.raises(InputError, match="empty"):
        write_dicom_seg(tmp_path / "empty.dcm", np.zeros_like(mask), tmp_path / "ax")
    assert not (tmp_path / "bad.dcm").exists() and not (tmp_path / "empty.dcm").exists()
