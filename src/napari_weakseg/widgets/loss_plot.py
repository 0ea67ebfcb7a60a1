"""Live loss curves (one line per loss term) and validation Dice, on a matplotlib Qt canvas.

Cheap to keep live: lines are updated in place (no axes rebuilt), the layout is
computed when a new line appears, the canvas redraws at most every two seconds,
and not at all while it is hidden (another dock tab in front): it catches up when shown.
"""

from __future__ import annotations

import time

from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure

REDRAW_S = 2.0  # redraw at most every 2 s, whatever the step rate
MAX_POINTS = 500  # longer curves are thinned for drawing (every k-th point)
BACKGROUND, FOREGROUND = "#262930", "#d1d2d4"  # napari's dark theme


class LossPlot(FigureCanvasQTAgg):
    def __init__(self):
        fig = Figure(figsize=(4, 2.6), facecolor=BACKGROUND)
        super().__init__(fig)
        self.setMinimumHeight(200)
        self.ax = fig.add_subplot(111)
        self.ax_dice = self.ax.twinx()
        for ax in (self.ax, self.ax_dice):
            ax.set_facecolor(BACKGROUND)
            ax.tick_params(colors=FOREGROUND, labelsize=7)
            for spine in ax.spines.values():
                spine.set_color(FOREGROUND)
        self.ax.set_yscale("symlog", linthresh=0.1)
        self.ax.set_xlabel("step", fontsize=8, color=FOREGROUND)
        self.ax_dice.set_ylim(0, 1)
        self.ax_dice.set_ylabel("validation Dice", fontsize=8, color=FOREGROUND)
        self.clear()

    def clear(self) -> None:
        self.steps: list[int] = []
        self.losses: dict[str, list[float]] = {}
        self.val_steps: list[int] = []
        self.val_dice: list[float] = []
        for line in [*self.ax.lines, *self.ax_dice.lines]:
            line.remove()
        if self.ax.get_legend() is not None:
            self.ax.get_legend().remove()
        self._lines: dict = {}
        self._dice_line = self.ax_dice.plot([], [], "k.-", lw=1, label="validation Dice")[0]
        self._last_draw, self._stale = 0.0, True
        self._redraw(force=True)

    def add_losses(self, step: int, losses: dict) -> None:
        """Record one step's loss terms (a phase's weighted total, ``*_loss``, is left out)."""
        self.steps.append(step)
        for k, v in losses.items():
            if not k.endswith("_loss"):
                self.losses.setdefault(k, []).append(float(v))
        self._redraw()

    def add_validation(self, step: int, dice: float) -> None:
        self.val_steps.append(step)
        self.val_dice.append(dice)
        self._redraw(force=True)

    def showEvent(self, event):  # noqa: N802
        super().showEvent(event)
        if self._stale:
            self._redraw(force=True)

    def _redraw(self, force: bool = False) -> None:
        now = time.perf_counter()
        if not self.isVisible():
            self._stale = True  # drawn when shown
            return
        if not force and now - self._last_draw < REDRAW_S:
            return
        self._last_draw, self._stale = now, False
        new_line = False
        for name, values in self.losses.items():
            steps = self.steps[-len(values):]
            k = max(1, len(values) // MAX_POINTS)
            if name not in self._lines:
                self._lines[name] = self.ax.plot([], [], lw=1, label=name)[0]
                new_line = True
            self._lines[name].set_data(steps[::k], values[::k])
        self._dice_line.set_data(self.val_steps, self.val_dice)
        if new_line:
            self.ax.legend(fontsize=6, loc="upper right", ncol=2, facecolor=BACKGROUND, labelcolor=FOREGROUND)
        if new_line or force:
            self.figure.tight_layout()
        self.ax.relim()
        self.ax.autoscale_view()
        self.draw_idle()
