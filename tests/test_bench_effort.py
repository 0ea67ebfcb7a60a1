"""The annotation-effort suite end to end on the tiny synthetic BraTS folder (``tiny_brats.py``; never the
real data): real training processes, a few steps, one round of correct-and-retrain."""

from __future__ import annotations

import json

import pytest
import torch

from napari_weakseg.bench.effort import EffortProfile, build_case_study, plan, run_effort_suite
from napari_weakseg.cli import main
from napari_weakseg.study import load_study
from napari_weakseg.study.model import Tag

TINY = EffortProfile(cases=1, rounds=1, steps=2, retrain_steps=2, strategies=("suggest", "random"))


def test_a_case_study_is_what_study_create_builds_with_its_masks_erased(tmp_path, brats):
    truth = build_case_study(brats / "brats2015" / "case0", tmp_path / "s")
    im = load_study(tmp_path / "s").images[0]
    assert im.volume.shape == truth.shape == (8, 32, 32) and im.volume.data.shape[0] == 2  # FLAIR, T1c
    assert truth[2].any() and not truth[2, 0, 0]  # whole tumour, inside the brain only
    assert im.tags.tolist() == [Tag.UNKNOWN] + [Tag.PRESENCE if s in (2, 3, 4, 5) else Tag.ABSENCE for s in range(1, 8)]
    assert not im.mask.any()


def test_the_suite_runs_the_plan_and_reports_from_results_json(tmp_path, brats):
    out = tmp_path / "out"
    results = run_effort_suite(brats, out, TINY, device="cpu", log=lambda m: None, work=tmp_path / "work")
    assert [(c["method"], c["strategy"]) for c in results["curves"]] == plan(TINY)
    assert plan(TINY)[:3] == [("genseg", "suggest"), ("seg-only", "replay"), ("ae", "replay")]
    by = {(c["method"], c["strategy"]): c for c in results["curves"]}
    for c in results["curves"]:
        assert [len(r["painted"]) for r in c["rounds"]] == [1, 2] and c["rounds"][0]["painted"] == c["start"]
    # seg-only and ae are trained on the slices genseg's suggestions chose
    assert (
        by["seg-only", "replay"]["rounds"][1]["painted"]
        == by["ae", "replay"]["rounds"][1]["painted"]
        == by["genseg", "suggest"]["rounds"][1]["painted"]
    )
    # the strategies of the default method share its first round
    assert len({by["genseg", s]["rounds"][0]["dice"] for s in ("suggest", "random")}) == 1
    saved = json.loads((out / "results.json").read_text())
    assert saved["suite"] == "effort" and saved["summary"] == results["summary"]
    row = results["summary"]["rows"]["genseg / suggest"]
    assert row["mean"]["2"] == pytest.approx(by["genseg", "suggest"]["rounds"][1]["dice"])
    report = (out / "report.md").read_text()
    assert "| genseg / suggest |" in report and (out / "effort-curves.png").is_file()
    assert f"{row['mean']['2']:.3f}" in report
    assert "Table II" in report  # the paper's brain figures beside ours
    (out / "report.md").unlink()
    assert main(["bench", "effort", "--out", str(out), "--report-only"]) == 0 and (out / "report.md").read_text() == report


def test_on_hemispheres_each_half_is_tagged_and_the_model_trains_on_half_slices(tmp_path, brats):
    from napari_weakseg.inference import TrainedModel

    prof = EffortProfile(cases=1, rounds=1, steps=2, retrain_steps=2, strategies=("suggest",), alternative=None, halves=True)
    results = run_effort_suite(brats, tmp_path / "out", prof, device="cpu", log=lambda m: None, work=tmp_path / "work")
    im = load_study(tmp_path / "work" / "case0" / "start").images[0]
    assert im.split is not None and (im.half_tags == Tag.PRESENCE).any() and (im.half_tags == Tag.ABSENCE).any()
    curve = results["curves"][0]
    assert [len(r["painted"]) for r in curve["rounds"]] == [1, 2]
    run = tmp_path / "work" / "case0" / "genseg-suggest"
    runs = sorted((run / "runs").iterdir())
    assert TrainedModel.load(runs[-1]).on_halves  # the retrain, like the first round, drew half-slices
    assert "hemisphere tags" in (tmp_path / "out" / "report.md").read_text()


def test_options_that_do_not_apply_are_refused(tmp_path, brats, capsys):
    assert main(["bench", "effort", "--data", str(brats), "--out", str(tmp_path / "o"), "--methods", "genseg"]) != 0
    assert "does not apply" in capsys.readouterr().err
    assert main(["bench", "effort", "--data", str(brats), "--out", str(tmp_path / "o"), "--seeds", "2", "--seed-list", "3"]) != 0
    assert "not both" in capsys.readouterr().err
    assert main(["bench", "effort", "--data", str(brats), "--out", str(tmp_path / "o"), "--seed-list", "2;3"]) != 0
    assert "whole numbers separated by commas" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()  # refused before anything ran


def test_the_command_line_makes_a_custom_profile_of_seeds_steps_and_overrides(tmp_path):
    from napari_weakseg.bench_commands import effort_profile
    from napari_weakseg.cli import build_parser

    def parse(*extra):
        return effort_profile(build_parser().parse_args(["bench", "effort", "--out", str(tmp_path), *extra]))

    assert parse() == "cpu" and parse("--profile", "cpu-96") == "cpu-96"  # unchanged: the profile's own name
    held_out = parse("--profile", "cpu-96", "--seed-list", "2,3")
    assert held_out.seeds == (2, 3) and held_out.overrides == {"input_size": 96} and held_out.strategies == ("suggest", "random")
    assert parse("--seeds", "3", "--steps", "50").seeds == (0, 1, 2) and parse("--steps", "50").retrain_steps == 50
    (tmp_path / "c.json").write_text('{"net": {"seg_head_kernel": 7}}')
    merged = parse("--profile", "cpu-96", "--config", str(tmp_path / "c.json"))
    assert merged.overrides == {"input_size": 96, "net": {"seg_head_kernel": 7}}


def test_a_suite_stopped_early_reports_its_complete_volumes_only(tmp_path):
    from napari_weakseg.bench.effort import summarise
    from napari_weakseg.bench.effort_report import write_effort_report

    def curve(case, method, strategy, dice):
        rounds = [
            {"painted": list(range(k + 1)), "dice": d, "train_s": 1.0, "predict_s": 0.1, "next_slice": None} for k, d in enumerate(dice)
        ]
        return {"case": case, "method": method, "strategy": strategy, "start": [0], "rounds": rounds}

    prof = EffortProfile(rounds=1, strategies=("suggest",))
    results = {
        "profile": "cpu",
        "settings": {**prof.__dict__, "strategies": list(prof.strategies), "seeds": list(prof.seeds)},
        "cases": ["a", "b"],
        "machine": {"cpu": "x", "cpu_count": 2, "torch": "t", "device": "cpu", "torch_threads": 2},
        "matmul_flops_per_s": 1e9,
        "curves": [curve("a", m, s, [0.5, 0.6]) for m, s in plan(prof)] + [curve("b", "genseg", "suggest", [0.9])],
    }
    results["summary"] = summarise(results)
    assert results["summary"]["cases"] == ["a"] and results["summary"]["rows"]["genseg / suggest"]["mean"] == {"1": 0.5, "2": 0.6}
    report = write_effort_report(results, tmp_path).read_text()
    assert "b left out: the suite was stopped before its curves were complete" in report


def test_every_curve_runs_once_per_seed_and_the_report_gives_the_spread(tmp_path, brats):
    prof = EffortProfile(cases=1, rounds=1, steps=2, retrain_steps=2, strategies=("suggest",), alternative=None, seeds=(0, 1))
    assert plan(prof) == [("genseg", "suggest"), ("seg-only", "replay")]
    out = tmp_path / "out"
    results = run_effort_suite(brats, out, prof, device="cpu", log=lambda m: None, work=tmp_path / "work")
    assert [(c["seed"], c["method"]) for c in results["curves"]] == [(0, "genseg"), (0, "seg-only"), (1, "genseg"), (1, "seg-only")]
    assert (tmp_path / "work" / "case0" / "seed1" / "genseg-suggest").is_dir()
    row = results["summary"]["rows"]["genseg / suggest"]
    dice = [[r["dice"] for r in c["rounds"]] for c in results["curves"] if c["method"] == "genseg"]
    assert row["n_runs"] == {"1": 2, "2": 2} and row["mean"]["2"] == pytest.approx((dice[0][1] + dice[1][1]) / 2)
    assert row["seed_sd"]["2"] == pytest.approx(abs(dice[0][1] - dice[1][1]) / 2)
    assert row["retrains"] == 2 and 0 <= row["kept_start"] <= 2
    assert all(c["rounds"][1]["fit_step"] in (0, 2) for c in results["curves"])  # best.pt: the warm start or step 2
    report = (out / "report.md").read_text()
    assert "seeds 0, 1: each curve once per seed" in report and f"{row['mean']['2']:.3f} ({row['seed_sd']['2']:.3f})" in report
    assert {c["input_size"] for c in results["curves"]} == {64} and "quick preset, working size 64x64," in report  # 32x32 slices
    assert "kept its weights" in report and ", ae" not in report


def test_results_written_before_seeds_are_read():
    from napari_weakseg.bench.effort import settings_profile

    old = {**{k: v for k, v in EffortProfile().__dict__.items() if k != "seeds"}, "seed": 3, "strategies": ["suggest"]}
    assert settings_profile(old).seeds == (3,) and settings_profile(old).strategies == ("suggest",)


def test_a_profiles_overrides_reach_every_methods_training_and_the_report(tmp_path, brats):
    from napari_weakseg.training.checkpoint import read_run_info

    small = {"input_size": 16}
    prof = EffortProfile(cases=1, rounds=1, steps=2, retrain_steps=2, strategies=("suggest",), alternative=None, overrides=small)
    out = tmp_path / "out"
    results = run_effort_suite(brats, out, prof, device="cpu", log=lambda m: None, work=tmp_path / "work")
    runs = [r["run_dir"] for c in results["curves"] for r in c["rounds"]]
    assert len(runs) == 4  # genseg and seg-only, first training and one retrain each
    assert {read_run_info(r)["method_config"]["input_size"] for r in runs} == {16}  # the dock's default is 64
    assert {c["input_size"] for c in results["curves"]} == {16}
    threads = results["threads"]
    assert threads == torch.get_num_threads() and {read_run_info(r)["runtime"]["threads"] for r in runs} == {threads}
    assert f"background process on {threads} thread(s), fixed" in (out / "report.md").read_text()
    assert "quick preset with `input_size` 16 (every method, in place of the dock's), working size 16x16" in (out / "report.md").read_text()
    assert results["settings"]["overrides"] == {"input_size": 16}


def _synthetic_results(prof, seeds, dice, profile="cpu"):
    """Results as the suite writes them, for one volume: every planned curve on each seed, Dice ``dice[seed]``."""
    from napari_weakseg.bench.effort import summarise

    def curve(seed, method, strategy):
        rounds = [
            {"painted": list(range(k + 1)), "dice": d, "train_s": 1.0, "predict_s": 0.1, "next_slice": None}
            for k, d in enumerate(dice[seed])
        ]
        return {"case": "a", "seed": seed, "method": method, "strategy": strategy, "start": [0], "rounds": rounds}

    results = {
        "suite": "effort",
        "profile": profile,
        "settings": {**prof.__dict__, "strategies": list(prof.strategies), "seeds": list(seeds)},
        "cases": ["a"],
        "machine": {"cpu": "x", "cpu_count": 2, "torch": "t", "device": "cpu", "torch_threads": 2},
        "matmul_flops_per_s": 1e9,
        "wall_s": 10.0,
        "curves": [curve(s, m, st) for s in seeds for m, st in plan(prof)],
    }
    results["summary"] = summarise(results)
    return results


def test_runs_on_other_seeds_pool_into_one_report(tmp_path, capsys):
    """``--pool A,B``: a profile's seeds and a held-out seed reported together; runs that differ are refused."""
    from napari_weakseg.bench.common import save_results

    prof = EffortProfile(rounds=1, strategies=("suggest",), alternative=None)
    dice = {0: [0.5, 0.6], 1: [0.7, 0.8], 2: [0.6, 0.9]}
    for name, seeds, label in (("a", (0, 1), "cpu"), ("b", (2,), "custom"), ("again", (1,), "custom")):
        (tmp_path / name).mkdir()
        save_results(_synthetic_results(prof, seeds, dice, label), tmp_path / name)
    other = EffortProfile(rounds=1, strategies=("suggest",), alternative=None, steps=7)
    (tmp_path / "steps").mkdir()
    save_results(_synthetic_results(other, (3,), {3: [0.1, 0.2]}), tmp_path / "steps")
    out = tmp_path / "pooled"
    assert main(["bench", "effort", "--pool", f"{tmp_path / 'a'},{tmp_path / 'b'}", "--out", str(out)]) == 0
    pooled = json.loads((out / "results.json").read_text())
    row = pooled["summary"]["rows"]["genseg / suggest"]
    assert pooled["settings"]["seeds"] == [0, 1, 2] and pooled["profile"] == "pooled" and pooled["wall_s"] == 20.0
    assert row["mean"]["2"] == pytest.approx((0.6 + 0.8 + 0.9) / 3) and row["n_runs"] == {"1": 3, "2": 3}
    report = (out / "report.md").read_text()
    assert "seeds 0, 1, 2: each curve once per seed. Pooled from 2 runs of these settings (cpu, seeds 0, 1; custom, seeds 2)." in report
    capsys.readouterr()
    for pool, why in (
        (f"{tmp_path / 'a'},{tmp_path / 'again'}", "a seed appears in two runs (seeds 0, 1, 1)"),
        (f"{tmp_path / 'a'},{tmp_path / 'steps'}", "the runs differ in steps"),
        (f"{tmp_path / 'a'}", "give two results folders or more"),
        (f"{tmp_path / 'a'},{out}", "--out must be a new folder"),
    ):
        assert main(["bench", "effort", "--pool", pool, "--out", str(out)]) != 0 and why in capsys.readouterr().err
    assert main(["bench", "effort", "--pool", f"{tmp_path / 'a'},{tmp_path / 'b'}", "--out", str(out), "--seeds", "2"]) != 0
    assert "--pool applies to the effort suite alone" in capsys.readouterr().err
    assert json.loads((out / "results.json").read_text()) == pooled  # nothing refused touched the pooled run
