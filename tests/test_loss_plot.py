"""The dock's loss plot: curves blitted over a cached background, so a redraw is never a long freeze."""

import time

import numpy as np

from napari_weakseg.widgets.loss_plot import LossPlot, decade_limits


def test_decade_limits_change_only_past_a_power_of_ten():
    assert decade_limits([0.2, 0.9]) == (0.0, 1.0)
    assert decade_limits([0.2, 3.0]) == (0.0, 10.0) == decade_limits([0.01, 9.9])
    assert decade_limits([-0.5, 2.0]) == (-1.0, 10.0)
    assert decade_limits([]) == (0.0, 1.0)


def _pixels(plot) -> np.ndarray:
    return np.asarray(plot.buffer_rgba())[..., :3].astype(int).copy()


def test_curves_are_drawn_and_redraws_are_cheap(qtbot):
    from napari.qt import get_qapp

    plot = LossPlot()
    qtbot.addWidget(plot)
    plot.resize(400, 260)
    plot.show()
    qtbot.waitExposed(plot)
    plot.clear(total_steps=400)
    empty = _pixels(plot)
    for step in range(1, 201):
        plot.add_losses(step, {"seg": 1 / step, "rec": 0.3, "disc_loss": 9.0})
    assert set(plot.losses) == {"seg", "rec"}  # a phase's total (*_loss) is not a term
    plot.add_validation(200, 0.5)
    assert np.array_equal(_pixels(plot), empty)  # points are only recorded...
    plot.redraw()  # ...until the owner asks for a redraw
    get_qapp().processEvents()
    drawn = _pixels(plot)
    assert (np.abs(drawn - empty).sum(-1) > 60).sum() > 300  # the curves, the legend, the Dice point
    # more steps in the same decades: restore the background, draw the curves, blit
    times = []
    for step in range(201, 221):
        plot.add_losses(step, {"seg": 0.2, "rec": 0.3})
        t = time.perf_counter()
        plot.add_validation(step, 0.6)
        plot.redraw()
        get_qapp().processEvents()
        times.append(time.perf_counter() - t)
    assert plot._limits == (400, (0.0, 1.0))  # the axes never changed, so no full draw was needed
    assert (np.abs(_pixels(plot) - drawn).sum(-1) > 60).sum() > 0  # but the picture did
    assert np.median(times) < 0.03
    plot.clear()
    assert plot.steps == [] and plot.losses == {} and plot.total_steps is None
