"""Lesion classes: a study names its masks' labels, a method that segments classes trains per class, and the
class probabilities reach predict's files, the DICOM SEG's segments and the dock's layers with their names."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from napari_weakseg.cli import main, parse_classes
from napari_weakseg.data import make_phantom
from napari_weakseg.errors import InputError, WeaksegError
from napari_weakseg.io.nifti import write_nifti
from napari_weakseg.study import Study, load_study, save_study
from napari_weakseg.study.model import check_classes

AFFINE = np.array([[1.5, 0, 0, -20.0], [0, 1.25, 0, 10.0], [0, 0, 3.0, -5.5], [0, 0, 0, 1]])
TINY = {"net": {"base": 4, "depth": 2, "max_channels": 16, "code_channels": 8, "unique_channels": 4}, "input_size": 32, "batch_size": 2}


def test_class_names_are_checked_and_kept_in_the_manifest(tmp_path):
    assert parse_classes("1=necrosis, 2=oedema,4=enhancing") == {1: "necrosis", 2: "oedema", 4: "enhancing"}
    for bad, message in (("1necrosis", "not LABEL=NAME"), ("x=oedema", "not LABEL=NAME"), ("0=background", "1..65535"), ("1=", "1 to 64")):
        with pytest.raises((InputError, WeaksegError), match=message):
            parse_classes(bad)
    assert check_classes({"3": "enhancing", 1: "necrosis"}) == {1: "necrosis", 3: "enhancing"}  # JSON keys, sorted
    study = Study()
    study.add_image(make_phantom(shape=(6, 16, 16), seed=0).volume, name="p")
    heard = []
    study.changed.connect(heard.append)
    study.set_classes({1: "core", 2: "rim"})
    assert heard == [0] and study.modified  # the docks hear of it (autosave, refresh), as of any other edit
    save_study(study, tmp_path / "s")
    assert json.loads((tmp_path / "s" / "study.json").read_text())["classes"] == {"1": "core", "2": "rim"}
    again = load_study(tmp_path / "s")
    assert again.classes == {1: "core", 2: "rim"} and again.class_names(3) == ["core", "rim", "label 3"]


@pytest.fixture(scope="module")
def two_class_case(tmp_path_factory):
    """The phantom's lesion as two labels (1 = the upper half of each lesion, 2 = the lower), as NIfTI files."""
    d = tmp_path_factory.mktemp("classes")
    case = make_phantom(shape=(12, 32, 32), channels=1, seed=1)
    labels = case.mask.astype(np.uint8)
    labels[:, 16:][labels[:, 16:] > 0] = 2
    write_nifti(d / "flair.nii.gz", case.volume.data[0], affine=AFFINE)
    write_nifti(d / "truth.nii.gz", labels, affine=AFFINE)
    (d / "tiny.json").write_text(json.dumps(TINY))
    return d, labels


def create_two_class_study(d, out) -> None:
    args = ["--image", str(d / "flair.nii.gz"), "--mask", str(d / "truth.nii.gz"), "--tags-from-masks", "--classes", "1=upper,2=lower"]
    assert main(["study", "create", str(out), *args]) == 0


def test_per_class_training_reaches_predicts_files(two_class_case, tmp_path, capsys):
    d, labels = two_class_case
    study = tmp_path / "study"
    create_two_class_study(d, study)
    assert main(["study", "show", str(study)]) == 0 and "lesion classes: 1 upper, 2 lower" in capsys.readouterr().out
    common = ["--steps", "3", "--config", str(d / "tiny.json"), "--device", "cpu", "--per-class"]
    assert main(["train", str(study), "--method", "genseg", "--out", str(tmp_path / "g"), *common]) == 1
    assert "segments the whole lesion; per lesion class: cyclegan-ssl" in capsys.readouterr().err
    run = tmp_path / "run"
    assert main(["train", str(study), "--method", "cyclegan-ssl", "--out", str(run), *common]) == 0
    info = json.loads((run / "run.json").read_text())
    assert info["method_config"]["net"]["n_classes"] == 2 and info["study"]["classes"] == ["upper", "lower"]
    assert main(["predict", str(run), str(d / "flair.nii.gz"), "--out", str(tmp_path / "pred"), "--device", "cpu", "--threshold", "0"]) == 0
    classes = nib.load(tmp_path / "pred" / "flair_classes.nii.gz")
    prob = nib.load(tmp_path / "pred" / "flair_class_prob.nii.gz")
    assert prob.shape == (32, 32, 12, 2) and np.allclose(classes.affine, AFFINE)
    argmax = np.argmax(np.asarray(prob.dataobj), axis=-1) + 1
    assert np.array_equal(np.asarray(classes.dataobj), argmax)  # threshold 0: the likeliest class everywhere


def test_the_dock_shows_named_classes_and_trains_per_class(make_napari_viewer, two_class_case, tmp_path):
    from napari_weakseg.widgets.output_layers import CLASSES, layer_name, show_outputs

    d, labels = two_class_case
    create_two_class_study(d, tmp_path / "s")
    viewer = make_napari_viewer()
    _, ann = viewer.window.add_plugin_dock_widget("napari-weakseg", "Tag slices and paint masks")
    _, train = viewer.window.add_plugin_dock_widget("napari-weakseg", "Train and inspect")
    ann.open_study(tmp_path / "s")
    train.settings.method.setCurrentText("cyclegan-ssl")
    train.settings.advanced.setChecked(True)
    train.settings.per_class.setChecked(True)
    assert train.train_config()["overrides"]["net"]["n_classes"] == 2
    im = ann.image
    class_prob = np.stack([(labels == 1), (labels == 2)]).astype(np.float32) * 0.9 + 0.05
    prob = (labels > 0).astype(np.float32)
    show_outputs(viewer, im.name, ann.layers[im.name][0][0], {"prob": prob, "class_prob": class_prob}, 0.5, ["upper", "lower"])
    layer = viewer.layers[layer_name(im.name, CLASSES)]
    assert np.array_equal(layer.data, labels) and list(layer.features["class"]) == ["background", "upper", "lower"]
    train.settings.method.setCurrentText("genseg")
    assert not train.start_training()  # per class with a whole-lesion method: refused, the dock stays usable
    train.shutdown()
