"""Losses against values computed by hand."""

from __future__ import annotations

import pytest
import torch

from napari_weakseg.losses import dice_loss, hinge_d_loss, hinge_g_loss, lsgan_d_loss, lsgan_g_loss, noise_weighted_dice_loss, soft_dice


def t(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32)


PROB = t([[[[0.5, 1.0], [0.0, 0.25]]]])  # (1, 1, 2, 2)
TARGET = t([[[[1.0, 1.0], [0.0, 0.0]]]])


def test_soft_dice_by_hand():
    # intersection 0.5 + 1 = 1.5; sum of prob 1.75 + sum of target 2 = 3.75; 2 * 1.5 / 3.75 = 0.8
    assert soft_dice(PROB, TARGET).item() == pytest.approx(0.8, abs=1e-6)
    assert dice_loss(PROB, TARGET).item() == pytest.approx(0.2, abs=1e-6)
    assert soft_dice(TARGET, TARGET).item() == pytest.approx(1.0, abs=1e-6)
    assert dice_loss(1 - TARGET, TARGET).item() == pytest.approx(1.0, abs=1e-6)


def test_soft_dice_weights_by_hand():
    w = t([[[[2.0, 1.0], [1.0, 1.0]]]])
    # intersection 2*0.5 + 1 = 2; total 2*(0.5+1) + (1+1) + 0 + 0.25 = 5.25
    assert soft_dice(PROB, TARGET, w).item() == pytest.approx(4 / 5.25, abs=1e-6)
    assert dice_loss(PROB, TARGET, w).item() == pytest.approx(1 - 4 / 5.25, abs=1e-6)
    # zero weight removes a pixel entirely: only the wrong 0.25 remains outside the lesion
    w0 = t([[[[0.0, 1.0], [1.0, 1.0]]]])  # intersection 1; total 2 + 0.25
    assert soft_dice(PROB, TARGET, w0).item() == pytest.approx(2 / 2.25, abs=1e-6)
    # uniform weights change nothing
    assert soft_dice(PROB, TARGET, torch.full_like(PROB, 3.0)).item() == pytest.approx(0.8, abs=1e-6)


def test_soft_dice_pools_over_the_batch_and_averages_classes():
    prob = torch.cat([PROB, t([[[[1.0, 0.0], [0.0, 0.0]]]])])  # (2, 1, 2, 2)
    target = torch.cat([TARGET, torch.zeros(1, 1, 2, 2)])
    # pooled: intersection 1.5; total 3.75 + 1 = 4.75 (not the mean of per-sample Dice)
    assert soft_dice(prob, target).item() == pytest.approx(3 / 4.75, abs=1e-6)
    two = torch.cat([PROB, TARGET], dim=1)  # class 0: 0.8; class 1: perfect
    assert soft_dice(two, torch.cat([TARGET, TARGET], dim=1)).item() == pytest.approx(0.9, abs=1e-6)


def test_soft_dice_empty_target():
    empty = torch.zeros(1, 1, 2, 2)
    assert soft_dice(empty, empty).item() == pytest.approx(1.0)  # nothing to find, nothing found
    assert dice_loss(empty, empty).item() == pytest.approx(0.0, abs=1e-6)
    assert dice_loss(PROB, empty).item() == pytest.approx(1.0, abs=1e-5)  # any false positive: ~1
    assert torch.isfinite(soft_dice(empty, empty))


def test_dice_loss_gradient_is_finite_and_points_the_right_way():
    prob = PROB.clone().requires_grad_(True)
    dice_loss(prob, TARGET).backward()
    g = prob.grad[0, 0]
    assert torch.isfinite(g).all()
    assert g[0, 0] < 0 and g[1, 1] > 0  # raise the missed lesion pixel, lower the false positive


REAL = t([0.5, 2.0, -1.0])
FAKE = t([-2.0, 0.5, 0.0])


def test_hinge_by_hand():
    # relu(1 - real) = [0.5, 0, 2] -> 5/6; relu(1 + fake) = [0, 1.5, 1] -> 5/6
    assert hinge_d_loss(REAL, FAKE).item() == pytest.approx(5 / 3, abs=1e-6)
    assert hinge_g_loss(FAKE).item() == pytest.approx(0.5, abs=1e-6)  # -mean(fake) = 1.5 / 3
    assert hinge_d_loss(t([1.0, 3.0]), t([-1.0, -5.0])).item() == 0.0  # beyond the margins


def test_least_squares_by_hand():
    # 0.5 * mean([0.25, 1, 4]) + 0.5 * mean([4, 0.25, 0]) = 0.5 * 5.25/3 + 0.5 * 4.25/3
    assert lsgan_d_loss(REAL, FAKE).item() == pytest.approx(0.5 * 5.25 / 3 + 0.5 * 4.25 / 3, abs=1e-6)
    # mean([9, 0.25, 1])
    assert lsgan_g_loss(FAKE).item() == pytest.approx(10.25 / 3, abs=1e-6)


def test_multiscale_losses_average_over_scales():
    real2, fake2 = t([[3.0, -1.0], [0.0, 1.0]]), t([[0.0]])  # a second scale of another shape
    # scale 2: relu(1 - real2) = [0, 2, 1, 0] -> 0.75; relu(1 + fake2) = 1
    assert hinge_d_loss([REAL, real2], [FAKE, fake2]).item() == pytest.approx((5 / 3 + 1.75) / 2, abs=1e-6)
    assert hinge_g_loss([FAKE, fake2]).item() == pytest.approx((0.5 + 0.0) / 2, abs=1e-6)
    # least squares, scale 2: 0.5 * mean([4, 4, 1, 0]) + 0.5 * 0 = 1.125; generator: mean([1]) = 1
    assert lsgan_d_loss([REAL, real2], [FAKE, fake2]).item() == pytest.approx((0.5 * 5.25 / 3 + 0.5 * 4.25 / 3 + 1.125) / 2, abs=1e-6)
    assert lsgan_g_loss([FAKE, fake2]).item() == pytest.approx((10.25 / 3 + 1.0) / 2, abs=1e-6)
    # tuples work like lists; one-element lists like single tensors
    assert hinge_g_loss((FAKE, fake2)).item() == pytest.approx(0.25, abs=1e-6)
    assert hinge_d_loss([REAL], [FAKE]).item() == pytest.approx(hinge_d_loss(REAL, FAKE).item())


def test_noise_weighted_dice():
    g = torch.Generator().manual_seed(0)
    pseudo = (torch.rand(2, 1, 8, 8, generator=g) > 0.5).float()
    # agreeing everywhere: all weights are exactly 1, the plain soft Dice
    for p in (pseudo, torch.rand(2, 1, 8, 8, generator=g)):
        assert torch.equal(noise_weighted_dice_loss(p, p), dice_loss(p, p, torch.ones_like(p)))
    assert noise_weighted_dice_loss(pseudo, pseudo).item() == dice_loss(pseudo, pseudo).item()
    # by hand: weights 1 - |p - g| = 0.5, 1, 1, 0.75 -> intersection 0.5*0.5 + 1 = 1.25; total 0.5*1.5 + 2 + 0 + 0.75*0.25
    assert noise_weighted_dice_loss(PROB, TARGET).item() == pytest.approx(1 - 2.5 / (0.75 + 2 + 0.1875), abs=1e-6)
    # a disagreeing pixel counts less than under the plain Dice: its gradient is smaller
    prob = torch.full((1, 1, 2, 2), 0.9)
    prob[0, 0, 1, 1] = 0.1  # the network says background where the pseudo label says lesion
    prob.requires_grad_(True)
    noise_weighted_dice_loss(prob, torch.ones_like(prob)).backward()
    weighted = prob.grad.clone()
    prob.grad = None
    dice_loss(prob, torch.ones_like(prob)).backward()
    ratio = weighted / prob.grad
    assert ratio[0, 0, 1, 1] < ratio[0, 0, 0, 0]
    # the weights are detached: the gradient is that of a Dice with constant weights
    prob.grad = None
    noise_weighted_dice_loss(prob, torch.ones_like(prob)).backward()
    const = (1 - (prob - 1).abs()).detach()
    p2 = prob.detach().clone().requires_grad_(True)
    dice_loss(p2, torch.ones_like(p2), const).backward()
    torch.testing.assert_close(prob.grad, p2.grad)
