"""The viewer while it trains: event-loop latency, throughput against the same run headless,
and the time from clicking Train on the demo phantom to a segmentation on screen.

Needs a display (``xvfb-run`` on a server). A simulated user steps through slices
and zooms twice a second during the run, so drawing is part of what is measured.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np

from ..log import LOGGER

IDLE_S = 3.0  # event-loop latency of the idle viewer, for reference
USER_EVERY_MS = 500


def measure_gui_vs_headless(study: Path, work: Path, steps: int | None, repeats: int, log=LOGGER.info) -> dict:
    """Interleaved headless / GUI runs of the dock's default configuration; medians and every repeat."""
    from .headless import train_headless

    gui_runs, headless_runs = [], []
    for r in range(repeats):
        log(f"[speed] GUI run {r + 1}/{repeats}")
        gui = measure_gui_run(study, steps)
        gui_runs.append(gui)
        log(f"[speed] the same run headless {r + 1}/{repeats}")
        headless_runs.append(train_headless(study, work / f"headless-{r}", gui["config"]))
    gui_rate = statistics.median(g["pairs_per_s"] for g in gui_runs)
    by_condition = {
        k: statistics.median(g["steps_per_s_by_condition"].get(k, float("nan")) * g["batch_size"] for g in gui_runs)
        for k in ("training", "training, user")
    }
    headless_rate = statistics.median(h["pairs_per_s"] for h in headless_runs)
    return {
        "runs": gui_runs,
        "headless_runs": headless_runs,
        "gui_pairs_per_s": gui_rate,
        "headless_pairs_per_s": headless_rate,
        "throughput_ratio": gui_rate / headless_rate,
        "gui_pairs_per_s_by_condition": by_condition,
        "latency": {
            label: {k: statistics.median(g["latency"][label][k] for g in gui_runs) for k in ("p50_ms", "p99_ms", "max_ms")}
            for label in LABELS
            if all(g["latency"][label]["n"] for g in gui_runs)
        },
        "click_to_segmentation_s": statistics.median(g["click_to_segmentation_s"] for g in gui_runs),
        "viewer_cpu_cores": statistics.median(g["viewer_cpu_cores"] for g in gui_runs),
        "dice": statistics.median(g["dice"] for g in gui_runs),
    }


def measure_gui_run(study: Path, steps: int | None = None, method: str | None = None, viewer=None) -> dict:
    """Open the demo study in a real viewer with both docks, click Train, wait for the segmentation
    layer, and measure. The dock's defaults are used except for ``steps``/``method``.

    Event-loop lateness is recorded under labels: "idle" and "idle, user" before the run,
    "training" and "training, user" (the simulated user is on for 4 s, off for 4 s, in turn),
    and "showing results" from the end of training to the segmentation layer on screen.
    ``viewer``: a shown viewer to use (and leave open); default: a new one, closed at the end.
    """
    import napari
    from napari.qt import get_qapp
    from qtpy.QtCore import QEventLoop, QTimer

    from ..data.phantom import make_phantom
    from ..demo import ANNOTATION_WIDGET, PLUGIN, TRAINING_WIDGET
    from ..training.metrics import dice
    from ..widgets.latency_probe import EventLoopProbe
    from ..widgets.output_layers import SEG, layer_name
    from .headless import throughput_from_metrics

    own = viewer is None
    viewer = napari.Viewer(show=True) if own else viewer
    train = None
    try:
        viewer.window._qt_window.resize(1400, 850)
        _, ann = viewer.window.add_plugin_dock_widget(PLUGIN, ANNOTATION_WIDGET)
        _, train = viewer.window.add_plugin_dock_widget(PLUGIN, TRAINING_WIDGET, tabify=True)
        ann.open_study(study)
        if steps:
            train.settings.steps.setValue(steps)
        if method:
            train.settings.method.setCurrentText(method)
        probe = EventLoopProbe()
        user = _SimulatedUser(viewer, probe)
        probe.start()
        probe.label = "idle"
        _run_loop(IDLE_S)
        user.start("idle")
        _run_loop(IDLE_S)
        user.stop()

        ended: list = []
        loop = QEventLoop()

        def on_finished(event):
            ended.append(event)
            cpu.append(time.process_time())
            user.stop()
            probe.label = "showing results"
            ended.append(time.perf_counter())
            # after training the dock predicts the whole image; wait for its layers
            wait = QTimer(train)
            wait.timeout.connect(lambda: train.prediction_pending or loop.quit())
            wait.start(20)

        train.finished.connect(on_finished)
        probe.label = "training"
        toggle = QTimer()
        toggle.timeout.connect(lambda: user.stop() if user.active else user.start("training"))
        toggle.start(4000)
        rates = _StepRate(train, probe)
        cpu = [time.process_time()]  # this (the viewer's) process: every thread, not the training process
        t0 = time.perf_counter()
        train.train_btn.click()
        QTimer.singleShot(30 * 60 * 1000, loop.quit)  # never hang a benchmark
        loop.exec()
        t_shown = time.perf_counter()
        toggle.stop()
        rates.stop()
        probe.stop()
        if len(ended) < 2 or not hasattr(ended[0], "run_dir"):
            raise RuntimeError(f"the GUI run did not finish: {ended[0] if ended else 'timeout'}")
        finished, t_end = ended[:2]
        get_qapp().processEvents()
        truth = make_phantom(channels=2, seed=0).mask  # the demo study's phantom
        seg = np.asarray(viewer.layers[layer_name(ann.image.name, SEG)].data)
        run = throughput_from_metrics(Path(finished.run_dir) / "metrics.jsonl")
        run.update(
            config=train.train_config(),
            train_s=t_end - t0,
            click_to_segmentation_s=t_shown - t0,
            viewer_cpu_cores=(cpu[1] - cpu[0]) / (t_end - t0),
            dice=dice(seg, truth),
            user_actions=user.actions,
            run_dir=finished.run_dir,
            steps_per_s_by_condition=rates.rates(),
            latency={label: probe.summary(label) for label in LABELS},
            lateness_ms=[round(v, 1) for v in probe.lateness_ms],
            lateness_labels=runs_of(probe.labels),
        )
        return run
    finally:
        if train is not None:
            train.shutdown()
        if own:
            viewer.close()


LABELS = ("idle", "idle, user", "training", "training, user", "showing results")


class _SimulatedUser:
    """Steps through the slices and zooms a little, twice a second, as someone looking at the image would."""

    def __init__(self, viewer, probe):
        from qtpy.QtCore import QTimer

        self.viewer, self.probe, self.actions, self.active = viewer, probe, 0, False
        self._timer = QTimer()
        self._timer.timeout.connect(self.act)

    def start(self, condition: str) -> None:
        self.active = True
        self.probe.label = f"{condition}, user"
        self._timer.start(USER_EVERY_MS)

    def stop(self) -> None:
        if self.active:
            self.probe.label = self.probe.label.replace(", user", "")
        self.active = False
        self._timer.stop()

    def act(self) -> None:
        dims = self.viewer.dims
        n = int(dims.range[0][1] // max(dims.range[0][2], 1e-9)) + 1 if dims.ndim > 2 else 1
        if self.actions % 2 == 0:
            dims.set_current_step(0, (dims.current_step[0] + 1) % max(n, 1))
        else:
            camera = getattr(self.viewer, "scene", self.viewer).camera  # napari >= 0.9: viewer.scene.camera
            camera.zoom *= 1.02 if self.actions % 4 == 1 else 1 / 1.02
        self.actions += 1


class _StepRate:
    """Training steps per second seen by the dock (as events arrive), per condition of the probe's label."""

    def __init__(self, train, probe, every_ms: int = 250):
        from qtpy.QtCore import QTimer

        self.train, self.probe = train, probe
        self.samples: list[tuple[float, int, str]] = []
        self._timer = QTimer()
        self._timer.timeout.connect(lambda: self.samples.append((time.perf_counter(), train.last_step, probe.label)))
        self._timer.start(every_ms)

    def stop(self) -> None:
        self._timer.stop()

    def rates(self) -> dict:
        steps, seconds = {}, {}
        for (t0, s0, k0), (t1, s1, k1) in zip(self.samples, self.samples[1:], strict=False):
            if k0 == k1 and s0 > 0 and s1 >= s0:  # an interval inside one condition, after the first step
                steps[k0] = steps.get(k0, 0) + s1 - s0
                seconds[k0] = seconds.get(k0, 0.0) + t1 - t0
        return {k: steps[k] / seconds[k] for k in steps if seconds[k] > 0}


def runs_of(labels: list[str]) -> list[list]:
    """Run-length code: ["a", "a", "b"] -> [["a", 2], ["b", 1]] (keeps results.json small)."""
    out: list[list] = []
    for label in labels:
        if out and out[-1][0] == label:
            out[-1][1] += 1
        else:
            out.append([label, 1])
    return out


def _run_loop(seconds: float) -> None:
    from qtpy.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    QTimer.singleShot(int(seconds * 1000), loop.quit)
    loop.exec()
