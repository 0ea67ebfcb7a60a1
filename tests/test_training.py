"""The Trainer on a tiny synthetic study: learning, events, stop/resume, checkpoints, input errors."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from napari_weakseg.data import make_phantom
from napari_weakseg.data.slices import Normaliser, split_validation, study_slices
from napari_weakseg.errors import InputError
from napari_weakseg.inference import TrainedModel
from napari_weakseg.io.case import Volume
from napari_weakseg.study import Study, Tag
from napari_weakseg.study.build import keep_masks, tags_from_masks
from napari_weakseg.training.checkpoint import load_tensors
from napari_weakseg.training.events import Checkpointed, Failed, Finished, Progress, Started, Validated
from napari_weakseg.training.trainer import TrainConfig, Trainer, resolve_device

TINY = {
    "net": {"base": 4, "depth": 2, "max_channels": 16, "code_channels": 8, "unique_channels": 4},
    "input_size": 32,
    "batch_size": 2,
    "disc_base": 4,
    "augment": False,
}
ANNOTATED = [4, 5, 6, 9]  # the phantom's slices with lesion pixels (seed 1)


def phantom_study(seed: int = 1, channels: int = 1) -> tuple[Study, object]:
    case = make_phantom(shape=(12, 32, 32), channels=channels, seed=seed)
    study = Study()
    im = study.add_image(case.volume, name="phantom", mask=case.mask)
    tags_from_masks(im)
    return study, case


def config(method: str = "seg-only", steps: int = 3, **kw) -> TrainConfig:
    overrides = {**TINY, **kw.pop("overrides", {})}
    kw.setdefault("val_fraction", 0.0)
    return TrainConfig(method=method, steps=steps, device="cpu", overrides=overrides, **kw)


class Recorder:
    """on_event callback that keeps the events; optionally stops the trainer at a step."""

    def __init__(self, stop_at: int | None = None):
        self.events, self.stop_at, self.trainer = [], stop_at, None

    def __call__(self, event):
        self.events.append(event)
        if self.stop_at is not None and isinstance(event, Progress) and event.step == self.stop_at:
            self.trainer.stop()

    def of(self, kind):
        return [e for e in self.events if isinstance(e, kind)]


def train(study, run_dir, cfg, stop_at=None, **kw) -> tuple[Finished | Failed, Recorder]:
    rec = Recorder(stop_at)
    rec.trainer = Trainer(study, run_dir, cfg, on_event=rec, **kw)
    return rec.trainer.run(), rec


def test_seg_only_overfits_a_tiny_study(tmp_path):
    study, case = phantom_study()
    assert list(np.flatnonzero(study.images[0].annotated())) == ANNOTATED
    # lr 1e-2, no augmentation: > 0.97 after 80 steps for trainer seeds 0-5 (lr 3e-3 needs ~200 steps for every seed)
    result, rec = train(study, tmp_path / "run", config(steps=120, overrides={"lr": 1e-2, "batch_size": 4}))
    assert isinstance(result, Finished), result
    assert result.reason == "completed" and result.step == 120
    model = TrainedModel.load(tmp_path / "run")
    prob = model.predict_volume(case.volume.data)["prob"]
    assert prob.shape == case.mask.shape and prob.dtype == np.float32
    pred, truth = prob[ANNOTATED] > 0.5, case.mask[ANNOTATED] > 0
    dice = 2 * (pred & truth).sum() / (pred.sum() + truth.sum())
    assert dice > 0.9, dice
    # the loss went down
    seg = [e.losses["seg"] for e in rec.of(Progress)]
    assert np.mean(seg[-10:]) < 0.5 * np.mean(seg[:10])


def test_event_stream_and_metrics_file(tmp_path):
    study, _ = phantom_study()
    run = tmp_path / "run"
    result, rec = train(study, run, config("genseg", steps=4, val_fraction=0.5, val_every=2, checkpoint_every=2))
    assert isinstance(result, Finished) and result.reason == "completed" and result.step == 4
    ev = rec.events
    assert isinstance(ev[0], Started) and ev[-1] is result
    started = ev[0]
    assert (started.method, started.device, started.total_steps, started.world_size, started.resumed_from) == ("genseg", "cpu", 4, 1, 0)
    assert started.val_slices == 2 and started.train_slices == 10  # 2 of 4 annotated held out; 12 tagged slices
    assert "copied" in started.note
    progress = rec.of(Progress)
    assert [p.step for p in progress] == [1, 2, 3, 4]
    for p in progress:
        assert p.total_steps == 4 and p.pairs_per_s > 0 and p.eta_s >= 0
        assert {"generator_loss", "discriminator_loss", "adv", "rec", "lat", "cyc", "seg", "disc"} <= set(p.losses)
        assert all(np.isfinite(v) for v in p.losses.values())
    assert progress[-1].eta_s == 0
    assert [v.step for v in rec.of(Validated)] == [2, 4]
    assert rec.of(Validated)[0].improved and 0 <= rec.of(Validated)[0].dice <= 1
    assert [c.step for c in rec.of(Checkpointed)] == [2, 4]
    assert Path(rec.of(Checkpointed)[-1].path) == run / "last.pt"
    kinds = [type(e).__name__ for e in ev]
    assert kinds[:4] == ["Started", "Progress", "Progress", "Validated"]
    assert result.best_dice == max(v.dice for v in rec.of(Validated))
    # metrics.jsonl: one JSON line per event, same order
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [line["event"] for line in lines] == [e.kind for e in ev]
    assert lines[0]["event"] == "started" and lines[0]["world_size"] == 1
    assert lines[1]["losses"]["generator_loss"] == pytest.approx(progress[0].losses["generator_loss"])
    assert {"pairs_per_s", "eta_s", "step", "epoch"} <= set(lines[1])
    finished = {"event": "finished", "step": 4, "reason": "completed", "best_dice": result.best_dice, "run_dir": str(run)}
    assert {k: lines[-1][k] for k in finished} == finished and lines[-1]["peak_memory_mb"] > 50  # the process's peak RSS
    assert 0 < [line for line in lines if line["event"] == "progress"][-1]["elapsed_s"] < 600  # progress carries wall time
    info = json.loads((run / "run.json").read_text())
    assert info["method"] == "genseg" and info["state"]["step"] == 4
    for name in ("last.pt", "best.pt"):
        assert "model" in load_tensors(run / name)
    assert not [p for p in run.iterdir() if p.name not in {"run.json", "metrics.jsonl", "last.pt", "best.pt", "train.log"}]
    model = TrainedModel.load(run)
    out = model.predict_volume(study.images[0].volume.data)
    assert set(out) == {"prob", "healthy", "residual"}
    assert out["healthy"].shape == out["residual"].shape == (1, 12, 32, 32)


def test_stop_and_resume(tmp_path):
    study, _ = phantom_study()
    run = tmp_path / "run"
    result, rec = train(study, run, config(steps=50), stop_at=3)
    assert isinstance(result, Finished)
    assert (result.step, result.reason) == (3, "stopped")
    assert [p.step for p in rec.of(Progress)] == [1, 2, 3]
    ckpt = load_tensors(run / "last.pt")
    assert ckpt["step"] == 3
    assert TrainedModel.load(run, which="last").method is not None
    json.loads((run / "run.json").read_text())
    weights_at_3 = ckpt["model"]

    # resuming a run that has done its steps does nothing but reload: the weights are those saved
    result, rec = train(study, run, config(steps=3), resume=True)
    assert (result.step, result.reason) == (3, "completed") and rec.of(Started)[0].resumed_from == 3
    assert not rec.of(Progress)
    same = load_tensors(run / "best.pt")["model"]
    assert all(torch.equal(weights_at_3[k], same[k]) for k in weights_at_3)

    result, rec = train(study, run, config(steps=5), resume=True)
    assert isinstance(result, Finished), result
    assert (result.step, result.reason) == (5, "completed")
    assert rec.of(Started)[0].resumed_from == 3 and rec.of(Started)[0].total_steps == 5
    assert [p.step for p in rec.of(Progress)] == [4, 5]
    ckpt = load_tensors(run / "last.pt")
    assert ckpt["step"] == 5
    # the optimiser state came back too: Adam has counted 5 steps, not 2
    adam_steps = {float(s["step"]) for s in ckpt["optim"]["main"]["state"].values()}
    assert adam_steps == {5.0}
    lines = [json.loads(line)["event"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert lines.count("started") == 3 and lines.count("finished") == 3

    # resuming with another method is refused with a clear message
    result, _ = train(study, run, config("ae", steps=8), resume=True)
    assert isinstance(result, Failed) and "cannot resume" in result.message


def test_resume_without_a_previous_run_is_refused(tmp_path):
    study, _ = phantom_study()
    result, _ = train(study, tmp_path / "empty", config(steps=2), resume=True)
    assert isinstance(result, Failed) and "no checkpoint to resume" in result.message
    assert not (tmp_path / "empty" / "last.pt").exists()


def test_stop_before_the_first_step(tmp_path):
    study, _ = phantom_study()
    rec = Recorder()
    trainer = Trainer(study, tmp_path / "run", config(steps=5), on_event=rec)
    trainer.stop()
    result = trainer.run()
    assert (result.step, result.reason) == (0, "stopped")
    assert not (tmp_path / "run" / "last.pt").exists()


class Plain:
    """Any object of a class of ours: not loadable with weights_only."""


class Evil:
    """Unpickling this object would create a file (code execution)."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    study, _ = phantom_study()
    run = tmp_path_factory.mktemp("trained") / "run"
    result, _ = train(study, run, config(steps=2))
    assert isinstance(result, Finished)
    return run


def test_checkpoints_are_plain_tensors(trained_run):
    for name in ("last.pt", "best.pt"):
        obj = torch.load(trained_run / name, map_location="cpu", weights_only=True)
        assert isinstance(obj["model"], dict) and all(isinstance(v, torch.Tensor) for v in obj["model"].values())


@pytest.mark.parametrize("damage", ["truncate", "garbage", "pickle", "object", "not-a-dict", "no-model", "missing"])
def test_corrupted_checkpoint(trained_run, tmp_path, damage):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    (run / "best.pt").unlink()  # TrainedModel.load falls back to last.pt
    last = run / "last.pt"
    marker = tmp_path / "pwned"
    if damage == "truncate":
        data = last.read_bytes()
        last.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        last.write_bytes(np.random.default_rng(0).bytes(3000))
    elif damage == "pickle":
        buf = io.BytesIO()
        torch.save({"model": {"w": torch.zeros(2)}, "payload": Evil(marker)}, buf)
        last.write_bytes(buf.getvalue())
    elif damage == "object":  # an arbitrary Python object next to real weights
        torch.save({"model": torch.load(trained_run / "last.pt", weights_only=True)["model"], "extra": Plain()}, last)
    elif damage == "not-a-dict":
        torch.save([torch.zeros(2)], last)
    elif damage == "no-model":
        torch.save({"step": 3}, last)
    else:
        last.unlink()
    expected = {
        "missing": "checkpoint missing",
        "not-a-dict": "no model weights",
        "no-model": "no model weights",
        "pickle": "never loads those",
        "object": "never loads those",
    }.get(damage, "not a readable napari-weakseg checkpoint")
    with pytest.raises(InputError, match=expected) as info:
        load_tensors(last)
    assert "\n" not in str(info.value) and len(str(info.value)) < 300
    assert "weights_only" not in str(info.value) and "False" not in str(info.value)  # never the advice to unpickle
    with pytest.raises(InputError, match=expected):
        TrainedModel.load(run)
    assert not marker.exists()  # nothing in the file was executed


def test_weights_that_do_not_fit(trained_run, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    torch.save({"model": {"encoder.stem.1.bias": torch.zeros(3)}}, run / "best.pt")
    with pytest.raises(InputError, match="do not fit"):
        TrainedModel.load(run)
    (run / "run.json").write_text("{not json")
    with pytest.raises(InputError, match="unreadable"):
        TrainedModel.load(run)
    with pytest.raises(InputError, match="not a training run"):
        TrainedModel.load(tmp_path)


def test_mismatched_channels_at_prediction(trained_run):
    model = TrainedModel.load(trained_run)
    assert model.channels == 1
    with pytest.raises(InputError, match="1 channel"):
        model.predict_volume(np.zeros((2, 4, 32, 32), np.float32))


def test_absence_slices_needed_by_genseg_not_seg_only(tmp_path):
    study, _ = phantom_study()
    im = study.images[0]
    study.set_tags(0, np.flatnonzero(im.tags == Tag.ABSENCE), Tag.UNKNOWN)
    assert study.counts()["absence"] == 0
    for method in ("genseg", "genseg-sepdec", "ae", "mean-teacher"):
        with pytest.raises(InputError, match="absence"):
            Trainer(study, tmp_path / method, config(method, steps=1))
    result, _ = train(study, tmp_path / "seg", config("seg-only", steps=2))
    assert isinstance(result, Finished) and result.step == 2


def test_annotations_needed(tmp_path):
    study, _ = phantom_study()
    keep_masks(study, 0)
    assert study.counts()["annotated"] == 0 and study.counts()["presence"] > 0
    for method in ("seg-only", "genseg"):
        with pytest.raises(InputError, match="annotated"):
            Trainer(study, tmp_path / method, config(method, steps=1))


def test_unknown_method_and_empty_study(tmp_path):
    study, _ = phantom_study()
    with pytest.raises(InputError, match="unknown method"):
        Trainer(study, tmp_path / "r", config("unet"))
    with pytest.raises(InputError, match="no images"):
        Trainer(Study(), tmp_path / "r", config())
    with pytest.raises(InputError, match="unknown option"):
        Trainer(study, tmp_path / "r", config(overrides={"learning_rate": 1.0}))


def test_the_study_is_snapshotted(tmp_path):
    study, _ = phantom_study()
    trainer = Trainer(study, tmp_path / "run", config(steps=2))
    images, masks = trainer.train_set.images.clone(), trainer.train_set.masks.clone()
    n = len(trainer.train_set)
    # edit everything after the Trainer was built
    im = study.images[0]
    im.volume.data[:] = 0
    im.mask[:] = 0
    im.mask_changed()
    study.set_tags(0, range(im.n_slices), Tag.UNKNOWN)
    study.add_image(Volume(np.ones((1, 4, 32, 32), np.float32)), name="late")
    rec = Recorder()
    trainer.on_event = rec
    result = trainer.run()
    assert isinstance(result, Finished) and result.step == 2
    assert rec.of(Started)[0].train_slices == n == 12
    assert torch.equal(trainer.train_set.images, images) and torch.equal(trainer.train_set.masks, masks)
    assert float(masks.sum()) > 0
    assert json.loads((tmp_path / "run" / "run.json").read_text())["study"]["images"] == ["phantom"]


def test_early_stopping(tmp_path):
    study, _ = phantom_study()
    # lr 0 and no spectral-norm power iterations: the validation Dice cannot improve after the first
    cfg = config(steps=50, val_fraction=0.5, val_every=1, patience=2, overrides={"lr": 0.0, "net": {**TINY["net"], "spectral_norm": False}})
    result, rec = train(study, tmp_path / "run", cfg)
    assert isinstance(result, Finished), result
    assert (result.step, result.reason) == (3, "early-stopped")
    assert [v.improved for v in rec.of(Validated)] == [True, False, False]
    assert load_tensors(tmp_path / "run" / "last.pt")["step"] == 3
    assert load_tensors(tmp_path / "run" / "best.pt")["step"] == 1


def test_resolve_device(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(InputError, match="cuda"):
        resolve_device("cuda")
    with pytest.raises(InputError, match="cuda"):
        resolve_device("cuda:1")
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in ("cpu", "mps")


def test_validation_split_keeps_annotated_slices_for_training(tmp_path):
    study = Study()
    for seed, n_keep in ((1, 4), (2, 2), (3, 1)):
        case = make_phantom(shape=(12, 32, 32), channels=1, seed=seed)
        im = study.add_image(case.volume, name=f"p{seed}", mask=case.mask)
        tags_from_masks(im)
        ann = np.flatnonzero(im.annotated())
        for s in ann[n_keep:]:  # leave n_keep annotated slices on this image
            im.mask[s] = 0
        im.mask_changed()
        assert im.annotated().sum() == n_keep
    slices = study_slices(study, Normaliser.fit(study), 32, 4)
    for fraction in (0.2, 0.5, 0.99):
        train_set, val = split_validation(slices, fraction, seed=0)
        assert len(train_set) + len(val) == len(slices)
        for img in range(3):
            n_train = sum(1 for r, (i, _) in enumerate(train_set.source) if i == img and bool(train_set.annotated[r]))
            assert n_train >= 1, (fraction, img)
        assert all(bool(a) for a in val.annotated)  # only annotated slices are held out
        assert {i for i, _ in val.source} <= {0, 1}  # the image with one annotated slice keeps it
    assert split_validation(slices, 0.0)[1] is None
    trainer = Trainer(study, tmp_path / "run", config(steps=1, val_fraction=0.99))
    for img in range(3):
        assert any(i == img and bool(a) for (i, _), a in zip(trainer.train_set.source, trainer.train_set.annotated, strict=False))
    assert len(trainer.val_set) == 3 + 1


def test_prepare_hook_runs_once_before_the_first_step(tmp_path, monkeypatch):
    from napari_weakseg.methods.baselines import SegOnly

    calls = []

    def prepare(self, slices, pixel_mm=None, aux=None):
        calls.append((len(slices), pixel_mm, self.training, aux))

    monkeypatch.setattr(SegOnly, "prepare", prepare)
    study, _ = phantom_study()
    result, rec = train(study, tmp_path / "run", config(steps=2))
    assert isinstance(result, Finished)
    trainer = rec.trainer
    # phantom: 1.5 mm pixels, 32 px slices resized to 32 px
    assert calls == [(len(trainer.train_set), pytest.approx(1.5), True, None)]  # seg-only asks for no auxiliary masks
    assert json.loads((tmp_path / "run" / "run.json").read_text())["study"]["pixel_mm"] == pytest.approx(1.5)
    assert trainer.pixel_mm == pytest.approx(1.5)


def test_a_run_that_stopped_before_its_first_checkpoint_starts_again(tmp_path):
    """No dead end: run.json and metrics.jsonl without weights (a kill, Ctrl-C or a config error after start-up);
    both a plain rerun and --resume start the run again, and an interrupted write's temporaries are removed."""
    study, _ = phantom_study()
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"method": "seg-only"}))
    (run / "metrics.jsonl").write_text('{"event": "started"}\n')
    (run / ".weakseg-tmp-abc").write_bytes(b"x" * 100)
    for resume in (True, False):
        result, rec = train(study, run, config(steps=2), resume=resume)
        assert isinstance(result, Finished), result
        assert "starts again from step 0" in rec.of(Started)[0].note
        assert not list(run.glob(".weakseg-tmp-*")) and (run / "last.pt").is_file()
        lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
        assert [e["event"] for e in lines].count("started") == 1  # the old run's lines are gone
        (run / "last.pt").unlink(), (run / "best.pt").unlink(missing_ok=True)
    result, rec = train(study, tmp_path / "fresh", config(steps=1))
    assert "starts again" not in rec.of(Started)[0].note


def test_metrics_are_read_safely_while_a_run_appends_to_them(tmp_path):
    from napari_weakseg.bench.report import read_curve
    from napari_weakseg.training.events import read_event_lines

    path = tmp_path / "metrics.jsonl"
    lines = [json.dumps({"event": "progress", "step": s, "losses": {"seg": 1.0 / s}}) for s in (1, 2)]
    path.write_text("\n".join(lines) + "\n" + '{"event": "progress", "st')  # the writer is mid-line
    assert [e["step"] for e in read_event_lines(path)] == [1, 2]
    assert read_curve(path)["steps"] == [1, 2]
    path.write_text(lines[0] + "\n" + "\x00\x00garbage\n" + lines[1] + "\n")  # a torn line from a crash
    assert [e["step"] for e in read_event_lines(path)] == [1, 2]
    assert read_event_lines(tmp_path / "none.jsonl") == []


def test_non_finite_weights_are_never_saved_or_loaded(trained_run, tmp_path):
    """NaN weights would write NaN maps with exit 0: refused both ways, naming the tensor."""
    from napari_weakseg.training.checkpoint import save_tensors

    state = load_tensors(trained_run / "last.pt")
    name = next(k for k, v in state["model"].items() if v.is_floating_point())
    state["model"][name] = torch.full_like(state["model"][name], float("nan"))
    with pytest.raises(InputError, match=f"non-finite weights .* in {re.escape(name)}"):
        save_tensors(tmp_path / "bad.pt", state)
    assert not (tmp_path / "bad.pt").exists()
    torch.save(state, tmp_path / "bad.pt")  # written by something else
    with pytest.raises(InputError, match="non-finite weights"):
        load_tensors(tmp_path / "bad.pt")


def test_a_damaged_normaliser_and_nan_intensities_are_refused():
    with pytest.raises(InputError, match="normaliser is damaged"):
        Normaliser.from_dict({"low": [float("nan")], "high": [1.0]})
    with pytest.raises(InputError, match="normaliser is damaged"):
        Normaliser.from_dict({"low": [], "high": []})
    study, _ = phantom_study()
    study.images[0].volume.data[0, 0, 0, 0] = np.nan
    study.images[0].volume.data[0, 1] = np.inf
    with pytest.raises(InputError, match="non-finite intensities"):
        Normaliser.fit(study)


def test_a_retrain_that_fits_the_annotated_slices_worse_keeps_its_starting_weights(tmp_path):
    """No validation split: best.pt is the checkpoint with the best Dice on the annotated training slices, the
    warm start included, so a retrain that collapses (here: a learning rate of 1) does not replace the model."""
    from napari_weakseg.training.events import kept_note

    study, _ = phantom_study()
    first, _ = train(study, tmp_path / "first", config(steps=60, val_every=30, overrides={"lr": 1e-2, "batch_size": 4}))
    assert isinstance(first, Finished) and first.fit_step == 60 and first.fit_dice > 0.5 and not kept_note(first)
    start = load_tensors(tmp_path / "first" / "best.pt")
    result, rec = train(
        study, tmp_path / "retrain", config(steps=20, val_every=10, overrides={"lr": 1.0}), init_weights=tmp_path / "first" / "best.pt"
    )
    checks = [v for v in rec.of(Validated) if v.on == "annotated"]
    assert [v.step for v in checks] == [0, 10, 20]
    assert checks[0].dice == pytest.approx(first.fit_dice) and max(v.dice for v in checks[1:]) < checks[0].dice
    assert (result.fit_step, result.fit_dice) == (0, checks[0].dice) and result.best_dice is None
    kept = load_tensors(tmp_path / "retrain" / "best.pt")
    assert kept["step"] == 0 and all(torch.equal(kept["model"][k], start["model"][k]) for k in start["model"])
    assert "keeps the starting weights" in kept_note(result)
    assert "keeps the starting weights" in (tmp_path / "retrain" / "train.log").read_text()
    from napari_weakseg.study.runs import run_summary

    assert "keeps step 0 (fits the annotated slices best)" in run_summary(tmp_path / "retrain")  # the dock's run list
    assert "keeps step" not in run_summary(tmp_path / "first")
    last = load_tensors(tmp_path / "retrain" / "last.pt")
    assert last["step"] == 20 and not all(torch.equal(last["model"][k], start["model"][k]) for k in start["model"])


def test_a_warm_start_trains_at_warm_lr_times_the_learning_rate_and_keeps_it_on_resume(tmp_path):
    """Retrain (--init) fine-tunes at ``warm_lr`` times the method's learning rate; a fresh run at the full rate;
    a warm-started run resumed after a stop goes on at the warm rate (the factor travels in last.pt)."""

    def lrs(run):
        optim = load_tensors(run / "last.pt")["optim"]
        return sorted({round(g["lr"], 9) for o in optim.values() for g in o["param_groups"]})

    study, _ = phantom_study()
    lr = {"lr": 1e-2}
    train(study, tmp_path / "first", config(steps=2, overrides=lr))
    assert lrs(tmp_path / "first") == [1e-2]
    init = tmp_path / "first" / "best.pt"
    result, _ = train(study, tmp_path / "warm", config(steps=4, overrides=lr, warm_lr=0.25), stop_at=2, init_weights=init)
    assert result.reason == "stopped" and lrs(tmp_path / "warm") == [2.5e-3]
    result, _ = train(study, tmp_path / "warm", config(steps=4, overrides=lr, warm_lr=0.25), resume=True)
    assert result.step == 4 and lrs(tmp_path / "warm") == [2.5e-3]
    for bad in (0, 1.5):
        with pytest.raises(InputError, match="warm_lr"):
            Trainer(study, tmp_path / f"bad{bad}", config(warm_lr=bad), init_weights=init)


def test_a_run_built_before_the_preset_changed_can_be_resumed_and_warm_started(tmp_path):
    # a run saved when genseg's quick head had no 3x3 conv (seg_head_kernel 0): its weights do not fit today's
    # preset, so a resume or a retrain keeps the network of the run it continues (run.json's net)
    study, _ = phantom_study()
    old = tmp_path / "old"
    result, _ = train(study, old, config("genseg", steps=2, overrides={"net": {**TINY["net"], "seg_head_kernel": 0}}))
    assert isinstance(result, Finished)
    now = config("genseg", steps=3, overrides={"input_size": 48})  # e.g. the dock's size for these slices, changed since
    fresh = Trainer(study, tmp_path / "fresh", now).method_config
    assert fresh.net.seg_head_kernel == 3 and fresh.input_size == 48
    for run, kw in ((tmp_path / "warm", {"init_weights": old / "best.pt"}), (old, {"resume": True})):
        result, _ = train(study, run, now, **kw)
        assert isinstance(result, Finished) and result.step == 3, result
        mc = json.loads((run / "run.json").read_text())["method_config"]
        assert mc["net"]["seg_head_kernel"] == 0 and mc["input_size"] == 32  # the continued run's network and size


def test_without_the_fit_check_best_is_the_last_step(tmp_path):
    study, _ = phantom_study()
    result, rec = train(study, tmp_path / "run", config(steps=4, val_every=2, keep_best_fit=False))
    assert result.fit_step is None and not rec.of(Validated)
    assert load_tensors(tmp_path / "run" / "best.pt")["step"] == 4
