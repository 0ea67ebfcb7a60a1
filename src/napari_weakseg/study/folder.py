"""The study folder: a versioned JSON manifest plus NIfTI files, saved atomically.

Layout (documented in docs/study-format.md)::

    STUDY/study.json                   manifest (schema_version, tags, annotation state)
    STUDY/images/<name>.nii.gz         the image, channels as a 4th axis; written once
    STUDY/masks/<name>.r<rev>.nii.gz   sparse masks; a new revision per save

A save writes new files under new names, then replaces ``study.json`` in one
atomic rename, then deletes the files of its own that the new manifest no longer
refers to (never another file, never through a symbolic link). A crash at any
point leaves the previous or the new study, never a mix.

A study folder is untrusted input: every path its manifest names must be a plain
relative path that resolves inside the folder (no absolute path, no ``..``, no
symbolic link leading out), and every image name a plain file name; anything
else is refused on load with a one-line error.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np

from .. import __version__
from ..atomic import remove_stale_temporaries, write_json_atomic
from ..errors import InputError, SchemaVersionError
from ..io.case import Volume, as_label_dtype
from ..io.nifti import is_nifti_path, read_nifti, spacing_from_header, write_nifti
from ..io.orientation import header_is_oriented, is_oriented
from ..locks import LOCK_FILES, folder_lock
from .halves import HalfSplit
from .model import Study, StudyImage, Tag, check_classes, safe_name

FORMAT = "napari-weakseg study"
SCHEMA_VERSION = 2  # 2: half-slice tags (``split``, ``half_tags``); 1 is read as a study without halves
READABLE_SCHEMAS = (1, 2)
MANIFEST = "study.json"
SUBFOLDERS = ("images", "masks")
INCOMPLETE = ".weakseg-incomplete"  # present while a first save into a folder runs: a kill leaves it behind


def save_study(study: Study, folder: str | os.PathLike | None = None) -> Path:
    """Save ``study`` to ``folder`` (default: ``study.folder``) atomically; returns the folder. One writer at a
    time (the folder's lock), and never over a manifest that another program saved since this study was
    opened or last saved here (that would erase its edits): both are InputErrors, nothing written."""
    if folder is None and study.folder is None:
        raise InputError("the study has no folder yet; choose where to save it")
    folder = Path(folder) if folder is not None else study.folder
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{folder}: exists and is not a folder")
    existed = folder.exists()
    moving = study.folder is None or Path(study.folder).resolve() != folder.resolve()
    if moving:
        check_new_folder(folder)  # a refusal writes nothing, not even the lock
    with folder_lock(folder, "saving a study"):
        return _save_locked(study, folder, existed, moving)


def _manifest_digest(folder: Path) -> str | None:
    import hashlib

    path = folder / MANIFEST
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def _save_locked(study: Study, folder: Path, existed: bool, moving: bool) -> Path:
    if not moving and study._manifest_digest is not None and _manifest_digest(folder) != study._manifest_digest:
        raise InputError(
            f"{folder.name}: another program saved this study since it was opened here; nothing was "
            "written (saving would erase its edits). Save yours under another name to keep both."
        )
    if moving:
        check_new_folder(folder)  # again, under the lock: another writer may have saved here meanwhile
        study._files = {}
        study._saved_mask_revisions = {}
    folder.mkdir(parents=True, exist_ok=True)
    if moving:
        (folder / INCOMPLETE).write_text("a first save of a napari-weakseg study into this folder has not finished\n")
    for sub in SUBFOLDERS:
        if (folder / sub).is_symlink():
            raise InputError(f"{folder / sub}: is a symbolic link; a study writes only inside its own folder")
    edit_count = study._edit_count
    try:
        entries = _write_files(study, folder)
        manifest = {"format": FORMAT, "schema_version": SCHEMA_VERSION, "written_by": f"napari-weakseg {__version__}", "images": entries}
        if study.classes:  # lesion class names by mask label (JSON keys are text)
            manifest["classes"] = {str(k): v for k, v in study.classes.items()}
        write_json_atomic(folder / MANIFEST, manifest)
    except BaseException:
        if moving:  # a first save into this folder leaves nothing half-written behind
            _empty_folder(folder, remove=not existed)
        raise
    # only now is the new state the study on disk
    (folder / INCOMPLETE).unlink(missing_ok=True)
    study._manifest_digest = _manifest_digest(folder)
    study.folder = folder
    study._saved_count = edit_count
    study._saved_mask_revisions = {im.name: int(e["mask_revision"]) for im, e in zip(study.images, entries, strict=True)}
    _collect_garbage(folder, entries, {im.name for im in study.images} | set(study._files))  # removed images too
    return folder


def _write_files(study: Study, folder: Path) -> list[dict]:
    """Write new image files and new mask revisions; return the manifest entries."""
    entries = []
    for im in study.images:
        files = study._files.setdefault(im.name, {})
        _check_name(im.name)
        if "image" not in files or not (folder / files["image"]).is_file():
            files["image"] = f"images/{im.name}.nii.gz"
            data = im.volume.data[0] if im.volume.data.shape[0] == 1 else im.volume.data
            write_nifti(inside(folder, files["image"]), data, affine=_affine(im.volume), header=im.volume.header)
        if study._saved_mask_revisions.get(im.name) != im.mask_revision or not (folder / files.get("mask", "-")).is_file():
            files["mask"] = f"masks/{im.name}.r{im.mask_revision}.nii.gz"
            write_nifti(inside(folder, files["mask"]), im.mask, affine=_affine(im.volume), header=im.volume.header)
        entries.append(_entry(im, files))
    return entries


def _empty_folder(folder: Path, remove: bool) -> None:
    import shutil

    if remove:
        shutil.rmtree(folder, ignore_errors=True)
    elif folder.is_dir():
        for p in folder.iterdir():
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)


def load_study(folder: str | os.PathLike) -> Study:
    """Load a study folder. Raises :class:`InputError` or :class:`SchemaVersionError` with a clear reason."""
    folder = Path(folder)
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        raise InputError(f"{folder}: not a study folder (no {MANIFEST})")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"{manifest_path}: unreadable manifest ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise InputError(f"{manifest_path}: not a napari-weakseg study manifest")
    version = manifest.get("schema_version")
    if isinstance(version, bool) or version not in READABLE_SCHEMAS:  # (true == 1 in Python)
        if isinstance(version, int) and version > SCHEMA_VERSION:
            raise SchemaVersionError(
                f"{folder.name}: study schema {version} was written by a newer napari-weakseg "
                f"({manifest.get('written_by', '?')}); this version {__version__} reads schema {SCHEMA_VERSION}. Upgrade napari-weakseg."
            )
        raise SchemaVersionError(
            f"{folder.name}: study schema {version!r} is not supported (this version reads schemas {', '.join(map(str, READABLE_SCHEMAS))})"
        )
    study = Study(folder)
    study.classes = check_classes(manifest.get("classes", {}))
    try:
        for e in manifest["images"]:
            _check_name(e["name"])
            if any(im.name == e["name"] for im in study.images):
                raise InputError(f"{manifest_path}: two images are named {e['name']!r}")
            study.images.append(_image_from_entry(folder, e))
            study._files[e["name"]] = {"image": e["image_file"], "mask": e["mask_file"]}
            study._saved_mask_revisions[e["name"]] = int(e["mask_revision"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{manifest_path}: malformed manifest ({type(exc).__name__}: {exc})") from None
    study._manifest_digest = _manifest_digest(folder)
    remove_stale_temporaries(folder)
    for sub in SUBFOLDERS:
        if not (folder / sub).is_symlink():
            remove_stale_temporaries(folder / sub)
    return study


def _entry(im: StudyImage, files: dict) -> dict:
    v = im.volume
    return {
        "name": im.name,
        "image_file": files["image"],
        "mask_file": files["mask"],
        "mask_revision": im.mask_revision,
        "channels": list(v.channel_names),
        "sources": list(v.sources),
        "oriented": is_oriented(v),  # the affine gives the anatomy (views upright); false: image folders, synthetic
        "shape_zyx": list(v.shape),
        "spacing_zyx": [float(s) for s in v.spacing],
        "slice_axis": im.axis,
        "tags": "".join(Tag(t).char for t in im.tags),
        "confirmed_empty": [int(s) for s in np.flatnonzero(im.confirmed_empty)],
        "annotated": [int(s) for s in np.flatnonzero(im.annotated())],  # derived; for readers of the manifest
        **(
            {}
            if im.split is None
            else {
                "split": im.split.to_json(),
                "half_tags": "".join(Tag(t).char for t in im.half_tags.reshape(-1)),  # two per slice: half 0, half 1
            }
        ),
    }


def _image_from_entry(folder: Path, e: dict) -> StudyImage:
    data, affine, header = read_nifti(_file(folder, e["image_file"]))
    data = data[None] if data.ndim == 3 else data
    if list(data.shape[1:]) != list(e["shape_zyx"]):
        raise InputError(f"{e['image_file']}: shape {data.shape[1:]} differs from the manifest's {e['shape_zyx']}")
    sources = list(e.get("sources", []))
    oriented = e.get("oriented")
    if oriented is None:  # a manifest from before views: the study's own file says 1 even for image folders
        oriented = bool(sources) and all(is_nifti_path(s) for s in sources) and header_is_oriented(header)
    elif not isinstance(oriented, bool):
        raise InputError(f"{e['name']}: oriented must be true or false; got {oriented!r}"[:300])
    volume = Volume(data, affine, header, spacing_from_header(header), list(e["channels"]), sources, oriented)
    mask, _, _ = read_nifti(_file(folder, e["mask_file"]), labels=True)
    for key in ("mask_revision", "slice_axis"):
        if not isinstance(e[key], int) or isinstance(e[key], bool) or e[key] < 0:
            raise InputError(f"{e['name']}: {key} must be a whole number >= 0; got {e[key]!r}"[:300])
    if not isinstance(e["tags"], str):
        raise InputError(f"{e['name']}: tags must be a string of p / a / u")
    tags = np.array(["upa".index(c) for c in e["tags"]], np.uint8)
    split, half_tags = None, None
    if e.get("split") is not None:
        split = HalfSplit.from_json(e["split"])
        half_tags = np.array(["upa".index(c) for c in e["half_tags"]], np.uint8).reshape(-1, 2)
    im = StudyImage(e["name"], volume, as_label_dtype(mask), int(e["slice_axis"]), tags, None, int(e["mask_revision"]), split, half_tags)
    confirmed = e["confirmed_empty"]
    if not isinstance(confirmed, list) or not all(
        isinstance(s, int) and not isinstance(s, bool) and 0 <= s < im.n_slices for s in confirmed
    ):
        raise InputError(f"{e['name']}: confirmed_empty must list slice indices 0..{im.n_slices - 1}; got {confirmed!r}"[:300])
    im.confirmed_empty[np.asarray(confirmed, dtype=np.int64)] = True
    return im


def _check_name(name) -> None:
    """An image name is a plain file name (what ``Study.add_image`` makes): no path, no odd characters."""
    if not isinstance(name, str) or not name or safe_name(name) != name:
        raise InputError(
            f"image name {name!r} is not a plain file name (letters, digits, '.', '_', '-'); "
            "the study manifest is damaged or was edited by hand"
        )


def inside(folder: Path, rel) -> Path:
    """``folder / rel`` if ``rel`` is a plain relative path that resolves inside ``folder`` (symbolic links
    followed), else an InputError: a manifest never makes the tool read or write elsewhere."""
    if not isinstance(rel, str) or not rel:
        raise InputError(f"{folder.name}: a file path in the manifest is not a string: {rel!r}")
    parts = Path(rel).parts
    if Path(rel).is_absolute() or ".." in parts or "\\" in rel or (parts and parts[0] not in SUBFOLDERS):
        raise InputError(f"{folder.name}: the manifest names {rel!r}, outside the study's images/ and masks/; refused")
    path = folder / rel
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        raise InputError(f"{folder.name}: {rel} leads outside the study folder (a symbolic link); refused") from None
    return path


def _file(folder: Path, rel: str) -> Path:
    path = inside(folder, rel)
    if not path.is_file():
        raise InputError(f"{folder.name}: {rel} is missing; the study folder is incomplete")
    return path


def _affine(v: Volume) -> np.ndarray:
    if v.header is not None:
        return v.affine
    sz, sy, sx = v.spacing
    return np.diag([sx, sy, sz, 1.0])


def check_new_folder(folder: str | os.PathLike) -> None:
    """Refuse to write a study into a folder that holds anything (another study included). A folder left by an
    interrupted first save (its marker, no manifest) is emptied of what that save wrote, so it can run again."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{folder}: exists and is not a folder")
    if (folder / INCOMPLETE).is_file() and not (folder / MANIFEST).is_file():
        _clear_interrupted_save(folder)
    if (folder / MANIFEST).is_file():
        raise InputError(f"{folder}: already holds another study; choose an empty or new folder")
    if folder.is_dir() and any(p.name not in LOCK_FILES for p in folder.iterdir()):
        raise InputError(f"{folder}: the folder is not empty; choose an empty or new folder")


def _clear_interrupted_save(folder: Path) -> None:
    """Remove what an interrupted first save wrote (study files by their naming pattern, temporaries, the
    marker); anything else in the folder stays, and then the folder counts as not empty."""
    own = own_file_names(None)
    for sub in SUBFOLDERS:
        d = folder / sub
        if d.is_dir() and not d.is_symlink():
            remove_stale_temporaries(d)
            for p in d.iterdir():
                if own.match(f"{sub}/{p.name}") and p.is_file() and not p.is_symlink():
                    p.unlink()
            if not any(d.iterdir()):
                d.rmdir()
    remove_stale_temporaries(folder)
    (folder / INCOMPLETE).unlink(missing_ok=True)


def own_file_names(names: set[str] | None) -> re.Pattern:
    """The files a study with these image names writes: images/<name>.nii.gz and masks/<name>.r<rev>.nii.gz
    (``None``: any plain name)."""
    alternatives = "[A-Za-z0-9._-]+" if names is None else "|".join(re.escape(n) for n in sorted(names)) or "(?!)"
    return re.compile(rf"^(images/({alternatives})\.nii\.gz|masks/({alternatives})\.r[0-9]+\.nii\.gz)$")


def _collect_garbage(folder: Path, entries: list[dict], names: set[str]) -> None:
    """Delete the study's own files that the manifest no longer names (older mask revisions, removed
    images); nothing else, and nothing in a subfolder that is a symbolic link."""
    keep = {e[k] for e in entries for k in ("image_file", "mask_file")}
    own = own_file_names(names)
    for sub in SUBFOLDERS:
        d = folder / sub
        if d.is_dir() and not d.is_symlink():
            for p in d.iterdir():
                rel = f"{sub}/{p.name}"
                if rel not in keep and own.match(rel) and p.is_file() and not p.is_symlink():
                    p.unlink(missing_ok=True)
