"""The cluttered-digits task: generation, the study it builds, and ``weakseg digits``.

Uses a tiny fake MNIST ``.npz`` written to tmp_path, never the real one.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_weakseg.cli import main
from napari_weakseg.data.digits import (
    DIGIT_TASKS,
    build_digits_study,
    cluttered_digits_from_arrays,
    load_mnist,
    make_cluttered_digits,
)
from napari_weakseg.errors import InputError
from napari_weakseg.io.nifti import read_nifti
from napari_weakseg.study import Tag, load_study


def fake_digits(n: int, seed: int) -> np.ndarray:
    """(n, 28, 28) uint8 "digits": a random blob of bright (255/200) and faint (80, below 0.5) pixels."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, 28, 28), np.uint8)
    for i in range(n):
        r0, c0 = rng.integers(3, 10, size=2)
        r1, c1 = rng.integers(18, 25, size=2)
        block = rng.choice(np.array([0, 80, 200, 255], np.uint8), size=(r1 - r0, c1 - c0), p=[0.3, 0.2, 0.25, 0.25])
        block[(r1 - r0) // 2, :] = 255  # a bright stroke through the middle
        x[i, r0:r1, c0:c1] = block
    return x


@pytest.fixture
def mnist(tmp_path):
    path = tmp_path / "fake_mnist.npz"
    np.savez(
        path,
        x_train=fake_digits(40, 1),
        y_train=np.arange(40, dtype=np.uint8) % 10,
        x_test=fake_digits(20, 2),
        y_test=np.arange(20, dtype=np.uint8) % 10,
    )
    return path


def placed(digit: np.ndarray, pos, size: int) -> np.ndarray:
    out = np.zeros((size, size), np.float32)
    r, c = pos
    out[r : r + 28, c : c + 28] = digit
    return out


# --- generation ------------------------------------------------------------------------
def test_presets():
    assert {k: (t.size, t.n_clutter, t.crop) for k, t in DIGIT_TASKS.items()} == {
        "48-simple": (48, 8, 10),
        "48-hard": (48, 24, 10),
        "128": (128, 80, 10),
    }


def test_shapes_types_and_counts(mnist):
    d = make_cluttered_digits(mnist, "train", n_presence=12, n_absence=7, size=48, n_clutter=8, seed=3)
    assert len(d) == 19
    assert d.images.shape == d.masks.shape == (19, 48, 48)
    assert d.images.dtype == np.float32 and d.masks.dtype == np.uint8
    assert d.images.min() >= 0.0 and d.images.max() <= 1.0
    assert set(np.unique(d.masks)) <= {0, 1}
    assert d.presence.dtype == bool and d.presence.sum() == 12
    assert (d.labels[~d.presence] == -1).all() and (d.sources[~d.presence] == -1).all()
    assert (d.positions[~d.presence] == -1).all()
    _, y = load_mnist(mnist, "train")
    np.testing.assert_array_equal(d.labels[d.presence], y[d.sources[d.presence]])
    assert not d.presence[:12].all()  # shuffled: presence and absence interleaved
    d2 = make_cluttered_digits(mnist, "train", 12, 7, seed=3, shuffle=False)
    assert d2.presence[:12].all() and not d2.presence[12:].any()


def test_deterministic_by_seed(mnist):
    a = make_cluttered_digits(mnist, "train", 6, 4, seed=5)
    b = make_cluttered_digits(mnist, "train", 6, 4, seed=5)
    for f in ("images", "masks", "labels", "presence", "positions", "sources"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f))
    c = make_cluttered_digits(mnist, "train", 6, 4, seed=6)
    assert not np.array_equal(a.images, c.images)


def test_digit_fully_inside_and_mask_is_its_bright_pixels(mnist):
    x, _ = load_mnist(mnist, "train")
    for size, n_clutter in ((48, 8), (48, 24), (128, 80)):
        d = make_cluttered_digits(mnist, "train", 10, 3, size=size, n_clutter=n_clutter, seed=1)
        for i in np.flatnonzero(d.presence):
            r, c = d.positions[i]
            assert 0 <= r <= size - 28 and 0 <= c <= size - 28
            digit = placed(x[d.sources[i]], (r, c), size)
            np.testing.assert_array_equal(d.masks[i], (digit > 0.5).astype(np.uint8))
            # the digit is whole (combined with the clutter by maximum): every pixel at least the digit's value
            assert (d.images[i] >= digit).all()
        assert not d.masks[~d.presence].any()


def test_clutter_in_presence_and_absence_images(mnist):
    x, _ = load_mnist(mnist, "train")
    d = make_cluttered_digits(mnist, "train", 10, 10, size=48, n_clutter=8, seed=2)
    for i in range(len(d)):
        if d.presence[i]:
            digit = placed(x[d.sources[i]], d.positions[i], 48)
            assert (d.images[i] > digit).sum() >= 10  # clutter shows beside the digit
        else:
            assert (d.images[i] > 0.5).sum() >= 10  # clutter alone, visibly
    zero = make_cluttered_digits(mnist, "train", 3, 3, n_clutter=0, seed=2)
    assert not zero.images[~zero.presence].any()


def test_more_clutter_for_harder_tasks(mnist):
    ink = {}
    for name in ("48-simple", "48-hard"):
        t = DIGIT_TASKS[name]
        d = make_cluttered_digits(mnist, "test", 0, 20, t.size, t.n_clutter, seed=0)
        ink[name] = (d.images > 0.5).mean()
    assert ink["48-hard"] > 1.5 * ink["48-simple"]


def test_clutter_comes_from_other_digits():
    # every digit is one constant-valued block, so a pixel's value says which digit it came from
    n = 30
    x = np.zeros((n, 28, 28), np.float32)
    values = 0.55 + 0.01 * np.arange(n)
    for i in range(n):
        x[i, 6:22, 6:22] = values[i]
    d = cluttered_digits_from_arrays(x, np.arange(n) % 10, n_presence=30, n_absence=0, size=48, n_clutter=24, seed=0)
    for i in range(len(d)):
        own = values[d.sources[i]]
        r, c = d.positions[i]
        outside = np.ones((48, 48), bool)
        outside[r + 6 : r + 22, c + 6 : c + 22] = False
        seen = d.images[i][outside]
        assert (seen > 0).any()
        assert not np.isclose(seen, own).any()


def test_test_split_and_bad_inputs(mnist, tmp_path):
    d = make_cluttered_digits(mnist, "test", 5, 5, seed=0)
    assert d.sources[d.presence].max() < 20
    with pytest.raises(InputError, match="no such MNIST file"):
        make_cluttered_digits(tmp_path / "missing.npz", "train", 2, 2)
    (tmp_path / "text.npz").write_text("not an archive")
    with pytest.raises(InputError, match="not an .npz file"):
        make_cluttered_digits(tmp_path / "text.npz", "train", 2, 2)
    np.savez(tmp_path / "nokeys.npz", images=np.zeros((3, 28, 28), np.uint8))
    with pytest.raises(InputError, match="no x_train or y_train"):
        make_cluttered_digits(tmp_path / "nokeys.npz", "train", 2, 2)
    np.savez(tmp_path / "flat.npz", x_train=np.zeros((3, 784), np.uint8), y_train=np.zeros(3, np.uint8))
    with pytest.raises(InputError, match=r"must be \(N, 28, 28\)"):
        make_cluttered_digits(tmp_path / "flat.npz", "train", 2, 2)
    np.savez(tmp_path / "ylen.npz", x_train=np.zeros((3, 28, 28), np.uint8), y_train=np.zeros(2, np.uint8))
    with pytest.raises(InputError, match="one integer class per digit"):
        make_cluttered_digits(tmp_path / "ylen.npz", "train", 2, 2)
    with pytest.raises(InputError, match="unknown MNIST split"):
        make_cluttered_digits(mnist, "valid", 2, 2)
    with pytest.raises(InputError, match="at least one image"):
        make_cluttered_digits(mnist, "train", 0, 0)
    with pytest.raises(InputError, match="do not fit"):
        make_cluttered_digits(mnist, "train", 1, 1, size=20)


# --- the study ---------------------------------------------------------------------------
def test_build_study(mnist, tmp_path):
    out, truth = tmp_path / "study", tmp_path / "truth.nii.gz"
    study = build_digits_study(out, mnist, "48-simple", "train", n_presence=20, n_absence=10, label_fraction=0.1, seed=4, truth_path=truth)
    assert study.counts()["annotated"] == 2
    loaded = load_study(out)
    assert len(loaded.images) == 1
    im = loaded.images[0]
    assert im.name == "digits-48-simple-train" and im.axis == 0
    assert im.volume.data.shape == (1, 30, 48, 48)
    assert im.counts() == {"slices": 30, "presence": 20, "absence": 10, "unknown": 0, "annotated": 2}

    ref = make_cluttered_digits(mnist, "train", 20, 10, 48, 8, seed=4)
    np.testing.assert_allclose(im.volume.data[0], ref.images, atol=1e-6)
    np.testing.assert_array_equal(im.tags == Tag.PRESENCE, ref.presence)
    annotated = np.flatnonzero(im.annotated())
    assert ref.presence[annotated].all()
    np.testing.assert_array_equal(im.mask[annotated], ref.masks[annotated])
    others = np.setdiff1d(np.arange(30), annotated)
    assert not im.mask[others].any()

    gt, affine, _ = read_nifti(truth, labels=True)
    np.testing.assert_array_equal(gt, ref.masks)
    np.testing.assert_allclose(affine, im.volume.affine)


def test_build_study_label_digit_and_fractions(mnist, tmp_path):
    ref = make_cluttered_digits(mnist, "train", 40, 5, 48, 24, seed=7)
    study = build_digits_study(tmp_path / "nines", mnist, "48-hard", "train", 40, 5, label_fraction=0.05, label_digit=9, seed=7)
    im = load_study(tmp_path / "nines").images[0]
    annotated = np.flatnonzero(im.annotated())
    assert len(annotated) == 2 and (ref.labels[annotated] == 9).all()
    assert study.counts()["annotated"] == 2

    # a tiny fraction still labels one slice; zero labels none
    im = build_digits_study(tmp_path / "tiny", mnist, "48-simple", "train", 10, 2, label_fraction=0.001, seed=0).images[0]
    assert im.counts()["annotated"] == 1
    im = build_digits_study(tmp_path / "none", mnist, "48-simple", "train", 10, 2, label_fraction=0.0, seed=0).images[0]
    assert im.counts()["annotated"] == 0 and not im.mask.any()

    # more labels asked for than there are digits of that class: all of them, with a warning
    ref = make_cluttered_digits(mnist, "train", 30, 0, 48, 8, seed=1)
    with pytest.warns(UserWarning, match="show digit 3"):
        im = build_digits_study(tmp_path / "threes", mnist, "48-simple", "train", 30, 0, label_fraction=1.0, label_digit=3, seed=1).images[
            0
        ]
    np.testing.assert_array_equal(im.annotated(), ref.labels == 3)


def test_build_study_refusals_write_nothing(mnist, tmp_path):
    with pytest.raises(InputError, match="shows digit 11"):
        build_digits_study(tmp_path / "a", mnist, label_digit=11, n_presence=5, n_absence=5)
    with pytest.raises(InputError, match="between 0 and 1"):
        build_digits_study(tmp_path / "b", mnist, label_fraction=1.5, n_presence=5, n_absence=5)
    with pytest.raises(InputError, match="unknown digits task"):
        build_digits_study(tmp_path / "c", mnist, task="64", n_presence=5, n_absence=5)
    with pytest.raises(InputError, match=r"\.nii or \.nii\.gz"):
        build_digits_study(tmp_path / "d", mnist, n_presence=5, n_absence=5, truth_path=tmp_path / "truth.png")
    assert not any((tmp_path / n).exists() for n in "abcd")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.txt").write_text("x")
    with pytest.raises(InputError, match="not empty"):
        build_digits_study(tmp_path / "full", mnist, n_presence=5, n_absence=5)


# --- the command ---------------------------------------------------------------------------
def test_cli_digits_end_to_end(mnist, tmp_path, capsys):
    out, truth = tmp_path / "st", tmp_path / "gt.nii.gz"
    rc = main(
        [
            "digits",
            str(out),
            "--mnist",
            str(mnist),
            "--task",
            "48-hard",
            "--split",
            "test",
            "--presence",
            "12",
            "--absence",
            "8",
            "--label-fraction",
            "0.25",
            "--seed",
            "2",
            "--truth",
            str(truth),
        ]
    )
    assert rc == 0
    captured = capsys.readouterr()
    assert "digits-48-hard-test" in captured.out and "study written to" in captured.err
    im = load_study(out).images[0]
    assert im.counts() == {"slices": 20, "presence": 12, "absence": 8, "unknown": 0, "annotated": 3}
    assert truth.is_file()

    # the truth scores perfectly against itself
    assert main(["evaluate", str(truth), str(truth), "--per-slice", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["pooled_dice"] == 1.0 and result["units"] == 20 and result["mean_assd"] == 0.0


def test_cli_digits_errors(mnist, tmp_path, capsys):
    out = tmp_path / "st"
    assert main(["digits", str(out), "--mnist", str(tmp_path / "nope.npz")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("weakseg: error:") and "nope.npz" in err and "\n" not in err
    assert not out.exists()
    assert main(["digits", str(out), "--mnist", str(mnist), "--task", "huge"]) == 1
    assert "unknown digits task" in capsys.readouterr().err
    assert main(["digits", str(out), "--mnist", str(mnist), "--presence", "0", "--absence", "0"]) == 1
    assert "at least one image" in capsys.readouterr().err
    assert not out.exists()
    with pytest.raises(SystemExit) as exc:
        main(["digits", str(out)])  # --mnist is required
    assert exc.value.code == 2


def test_build_study_with_a_validation_image_of_other_digits(mnist, tmp_path):
    study = build_digits_study(
        tmp_path / "s", mnist, "48-simple", "train", n_presence=20, n_absence=10, label_fraction=0.1, seed=4, n_val=5
    )
    train, val = load_study(tmp_path / "s").images
    assert (train.name, val.name) == ("digits-48-simple-train", "digits-48-simple-val")
    assert train.counts() == {"slices": 30, "presence": 20, "absence": 10, "unknown": 0, "annotated": 2}
    assert val.counts() == {"slices": 10, "presence": 5, "absence": 5, "unknown": 0, "annotated": 5}  # every mask
    ref = make_cluttered_digits(mnist, "train", 25, 15, 48, 8, seed=4)
    rows_p = np.flatnonzero(ref.presence)
    val_digits, train_digits = set(ref.sources[rows_p[-5:]]), set(ref.sources[rows_p[:-5]])
    assert not val_digits & train_digits  # validation digits are none of the training ones
    assert study.counts()["annotated"] == 7
