"""Live loss curves (one line per loss term) and validation Dice, on a matplotlib Qt canvas."""

from __future__ import annotations

import time

from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure

REDRAW_S = 0.5  # redraw at most twice a second, whatever the step rate
BACKGROUND, FOREGROUND = "#262930", "#d1d2d4"  # napari's dark theme


class LossPlot(FigureCanvasQTAgg):
    def __init__(self):
        fig = Figure(figsize=(4, 2.6), tight_layout=True, facecolor=BACKGROUND)
        super().__init__(fig)
        self.setMinimumHeight(200)
        self.ax = fig.add_subplot(111)
        self.ax_dice = self.ax.twinx()
        self.clear()

    def clear(self) -> None:
        self.steps: list[int] = []
        self.losses: dict[str, list[float]] = {}
        self.val_steps: list[int] = []
        self.val_dice: list[float] = []
        self._last_draw = 0.0
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

    def _redraw(self, force: bool = False) -> None:
        now = time.perf_counter()
        if not force and now - self._last_draw < REDRAW_S:
            return
        self._last_draw = now
        self.ax.clear()
        self.ax_dice.clear()
        for name, values in self.losses.items():
            self.ax.plot(self.steps[-len(values):], values, lw=1, label=name)
        if self.val_dice:
            self.ax_dice.plot(self.val_steps, self.val_dice, "k.-", lw=1, label="validation Dice")
            self.ax_dice.set_ylim(0, 1)
            self.ax_dice.set_ylabel("validation Dice", fontsize=8)
        self.ax.set_yscale("symlog", linthresh=0.1)
        self.ax.set_xlabel("step", fontsize=8)
        self.ax.tick_params(labelsize=7)
        self.ax_dice.tick_params(labelsize=7)
        for ax in (self.ax, self.ax_dice):
            ax.set_facecolor(BACKGROUND)
            ax.tick_params(colors=FOREGROUND)
            ax.xaxis.label.set_color(FOREGROUND)
            ax.yaxis.label.set_color(FOREGROUND)
            for spine in ax.spines.values():
                spine.set_color(FOREGROUND)
        if self.losses:
            self.ax.legend(fontsize=6, loc="upper right", ncol=2, facecolor=BACKGROUND, labelcolor=FOREGROUND)
        self.draw_idle()
