"""The Trainer: one training loop for every method, used by the GUI, the CLI and the benchmarks.

It snapshots the study at start (later edits do not touch a running job), reports
events through a callback, validates on held-out annotated slices, keeps the best
checkpoint, stops early, honours ``stop()`` within one step, and resumes from the
last complete checkpoint. Under ``torchrun`` it trains with DistributedDataParallel.
"""

from __future__ import annotations

import json
import math
import os
import threading
import traceback
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ..data.augment import augment, random_crop
from ..data.shape_prior import prior_masks
from ..data.slices import Normaliser, PairSampler, SliceSet, hold_out_images, slice_pixel_mm, split_validation, study_slices
from ..errors import InputError, WeaksegError
from ..locks import FolderInUse, folder_lock, in_use
from ..log import log_event, run_log
from ..methods import METHODS, build_method, merge, method_preset
from ..study.model import Study
from .checkpoint import clear_unstarted_run, has_checkpoint, load_tensors, read_run_info, save_tensors, write_run_info
from .compile_trial import compile_trial
from .distributed import DistInfo, all_reduce_mean, setup_distributed, teardown_distributed, wrap_ddp
from .events import Checkpointed, Event, Failed, Finished, Preview, Progress, Started, Validated
from .pace import Pace
from .run_setup import (
    TrainConfig,
    check_train_config,
    continued_architecture,
    peak_memory_mb,
    resolve_device,
    seed_everything,
    set_lr_factor,
)
from .step_speed import StepRunner, choose_threads, compile_cache_dir, decide_compile, resolve_precision


class Trainer:
    def __init__(
        self,
        study: Study,
        run_dir: str | Path,
        config: TrainConfig,
        on_event: Callable[[Event], None] | None = None,
        resume: bool = False,
        init_weights: str | Path | None = None,
        started_from: str | None = None,
    ):
        """``started_from``: the run this one continues (resumed into this new folder, or warm-started from its
        weights), recorded in run.json."""
        check_train_config(config)
        self.started_from = started_from
        self.config = config
        self.run_dir = Path(run_dir)
        self.on_event = on_event
        self.resume = resume
        self.init_weights = Path(init_weights) if init_weights else None
        self._stop = threading.Event()
        self._preview_request: tuple[int, int] | None = None
        self.dist: DistInfo = setup_distributed()
        if config.method not in METHODS:
            raise InputError(f"unknown method {config.method!r}; choose one of: {', '.join(METHODS)}")
        if not study.images:
            raise InputError("the study has no images")
        self.method_cls = METHODS[config.method]
        channels = study.images[0].volume.data.shape[0]
        self.method_config = merge(method_preset(config.method, config.preset, channels), config.overrides)
        continued = self.run_dir if resume else (self.init_weights.parent if self.init_weights else None)
        self.method_config = continued_architecture(self.method_config, continued, config.method)
        self.device = self.dist.device if self.dist.world > 1 else resolve_device(config.device)
        # a run in this folder that stopped before its first checkpoint has nothing to continue: start it again
        if self.dist.is_main:  # (not while another process trains there: run() will refuse)
            self.restarted = not in_use(self.run_dir) and clear_unstarted_run(self.run_dir)
        else:  # the main rank decides; the others follow (it clears the folder)
            self.restarted = self.resume and not has_checkpoint(self.run_dir)
        if self.restarted:
            self.resume = False
        self._snapshot(study)

    # --- data ------------------------------------------------------------------
    def _snapshot(self, study: Study) -> None:
        """Copy what training needs now; later edits of the study do not affect this run."""
        mc = self.method_config
        if self.resume and (self.run_dir / "run.json").is_file():
            self.normaliser = Normaliser.from_dict(read_run_info(self.run_dir)["normaliser"])
        else:
            self.normaliser = Normaliser.fit(study, seed=self.config.seed, clip=mc.clip_inputs, kind=mc.normalisation)
        labels = self.method_cls.label_masks
        slices = study_slices(study, self.normaliser, mc.input_size, 2**mc.net.depth, labels=labels, flip_halves=mc.flip_halves)
        counts = study.counts()
        if labels and mc.net.n_classes > 1 and int(slices.masks.max()) > mc.net.n_classes:  # K = 1: any label > 0
            raise InputError(
                f"the masks have label {int(slices.masks.max())}, but method {self.config.method} is set up for labels "
                f"0..{mc.net.n_classes}; set net.n_classes to the number of lesion classes"
            )
        if self.method_cls.needs_absence and not int((~slices.presence).sum()):
            raise InputError(f"method {self.config.method} needs absence slices, and the study has none; tag healthy slices absence")
        if self.method_cls.needs_annotations and not int((slices.presence & slices.annotated).sum()):
            raise InputError(f"method {self.config.method} needs annotated slices: paint the lesion on some presence slices")
        crop = mc.train_crop
        if crop and not self.method_cls.trains_on_crops:
            raise InputError(f"method {self.config.method} does not train on crops (train_crop): it draws at the slice size")
        if crop and min(slices.images.shape[-2:]) < crop:
            h, w = slices.images.shape[-2:]
            raise InputError(f"option train_crop = {crop} does not fit the training slices ({h}x{w}); choose at most {min(h, w)}")
        if self.config.val_images:
            self.train_set, self.val_set = hold_out_images(slices, [study.index_of(n) for n in self.config.val_images])
        else:
            self.train_set, self.val_set = split_validation(slices, self.config.val_fraction, self.config.seed)
        self.pixel_mm = slice_pixel_mm(study, mc.input_size)
        self.study_info = {
            "folder": str(study.folder) if study.folder else None,
            "images": [im.name for im in study.images],
            "channels": list(study.images[0].volume.channel_names),
            "counts": counts,
            "input_shape_hw": list(slices.images.shape[-2:]),
            "pixel_mm": self.pixel_mm,
            **({"classes": study.class_names(mc.net.n_classes)} if labels and mc.net.n_classes > 1 else {}),
        }
        # for previews: the raw slices are read from this snapshot, not the live study
        self._volumes = [im.volume.data.copy() for im in study.images]
        self._axes = [im.axis for im in study.images]
        self.on_halves = any(im.split is not None for im in study.images)

    # --- control ------------------------------------------------------------------
    def stop(self) -> None:
        """Ask the run to stop; it finishes the current step, saves, and returns."""
        self._stop.set()

    def request_preview(self, image: int, slice_index: int) -> None:
        """Emit a :class:`Preview` of this slice at the next step boundary."""
        self._preview_request = (int(image), int(slice_index))

    def _emit(self, event: Event) -> None:
        if not self.dist.is_main:
            return
        log_event(event)
        if not isinstance(event, Preview):
            with open(self.run_dir / "metrics.jsonl", "a") as fh:
                fh.write(json.dumps(event.to_json()) + "\n")
        if self.on_event is not None:
            self.on_event(event)

    # --- the loop ---------------------------------------------------------------
    def run(self) -> Finished | Failed:
        """Train to the end (or until stopped). Never raises: failures become a :class:`Failed` event.
        The main rank holds the run folder's lock meanwhile: a second writer is refused, saying who holds it."""
        finished = False  # every rank reached the end together: they may meet at a last barrier
        threads = torch.get_num_threads()
        torch.set_num_threads(choose_threads(self.config.threads))  # no more than the cores free now
        try:
            if not self.dist.is_main:
                event, finished = self._attempt()
            else:  # the run's train.log only once the folder is ours
                with folder_lock(self.run_dir, f"training {self.config.method}"), run_log(self.run_dir):
                    event, finished = self._attempt()
            return event
        except FolderInUse as exc:  # the other writer's metrics.jsonl is not ours to append to
            event = Failed(str(exc))
            if self.on_event is not None:
                self.on_event(event)
            return event
        finally:
            torch.set_num_threads(threads)
            if self.config.deterministic:  # a process-wide switch: leave it as we found it
                torch.use_deterministic_algorithms(False)
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            teardown_distributed(self.dist, in_step=finished)

    def _attempt(self) -> tuple[Finished | Failed, bool]:
        """``_run``, a failure reported as a :class:`Failed` event; (event, whether it ran to its end)."""
        try:
            return self._run(), True
        except WeaksegError as exc:
            event = Failed(str(exc))
        except Exception as exc:  # reported, never swallowed silently
            event = Failed(f"{type(exc).__name__}: {exc}", traceback.format_exc())
        self._emit(event)
        return event, False

    def _run(self) -> Finished:
        cfg, mc = self.config, self.method_config
        self.run_dir.mkdir(parents=True, exist_ok=True)
        seed_everything(cfg.seed, cfg.deterministic)
        method = build_method(cfg.method, mc).to(self.device)
        optimizers = method.make_optimizers()
        state = {"step": 0, "epoch": 0, "best_dice": None, "best_step": None, "bad_validations": 0, "fit_dice": None, "fit_step": None}
        state["warm_start"] = self.init_weights is not None  # a retrain: cfg.warm_lr applies (kept in last.pt for a resume)
        if self.resume and not (self.run_dir / "last.pt").is_file():
            raise InputError(f"{self.run_dir}: no checkpoint to resume from (last.pt is missing)")
        if self.resume:
            ckpt = load_tensors(self.run_dir / "last.pt", self.device)
            self._check_same_run()
            method.load_state_dict(ckpt["model"])
            for phase, opt in optimizers.items():
                opt.load_state_dict(ckpt["optim"][phase])
            state.update({k: ckpt[k] for k in state if k in ckpt})
        elif self.init_weights is not None:  # warm start (retraining): weights only
            method.load_state_dict(load_tensors(self.init_weights, self.device)["model"])
        spec = method.aux_spec(self.pixel_mm)
        aux = prior_masks(spec, tuple(self.train_set.images.shape[-2:])) if spec is not None else None
        method.prepare(self.train_set, self.pixel_mm, aux)
        total = self._total_steps()
        model = wrap_ddp(method, self.dist)
        runner = self._runner(model, method.phases, self._compile_trial(method, aux))
        if self.dist.is_main:
            write_run_info(self.run_dir, self._run_info(state))
        torch.manual_seed(cfg.seed + 1000 * self.dist.rank + state["step"])  # per-rank noise (u, dropout)
        sampler = PairSampler(
            self.train_set,
            mc.batch_size,
            mc.annotated_per_batch,
            self.method_cls.sampling,
            seed=cfg.seed + state["epoch"],
            rank=self.dist.rank,
            world=self.dist.world,
            absence_bins=mc.absence_by_position,
        )
        aug_gen = torch.Generator().manual_seed(cfg.seed + 7919 * (self.dist.rank + 1) + state["step"])
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        self._emit(
            Started(
                cfg.method,
                str(self.device),
                total,
                len(self.train_set),
                len(self.val_set or []),
                self.dist.world,
                state["step"],
                self._note(sampler),
            )
        )
        fit = None  # the annotated training rows, for keep_best_fit
        if self.val_set is None and cfg.keep_best_fit and bool(self.train_set.annotated.any()):
            fit = self.train_set.subset(torch.nonzero(self.train_set.annotated).flatten())
        if fit is not None and self.init_weights is not None and state["step"] == 0:
            self._check_fit(method, state, fit)  # the warm start itself is a candidate
        pace = Pace(total, mc.batch_size * self.dist.world, torch.get_num_threads())
        reason = "completed"
        step_start = state["step"]
        while state["step"] < total:
            if self._stop.is_set():
                reason = "stopped"
                break
            batch = self.sample_batch(sampler, aug_gen)
            set_lr_factor(optimizers, method.lr_factor(state["step"], total) * (cfg.warm_lr if state["warm_start"] else 1.0))
            method.train()
            losses = {}
            for phase in method.phases:
                out = runner.phase(phase, batch, optimizers[phase])
                losses.update({k if k != "loss" else f"{phase}_loss": float(v.detach()) for k, v in out.items()})
            method.after_step()
            state["step"] += 1
            state["epoch"] = sampler.epoch
            pairs_per_s, eta_s, elapsed_s, cpu_share = pace.step(state["step"])
            if not all(math.isfinite(v) for v in losses.values()):
                raise WeaksegError(f"training diverged at step {state['step']} (a loss became NaN/Inf); try a lower learning rate")
            self._emit(Progress(state["step"], total, state["epoch"], losses, pairs_per_s, eta_s, elapsed_s, cpu_share))
            if self._preview_request is not None:
                self._preview(method, state["step"])
            last = state["step"] == total
            validate = self.val_set is not None and (state["step"] % cfg.val_every == 0 or last)
            if validate and self._validate(method, state) and cfg.patience and state["bad_validations"] >= cfg.patience:
                reason = "early-stopped"
                self._checkpoint(method, optimizers, state)
                break
            if fit is not None and (state["step"] % cfg.val_every == 0 or last):
                self._check_fit(method, state, fit)
            if state["step"] % cfg.checkpoint_every == 0 or last:
                self._checkpoint(method, optimizers, state)
        if reason == "stopped" and state["step"] > step_start:
            if fit is not None and state["step"] % cfg.val_every:
                self._check_fit(method, state, fit)
            self._checkpoint(method, optimizers, state)
        if self.val_set is None and fit is None and self.dist.is_main and (self.run_dir / "last.pt").is_file():
            save_tensors(self.run_dir / "best.pt", {"model": method.state_dict(), "step": state["step"]})
        event = Finished(
            state["step"],
            reason,
            state["best_dice"],
            str(self.run_dir),
            peak_memory_mb(self.device),
            state["fit_dice"],
            state["fit_step"],
            runner.note,
        )
        self._emit(event)
        return event

    def _total_steps(self) -> int:
        cfg = self.config
        if cfg.steps is not None and cfg.epochs is not None:
            raise InputError("give either steps or epochs, not both")
        if cfg.epochs is not None:
            probe = PairSampler(self.train_set, self.method_config.batch_size, 0, self.method_cls.sampling, world=self.dist.world)
            return max(1, cfg.epochs * probe.steps_per_epoch())
        return cfg.steps if cfg.steps is not None else 300

    def sample_batch(self, sampler: PairSampler, gen: torch.Generator) -> dict:
        """One training batch (augmented, on the device) from ``sampler``."""
        p_rows, a_rows = sampler.next()
        ts = self.train_set
        P, M, L, A = ts.images[p_rows], ts.masks[p_rows], ts.annotated[p_rows], ts.images[a_rows]
        labels = self.method_cls.label_masks  # then M holds integer labels
        if self.method_config.augment:
            P, M = augment(P, M, gen, labels=labels)
            A, _ = augment(A, None, gen)
        if self.method_config.train_crop:  # after augmentation: the warp sees the whole row
            P, M = random_crop(P, M, self.method_config.train_crop, gen)
            A, _ = random_crop(A, None, self.method_config.train_crop, gen)
        dev = self.device
        batch = {"P": P.to(dev), "A": A.to(dev), "M": (M > 0).float().to(dev), "L": (L & ts.presence[p_rows]).to(dev)}
        if labels:
            batch["Y"] = M.long().to(dev)
        return batch

    @torch.no_grad()
    def _pooled_dice(self, method, rows: SliceSet) -> float:
        """Dice of the thresholded prediction over all of ``rows`` (annotated slices), pooled over pixels."""
        method.eval()
        inter, total = 0.0, 0.0
        for start in range(0, len(rows), 16):
            x = rows.images[start : start + 16].to(self.device)
            m = (rows.masks[start : start + 16] > 0).float().to(self.device)  # labels: any lesion
            pred = (method.predict(x)["prob"] >= self.method_config.threshold).float()
            inter += float((pred * m).sum())
            total += float(pred.sum() + m.sum())
        return all_reduce_mean(1.0 if total == 0 else 2 * inter / total, self.dist)

    def _check_fit(self, method, state: dict, fit: SliceSet) -> None:
        """Without validation slices: keep in best.pt the weights that fit the annotated training slices best
        (ties go to the later step); a retrain that collapses leaves best.pt at its starting weights."""
        dice = self._pooled_dice(method, fit)
        if state["fit_dice"] is None or dice >= state["fit_dice"]:
            state.update(fit_dice=dice, fit_step=state["step"])
            if self.dist.is_main:
                save_tensors(self.run_dir / "best.pt", {"model": method.state_dict(), "step": state["step"], "fit_dice": dice})
        self._emit(Validated(state["step"], dice, state["fit_dice"], state["fit_step"] == state["step"], on="annotated"))

    def _validate(self, method, state: dict) -> bool:
        """Pooled Dice on the held-out annotated slices. Returns True if it did not improve."""
        dice = self._pooled_dice(method, self.val_set)
        improved = state["best_dice"] is None or dice > state["best_dice"]
        if improved:
            state.update(best_dice=dice, best_step=state["step"], bad_validations=0)
            if self.dist.is_main:
                save_tensors(self.run_dir / "best.pt", {"model": method.state_dict(), "step": state["step"], "dice": dice})
        else:
            state["bad_validations"] += 1
        self._emit(Validated(state["step"], dice, state["best_dice"], improved))
        return not improved

    def _checkpoint(self, method, optimizers, state: dict) -> None:
        if not self.dist.is_main:
            return
        path = save_tensors(
            self.run_dir / "last.pt",
            {
                "model": method.state_dict(),
                "optim": {k: o.state_dict() for k, o in optimizers.items()},
                **state,
            },
        )
        write_run_info(self.run_dir, self._run_info(state))
        self._emit(Checkpointed(state["step"], str(path), False))

    @torch.no_grad()
    def _preview(self, method, step: int) -> None:
        from ..inference import predict_slices

        image, index = self._preview_request
        self._preview_request = None
        vol = self._volumes[image]
        sl = np.take(vol, index, axis=self._axes[image] + 1)  # (C, H, W)
        outputs = predict_slices(method, self.normaliser, self.method_config, sl[None], self.device)  # whole slices, as Run model
        self._emit(Preview(step, image, index, {k: v[0] for k, v in outputs.items()}))

    def _run_info(self, state: dict | None = None) -> dict:
        return {
            "method": self.config.method,
            "method_config": self.method_config.to_dict(),
            "train_config": self.config.to_dict(),
            "normaliser": self.normaliser.to_dict(),
            "study": self.study_info,
            **(
                {"started_from": {"run": self.started_from, "how": "resumed" if self.resume else "warm-started"}}
                if self.started_from
                else {}
            ),
            "runtime": (
                {**self.runtime, "compile": self.runner.compiling, "note": self.runner.note or self.runtime["note"]}
                if hasattr(self, "runner")
                else {}
            ),
            "halves": self.on_halves,  # trained on half-slices (prediction may stitch them: predict --stitch-halves)
            "torch": torch.__version__,
            "state": dict((state or {}).items()),
        }

    def _check_same_run(self) -> None:
        info = read_run_info(self.run_dir)
        if info.get("method") != self.config.method:
            raise InputError(f"{self.run_dir}: was trained with method {info.get('method')}, not {self.config.method}; cannot resume")

    def _compile_trial(self, method, aux):
        """On a CPU, the first batch's compiled step is tried in a throwaway process first (``compile_trial``:
        a crash there cannot be caught here); elsewhere compile errors are exceptions, caught by ``StepRunner``."""
        if self.device.type != "cpu" or self.dist.world > 1:
            return None

        def trial(batch: dict) -> str:
            return compile_trial(
                self.run_dir,
                self._stop.is_set,
                method=self.config.method,
                config=self.method_config,
                state=method.state_dict(),
                slices=self.train_set,
                pixel_mm=self.pixel_mm,
                aux=aux,
                batch=batch,
                precision=self.runtime["precision"],
                threads=torch.get_num_threads(),
            )

        return trial

    def _runner(self, model, phases, trial=None) -> StepRunner:
        """The step's precision, compilation and threads, decided once per run (run.json's ``runtime``)."""
        precision = resolve_precision(self.config.precision, self.device)
        decision = decide_compile(self.config.compile, self.device)
        if decision.compile:  # compiled kernels kept between runs: a second run of the same network starts warm
            os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", compile_cache_dir())
        self.runtime = {"precision": precision, "compile": decision.compile, "threads": torch.get_num_threads(), "note": decision.note}
        self.runner = StepRunner(model, phases, precision, self.device, decision.compile, trial)
        return self.runner

    def _note(self, sampler: PairSampler) -> str:
        note = "the study was copied at start: edits made during training apply to the next run"
        if self.restarted:
            note += "; the run in this folder had stopped before its first checkpoint, so it starts again from step 0"
        if self.runtime["note"]:
            note += f"; {self.runtime['note']}"
        if self.method_config.absence_by_position and len(sampler.a_rows) and not sampler.position_matched:
            note += (
                "; no absence slice lies at the presence slices' positions, so absence slices are drawn "
                "uniformly (absence_by_position has nothing to match)"
            )
        return note
