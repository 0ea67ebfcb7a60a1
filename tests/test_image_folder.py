"""Folders of 2D images (PNG/TIFF) read as a stack of slices."""

from __future__ import annotations

import warnings
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from skimage import io as skio

from napari_weakseg.errors import InputError
from napari_weakseg.io import load_case, load_mask, read_image_folder
from napari_weakseg.io.image_folder import natural_key


def save_png(path: Path, arr: np.ndarray) -> Path:
    skio.imsave(str(path), arr, check_contrast=False)
    return path


def save_tif(path: Path, arr: np.ndarray) -> Path:
    iio.imwrite(str(path), arr)
    return path


def test_different_sizes_are_zero_padded_bottom_right(tmp_path):
    a = np.full((10, 12), 50, np.uint8)
    b = np.full((14, 8), 200, np.uint8)
    save_png(tmp_path / "a.png", a)
    save_png(tmp_path / "b.png", b)
    with pytest.warns(UserWarning, match=r"images of 2 different sizes zero-padded to 14x12 \(bottom/right\)"):
        stack, info = read_image_folder(tmp_path)
    assert stack.shape == (2, 14, 12)
    assert stack.dtype == np.float32
    # every pixel keeps its coordinates: the image sits in the top-left corner
    np.testing.assert_array_equal(stack[0, :10, :12], 50)
    np.testing.assert_array_equal(stack[0, 10:, :], 0)
    np.testing.assert_array_equal(stack[1, :14, :8], 200)
    np.testing.assert_array_equal(stack[1, :, 8:], 0)
    assert info["shapes"] == [(10, 12), (14, 8)]
    assert [Path(f).name for f in info["files"]] == ["a.png", "b.png"]


def test_same_sizes_do_not_warn(tmp_path):
    for i in range(3):
        save_png(tmp_path / f"s{i}.png", np.full((6, 7), i, np.uint8))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        stack, _ = read_image_folder(tmp_path)
    assert stack.shape == (3, 6, 7)


def test_natural_sort_order(tmp_path):
    names = ["img10.png", "img2.png", "img1.png", "IMG3.png", "img21.png"]
    for n in names:
        value = int("".join(c for c in n if c.isdigit()))
        save_png(tmp_path / n, np.full((4, 5), value, np.uint8))
    stack, info = read_image_folder(tmp_path)
    assert [Path(f).name for f in info["files"]] == ["img1.png", "img2.png", "IMG3.png", "img10.png", "img21.png"]
    np.testing.assert_array_equal(stack[:, 0, 0], [1, 2, 3, 10, 21])
    assert sorted([Path("img10"), Path("img2")], key=natural_key) == [Path("img2"), Path("img10")]


def test_rgb_and_rgba_become_grey(tmp_path):
    red = np.zeros((5, 6, 3), np.uint8)
    red[..., 0] = 255
    grey_rgb = np.full((5, 6, 3), 100, np.uint8)
    rgba = np.zeros((5, 6, 4), np.uint8)
    rgba[..., 1] = 255  # pure green, opaque
    rgba[..., 3] = 255
    save_png(tmp_path / "c1.png", red)
    save_png(tmp_path / "c2.png", grey_rgb)
    save_png(tmp_path / "c3.png", rgba)
    stack, _ = read_image_folder(tmp_path)
    assert stack.shape == (3, 5, 6)  # colour collapsed, not a channel axis
    # luminance (ITU-R 709 weights used by skimage.color.rgb2gray), on the 0..255 scale
    np.testing.assert_allclose(stack[0], 0.2125 * 255, rtol=1e-3)
    np.testing.assert_allclose(stack[1], 100, rtol=1e-3)
    np.testing.assert_allclose(stack[2], 0.7154 * 255, rtol=1e-3)


def test_tiff_16_bit_values_are_kept(tmp_path):
    a = np.arange(20, dtype=np.uint16).reshape(4, 5) * 3000
    save_tif(tmp_path / "x1.tif", a)
    save_tif(tmp_path / "x2.tiff", a[::-1].copy())
    stack, _ = read_image_folder(tmp_path)
    assert stack.shape == (2, 4, 5)
    np.testing.assert_array_equal(stack[0], a.astype(np.float32))
    np.testing.assert_array_equal(stack[1], a[::-1].astype(np.float32))


def test_mask_named_files_are_skipped_with_warning(tmp_path):
    save_png(tmp_path / "img1.png", np.full((4, 4), 10, np.uint8))
    save_png(tmp_path / "img2.png", np.full((4, 4), 20, np.uint8))
    save_png(tmp_path / "img1_mask.png", np.ones((4, 4), np.uint8))
    save_tif(tmp_path / "img2-seg.tif", np.ones((4, 4), np.uint8))
    save_png(tmp_path / "img3_LABELS.png", np.ones((4, 4), np.uint8))
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.warns(UserWarning, match=r"skipped 3 file\(s\) named like masks"):
        stack, info = read_image_folder(tmp_path)
    assert [Path(f).name for f in info["files"]] == ["img1.png", "img2.png"]
    np.testing.assert_array_equal(stack[:, 0, 0], [10, 20])


def test_masked_folder_read_as_labels(tmp_path):
    save_png(tmp_path / "img1.png", np.full((4, 5), 10, np.uint8))
    save_png(tmp_path / "img2.png", np.full((4, 5), 20, np.uint8))
    m1 = np.zeros((4, 5), np.uint8)
    m1[1, 2] = 1
    m2 = np.zeros((4, 5, 3), np.uint8)  # a colour mask: any non-zero pixel counts as label 1
    m2[3, 4] = (0, 0, 255)
    m2[0, 0] = (255, 255, 255)
    save_png(tmp_path / "img1_mask.png", m1)
    save_png(tmp_path / "img2_mask.png", m2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing skipped when reading labels
        labels, info = read_image_folder(tmp_path, as_labels=True)
    assert [Path(f).name for f in info["files"]] == ["img1_mask.png", "img2_mask.png"]
    assert labels.dtype == np.uint8 and labels.shape == (2, 4, 5)
    assert labels[0, 1, 2] == 1 and labels[0].sum() == 1
    assert labels[1, 3, 4] == 1 and labels[1, 0, 0] == 1 and labels[1].sum() == 2


def test_labels_folder_of_plain_names_and_wide_labels(tmp_path):
    a = np.zeros((3, 3), np.uint16)
    a[1, 1] = 300
    save_tif(tmp_path / "l1.tif", a)
    save_tif(tmp_path / "l2.tif", np.full((3, 3), 2, np.uint16))
    labels, _ = read_image_folder(tmp_path, as_labels=True)
    assert labels.dtype == np.uint16
    assert labels[0, 1, 1] == 300 and labels[1, 0, 0] == 2


def test_labels_of_different_sizes_are_padded(tmp_path):
    save_png(tmp_path / "a_mask.png", np.ones((3, 5), np.uint8))
    save_png(tmp_path / "b_mask.png", np.ones((6, 2), np.uint8))
    with pytest.warns(UserWarning, match="zero-padded to 6x5"):
        labels, _ = read_image_folder(tmp_path, as_labels=True)
    assert labels.shape == (2, 6, 5)
    assert labels[0].sum() == 15 and labels[1].sum() == 12
    assert labels[0, 3:].sum() == 0 and labels[1, :, 2:].sum() == 0


def test_empty_folder_is_an_input_error(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="empty: the folder holds no PNG/TIFF/JPEG image files"):
        read_image_folder(empty)
    with pytest.raises(InputError, match="holds no mask files"):
        read_image_folder(empty, as_labels=True)
    (empty / "readme.txt").write_text("x")
    with pytest.raises(InputError, match="holds no PNG/TIFF/JPEG image files"):
        read_image_folder(empty)
    with pytest.raises(InputError, match="holds no PNG/TIFF/JPEG image files"):
        load_case(empty)


def test_folder_of_only_masks_has_no_images(tmp_path):
    save_png(tmp_path / "a_mask.png", np.ones((3, 3), np.uint8))
    with pytest.raises(InputError, match="holds no PNG/TIFF/JPEG image files"):
        read_image_folder(tmp_path)


def test_not_a_folder(tmp_path):
    f = save_png(tmp_path / "single.png", np.ones((3, 3), np.uint8))
    with pytest.raises(InputError, match="not a folder"):
        read_image_folder(f)
    with pytest.raises(InputError, match="not a folder"):
        read_image_folder(tmp_path / "absent")


def test_unreadable_and_3d_images(tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    save_png(bad / "a1.png", np.ones((3, 3), np.uint8))
    (bad / "a2.png").write_bytes(b"\x89PNG garbage that is not an image")
    with pytest.raises(InputError, match=r"a2\.png: not a readable image"):
        read_image_folder(bad)
    vol = tmp_path / "vol"
    vol.mkdir()
    save_tif(vol / "stack.tif", np.zeros((5, 6, 7), np.uint8))  # a 3D stack, not a slice
    with pytest.raises(InputError, match=r"stack\.tif: expected a 2D grey or colour image; got shape \(5, 6, 7\)"):
        read_image_folder(vol)


def test_folder_as_case_and_mask_folder(tmp_path):
    imgs = tmp_path / "case"
    imgs.mkdir()
    for i in range(4):
        save_png(imgs / f"slice{i}.png", np.full((6, 8), 10 * i, np.uint8))
        m = np.zeros((6, 8), np.uint8)
        m[i, i] = 1
        save_png(imgs / f"slice{i}_mask.png", m)
    with pytest.warns(UserWarning, match="skipped 4"):
        vol = load_case(imgs)
    assert vol.data.shape == (1, 4, 6, 8)
    assert vol.header is None and vol.channel_names == ["case"]
    assert vol.spacing == (1.0, 1.0, 1.0)
    mask = load_mask(imgs, vol)
    assert mask.shape == (4, 6, 8) and mask.dtype == np.uint8
    for i in range(4):
        assert mask[i, i, i] == 1 and mask[i].sum() == 1

    other = tmp_path / "other"
    other.mkdir()
    save_png(other / "m_mask.png", np.ones((6, 8), np.uint8))
    with pytest.raises(InputError, match=r"other: mask shape \(1, 6, 8\) does not match the image shape \(4, 6, 8\)"):
        load_mask(other, vol)
