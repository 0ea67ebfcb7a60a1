"""The package installs as a napari plugin: manifest valid, contributions present, console script works."""

import subprocess
import sys
from pathlib import Path

import napari_weakseg


def test_npe2_manifest_validates():
    npe2 = Path(sys.executable).with_name("npe2")
    result = subprocess.run([str(npe2), "validate", "napari_weakseg"], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "valid" in result.stdout + result.stderr


def test_manifest_contributions_resolve():
    from npe2 import PluginManifest

    manifest = PluginManifest.from_distribution("napari-weakseg")
    commands = {c.id: c for c in manifest.contributions.commands}
    for cmd in commands.values():  # every python_name imports
        module, _, attr = cmd.python_name.partition(":")
        assert getattr(__import__(module, fromlist=[attr]), attr)
    assert [w.display_name for w in manifest.contributions.widgets] == [
        "Tag slices and paint masks",
        "Train and inspect",
        "Review pseudo labels",
    ]
    assert {tuple(w.layer_types) for w in manifest.contributions.writers} == {("labels",), ("image",)}
    assert manifest.contributions.sample_data[0].key == "phantom"
    assert set(manifest.categories) == {"Segmentation", "Annotation"}
    menus = manifest.contributions.menus
    assert [m.submenu for m in menus["napari/layers/segment"]] == ["weakseg"]
    assert [m.command for m in menus["weakseg"]] == [
        f"napari-weakseg.{w}" for w in ("annotation_widget", "training_widget", "pseudo_review_widget")
    ]


def test_license_file_is_shipped():
    from importlib.metadata import distribution

    dist = distribution("napari-weakseg")
    assert dist.metadata["License-Expression"] == "BSD-3-Clause"
    assert (Path(__file__).parents[1] / "LICENSE").read_text().startswith("BSD 3-Clause License")


def test_console_script_version():
    script = Path(sys.executable).with_name("weakseg")
    result = subprocess.run([str(script), "--version"], capture_output=True, text=True)
    assert result.returncode == 0
    assert result.stdout.strip() == f"napari-weakseg {napari_weakseg.__version__}"


def test_the_manifests_reader_patterns_are_the_readers_suffixes():
    """One rule for which files are NIfTI: the npe2 manifest (static YAML) lists exactly io.nifti's suffixes."""
    import yaml

    import napari_weakseg
    from napari_weakseg.io.nifti import NIFTI_SUFFIXES

    manifest = yaml.safe_load((Path(napari_weakseg.__file__).parent / "napari.yaml").read_text())
    patterns = set(manifest["contributions"]["readers"][0]["filename_patterns"])
    assert {p.lower() for p in patterns} == {f"*{s}" for s in NIFTI_SUFFIXES}
