"""One writer at a time on a run or a study folder, and the others told who holds it."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from test_study import paint, volume
from test_training import config, phantom_study, train

from napari_weakseg.errors import InputError
from napari_weakseg.locks import FolderInUse, folder_lock, in_use
from napari_weakseg.study import Study, load_study, save_study
from napari_weakseg.training.events import Failed


def hold_in_another_process(folder, what: str) -> subprocess.Popen:
    """A second process that takes the folder's lock and waits (a real OS-level lock, not a flag)."""
    code = textwrap.dedent(f"""
        import sys, time
        from napari_weakseg.locks import folder_lock
        with folder_lock({str(folder)!r}, {what!r}):
            print("held", flush=True)
            sys.stdin.readline()
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def release(proc: subprocess.Popen) -> None:
    proc.stdin.write("\n")
    proc.stdin.close()
    proc.wait(timeout=30)


def test_a_second_training_run_into_one_folder_is_refused_and_told_who(tmp_path):
    study, _ = phantom_study()
    run = tmp_path / "run"
    other = hold_in_another_process(run, "training genseg")
    try:
        assert in_use(run)
        result, rec = train(study, run, config(steps=1))
        assert isinstance(result, Failed) and "in use by training genseg (pid" in result.message
        assert not (run / "metrics.jsonl").exists() and not (run / "last.pt").exists()  # nothing written there
    finally:
        release(other)
    assert not in_use(run)
    result, _ = train(study, run, config(steps=1))
    assert not isinstance(result, Failed), result
    assert not (run / ".weakseg-lock").exists()  # released and gone


def test_a_study_being_saved_elsewhere_is_not_written(tmp_path):
    study, _ = phantom_study()
    folder = save_study(study, tmp_path / "study")
    other = hold_in_another_process(folder, "saving a study")
    try:
        with pytest.raises(FolderInUse, match="in use by saving a study"):
            save_study(study)
    finally:
        release(other)
    save_study(study)


def test_two_viewers_of_one_study_never_erase_each_others_edits(tmp_path):
    """The reported loss: viewer B's save rolled back viewer A's tags and paint."""
    study = Study()
    study.add_image(volume(), name="Flair")
    folder = save_study(study, tmp_path / "study")
    a, b = load_study(folder), load_study(folder)
    paint(a, 0, 2)
    save_study(a)
    paint(b, 0, 4)
    with pytest.raises(InputError, match="another program saved this study since it was opened here"):
        save_study(b)
    assert load_study(folder).images[0].mask[2].any()  # A's paint is still there
    save_study(b, tmp_path / "b-copy")  # B keeps its edits under another name
    assert load_study(tmp_path / "b-copy").images[0].mask[4].any()
    paint(a, 0, 5)
    save_study(a)  # A, the last to save here, goes on saving


def test_the_lock_is_released_on_error(tmp_path):
    with pytest.raises(RuntimeError), folder_lock(tmp_path / "f", "x"):
        raise RuntimeError("boom")
    assert not in_use(tmp_path / "f") and json.dumps(sorted(p.name for p in (tmp_path / "f").iterdir())) == "[]"
