"""The speed suite and its event-loop probe: real training processes, a real viewer."""

import json
import time

import pytest

from napari_weakseg.bench.headless import throughput_from_metrics
from napari_weakseg.bench.speed import SpeedProfile, run_speed_suite
from napari_weakseg.demo import build_demo_study
from napari_weakseg.errors import InputError

TINY = SpeedProfile(
    steps=8,
    volume=(4, 32, 32),
    channels=2,
    gui_steps=8,
    repeats=1,
    ab_steps=8,
    ab_variants=("eager fp32", "eager bf16"),
    dice_seeds=(0,),
    dice_steps=8,
)


def test_probe_sees_a_blocked_event_loop(make_napari_viewer, qtbot):
    from qtpy.QtCore import QTimer

    from napari_weakseg.widgets.latency_probe import EventLoopProbe

    make_napari_viewer()
    probe = EventLoopProbe(interval_ms=10)
    probe.start()
    probe.label = "calm"
    qtbot.wait(200)
    probe.label = "blocked"
    QTimer.singleShot(20, lambda: time.sleep(0.25))  # the event loop is stuck for 250 ms
    qtbot.wait(400)
    probe.stop()
    calm, blocked = probe.summary("calm"), probe.summary("blocked")
    assert calm["n"] > 5 and blocked["n"] > 5
    assert blocked["max_ms"] >= 200 and calm["max_ms"] < 200
    assert probe.summary()["n"] == calm["n"] + blocked["n"]


def test_speed_suite_headless(tmp_path):
    results = run_speed_suite(tmp_path / "out", TINY, methods=("seg-only", "genseg"), gui=False, log=lambda m: None)
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    assert saved["training"].keys() == {"seg-only", "genseg"}
    for m in ("seg-only", "genseg"):
        t, i = saved["training"][m], saved["inference"][m]
        assert t["steps"] == 8 and t["pairs_per_s"] > 0 and t["peak_memory_mb"] > 50
        assert 0 < t["achieved_flops_per_s"] < 10 * saved["matmul_flops_per_s"]
        assert i["volume_shape"] == [2, 4, 32, 32] and i["volume_s"] > 0 and i["slice_s"] > 0
    assert saved["training"]["genseg"]["step_flops"] > saved["training"]["seg-only"]["step_flops"]  # more networks, more work
    report = (tmp_path / "out" / "report.md").read_text()
    assert "seg-only" in report and "Not measured: --no-gui was given" in report
    assert saved["total_seconds"] > 0 and f"**{saved['total_seconds'] / 60:.1f} min**" in report  # the suite's wall time
    assert results["gui"] == {"skipped": "--no-gui was given"}
    ab = saved["ab"]  # eager fp32 against bf16 (where this CPU has bf16 units), both methods
    assert ab["variants"] == (["eager fp32", "eager bf16"] if ab["bf16_units"] else ["eager fp32"])
    for m in ("seg-only", "genseg"):
        for name in ab["variants"]:
            run = ab["methods"][m][name]
            assert run["runtime"]["precision"] == ("bf16" if "bf16" in name else "fp32") and not run["runtime"]["compile"]
            assert run["pairs_per_s"] > 0 and run["first_step_s"] > 0
            assert f"| {m} | {name} | {run['pairs_per_s']:.1f} |" in report
    dice = saved["ab_dice"]  # genseg's Dice on the phantom's truth in each variant
    assert dice["method"] == "genseg" and dice["steps"] == 8 and list(dice["variants"]) == ab["variants"]
    for name, row in dice["variants"].items():
        assert len(row["dice"]) == 1 and 0 <= row["dice"][0] <= 1 and row["mean"] == row["dice"][0]
        assert f"| {name} | {row['dice'][0]:.3f} |" in report


def test_speed_suite_refuses_unknown_methods_and_missing_display(tmp_path, monkeypatch):
    with pytest.raises(InputError, match="unknown method"):
        run_speed_suite(tmp_path / "out", TINY, methods=("nope",), gui=False)
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(InputError, match="xvfb-run"):
        run_speed_suite(tmp_path / "out", TINY, gui=True)


def test_gui_run_measures_latency_throughput_and_dice(tmp_path, make_napari_viewer):
    from napari_weakseg.bench.gui_speed import measure_gui_run

    study = build_demo_study(tmp_path / "study")
    run = measure_gui_run(study, steps=8, method="seg-only", viewer=make_napari_viewer(show=True))
    assert run["config"]["method"] == "seg-only" and run["steps"] == 8
    assert run["latency"]["training"]["n"] > 10 and run["latency"]["idle"]["n"] > 10
    assert run["latency"]["showing results"]["n"] >= 1
    assert run["pairs_per_s"] > 0 and 0 <= run["dice"] <= 1
    assert run["click_to_segmentation_s"] >= run["train_s"] > 0
    assert 0 < run["viewer_cpu_cores"] < 2.5  # the viewer process used some CPU while it trained (all its threads)
    assert throughput_from_metrics(f"{run['run_dir']}/metrics.jsonl")["steps"] == 8


def test_gui_report_judges_each_target_and_each_condition(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from napari_weakseg.bench.speed_report import _gui_section

    lat = {"p50_ms": 0.3, "p99_ms": 12.0, "max_ms": 80.0}
    gui = {
        "runs": [
            {
                "config": {"method": "genseg", "preset": "quick", "steps": 100},
                "lateness_ms": [0.3, 12.0],
                "lateness_labels": [["training", 1], ["training, user", 1]],
            }
        ],
        "latency": {"training": lat, "training, user": {**lat, "p99_ms": 120.0}},
        "gui_pairs_per_s": 8.0,
        "headless_pairs_per_s": 10.0,
        "throughput_ratio": 0.8,
        "gui_pairs_per_s_by_condition": {"training": 9.2, "training, user": 6.5},
        "click_to_segmentation_s": 106.0,
        "dice": 0.75,
        "viewer_cpu_cores": 0.2,
    }
    rows = {ln.split(" | ")[0].lstrip("| "): ln for ln in _gui_section(gui, tmp_path, plt) if ln.startswith("| ")}
    assert rows["event-loop latency p99 while training (ms)"].endswith("| yes |")  # 12 < 50: the user-free condition
    assert rows["throughput in the GUI / headless, whole run"].endswith("| **no** |")  # 0.8
    assert "| 0.92 |" in rows["throughput in the GUI / headless, nobody interacting"]  # 9.2 / 10
    assert rows["throughput in the GUI / headless, nobody interacting"].endswith("| yes |")
    assert rows["throughput in the GUI / headless, simulated user working"].endswith("| **no** |")  # 0.65
    assert rows["click on Train to segmentation on screen (s)"].endswith("| yes |")
    assert (tmp_path / "speed-latency.png").is_file()


def test_a_compiled_variant_is_time_boxed_and_reported_as_such(tmp_path):
    """The A/B suite gives a compiled step a time box (2 cores took over 5 min to compile genseg): past it, the
    process is stopped and the report says how long it had, instead of the suite running past its budget."""
    from napari_weakseg.bench.speed import measure_variants
    from napari_weakseg.bench.speed_report import ab_section
    from napari_weakseg.demo import build_demo_study

    study = build_demo_study(tmp_path / "study")
    ab = measure_variants(study, tmp_path / "ab", ("seg-only",), "cpu", 8, 1, lambda m: None, ("eager fp32", "compiled fp32"), 1.0)
    runs = ab["methods"]["seg-only"]
    assert runs["compiled fp32"]["timed_out_s"] == 1.0 and runs["eager fp32"]["pairs_per_s"] > 0  # eager: no time box
    lines = ab_section({"ab": ab, "matmul_flops_per_s": 1e11})
    assert "| seg-only | compiled fp32 | — | — | — | > 1 (stopped) | compiling |" in lines
