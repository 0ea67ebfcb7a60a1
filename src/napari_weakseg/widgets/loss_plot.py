"""Live loss curves (one line per loss term) and validation Dice, on a matplotlib Qt canvas.

A full matplotlib draw of this plot takes 60-80 ms on a small CPU, most of it tick labels and
the legend, and it runs on the GUI thread (drawing in a thread does not help: matplotlib holds
Python's GIL). So the plot blits: axes, ticks and legend are drawn once into a cached
background; a redraw restores it and draws only the curves (a few ms). A full draw happens
only when that background changes: a new loss term, a y range that grows past a decade, a
resize. The x axis spans the run's total steps from the start.

Adding points only records them: the owner calls :meth:`LossPlot.redraw` when it repaints the
rest of its dock (see the training dock for why that is batched), and a hidden plot (another
dock tab in front) is drawn when it is shown.
"""

from __future__ import annotations

import math

from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure

MAX_POINTS = 500  # longer curves are thinned for drawing (every k-th point)
LINTHRESH = 0.1  # symlog: linear below this magnitude
BACKGROUND, FOREGROUND = "#262930", "#d1d2d4"  # napari's dark theme


def decade_limits(values) -> tuple[float, float]:
    """y limits that change only when the data cross a power of ten: (-10^a or 0, 10^b)."""
    lo, hi = min(values, default=0.0), max(values, default=1.0)
    top = 10.0 ** math.ceil(math.log10(max(hi, LINTHRESH)))
    bottom = 0.0 if lo >= 0 else -(10.0 ** math.ceil(math.log10(max(-lo, LINTHRESH))))
    return bottom, top


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
        self.ax.set_yscale("symlog", linthresh=LINTHRESH)
        self.ax.set_xlabel("step", fontsize=8, color=FOREGROUND)
        self.ax_dice.set_ylim(0, 1)
        self.ax_dice.set_ylabel("validation Dice", fontsize=8, color=FOREGROUND)
        self._background = None
        self.mpl_connect("draw_event", self._on_full_draw)
        self.clear()

    def clear(self, total_steps: int | None = None) -> None:
        """Forget the curves; ``total_steps`` fixes the x axis for the whole run."""
        self.steps: list[int] = []
        self.losses: dict[str, list[float]] = {}
        self.val_steps: list[int] = []
        self.val_dice: list[float] = []
        self.total_steps = total_steps
        for line in [*self.ax.lines, *self.ax_dice.lines]:
            line.remove()
        if self.ax.get_legend() is not None:
            self.ax.get_legend().remove()
        self._lines: dict = {}
        self._dice_line = self.ax_dice.plot([], [], ".-", color=FOREGROUND, lw=1, animated=True)[0]
        self._limits = None
        self._stale = True
        self.redraw()

    def add_losses(self, step: int, losses: dict) -> None:
        """Record one step's loss terms (a phase's weighted total, ``*_loss``, is left out)."""
        self.steps.append(step)
        for k, v in losses.items():
            if not k.endswith("_loss"):
                self.losses.setdefault(k, []).append(float(v))
        self._stale = True

    def add_validation(self, step: int, dice: float) -> None:
        self.val_steps.append(step)
        self.val_dice.append(dice)
        self._stale = True

    def showEvent(self, event):  # noqa: N802
        super().showEvent(event)
        self.redraw()

    def redraw(self) -> None:
        """Draw what was added since the last redraw; nothing if nothing was, or while hidden."""
        if not self._stale or not self.isVisible():
            return
        self._stale = False
        full = self._update_lines()
        if full or self._background is None:
            self.draw()  # axes, ticks, legend; _on_full_draw then caches them and draws the curves
        else:
            self.restore_region(self._background)
            self._draw_curves()
            self.update()  # painted with the rest of the window, not at once as blit() would

    def _update_lines(self) -> bool:
        """Give the curves their data; returns True if the background must be drawn anew."""
        full = False
        for name, values in self.losses.items():
            if name not in self._lines:
                self._lines[name] = self.ax.plot([], [], lw=1, label=name, animated=True)[0]
                full = True
            k = max(1, len(values) // MAX_POINTS)
            self._lines[name].set_data(self.steps[-len(values) :][::k], values[::k])
        self._dice_line.set_data(self.val_steps, self.val_dice)
        last = self.steps[-1] if self.steps else 1
        xmax = self.total_steps or 2 ** math.ceil(math.log2(max(last, 1)))  # unknown total: doubles as needed
        limits = (max(xmax, 1), decade_limits([v for vs in self.losses.values() for v in vs]))
        if limits != self._limits:
            self._limits = limits
            self.ax.set_xlim(0, limits[0])
            self.ax.set_ylim(*limits[1])
            full = True
        if full and self._lines:
            # above the axes, where the curves (drawn over the cached background) never hide it
            self.ax.legend(
                fontsize=6,
                loc="lower left",
                bbox_to_anchor=(0, 1.01, 1, 0.1),
                mode="expand",
                ncol=4,
                frameon=False,
                labelcolor=FOREGROUND,
                borderaxespad=0,
                handlelength=1.5,
            )
            self.figure.tight_layout()
        return full

    def _on_full_draw(self, event) -> None:
        """After every full draw (ours, or Qt's after a resize): cache it, then put the curves on."""
        self._background = self.copy_from_bbox(self.figure.bbox)
        self._draw_curves()

    def _draw_curves(self) -> None:
        for line in self._lines.values():
            self.ax.draw_artist(line)
        self.ax_dice.draw_artist(self._dice_line)
