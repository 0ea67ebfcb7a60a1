"""Losses: Dice (plain and noise-weighted), adversarial (hinge, least squares), reconstruction."""

from .adversarial import hinge_d_loss, hinge_g_loss, lsgan_d_loss, lsgan_g_loss
from .segmentation import dice_loss, noise_weighted_dice_loss, soft_dice

__all__ = ["dice_loss", "hinge_d_loss", "hinge_g_loss", "lsgan_d_loss", "lsgan_g_loss", "noise_weighted_dice_loss", "soft_dice"]
