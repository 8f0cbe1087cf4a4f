"""PSNR, SSIM and Y against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from srcnn.metrics import psnr, rgb_to_y, shave, ssim


def test_psnr_hand_computed():
    reference = np.zeros((4, 4), np.uint8)
    test = reference.copy()
    test[0, 0] = 4  # MSE = 16 / 16 = 1
    assert psnr(reference, test) == pytest.approx(20 * math.log10(255))
    assert psnr(reference, reference) == math.inf


def test_ssim_identical_is_one_and_noise_lowers_it():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (32, 32, 3)).astype(np.uint8)
    assert ssim(image, image) == pytest.approx(1.0)
    noisy = np.clip(image + rng.normal(0, 30, image.shape), 0, 255)
    assert ssim(image, noisy) < 0.95


def test_ssim_gives_the_literatures_number():
    """Pinned to the value of the project's former hand-written SSIM (Wang et al. 2004: 11x11
    Gaussian window, sigma 1.5, valid region) on this input, so a change of settings shows."""
    rng = np.random.default_rng(1)
    y, x = np.mgrid[0:40, 0:48]
    image = 120 + 60 * np.sin(x / 5.0) * np.cos(y / 7.0)
    noisy = np.clip(image + rng.normal(0, 10, image.shape), 0, 255)
    assert ssim(image, noisy) == pytest.approx(0.7119430895283996, abs=1e-9)


def test_ssim_of_constant_shift_hand_computed():
    # Two flat images: variances and covariance are 0, so SSIM is the luminance term alone.
    a, b = np.full((16, 16), 100.0), np.full((16, 16), 110.0)
    c1 = (0.01 * 255) ** 2
    expected = (2 * 100 * 110 + c1) / (100**2 + 110**2 + c1)
    assert ssim(a, b) == pytest.approx(expected)


def test_y_channel_bt601():
    assert rgb_to_y(np.array([0, 0, 0])) == pytest.approx(16)
    assert rgb_to_y(np.array([255, 255, 255])) == pytest.approx(235)
    assert rgb_to_y(np.array([255, 0, 0])) == pytest.approx(16 + 65.481)


def test_shave():
    assert shave(np.zeros((10, 12)), 2).shape == (6, 8)
    with pytest.raises(ValueError):
        shave(np.zeros((4, 4)), 2)


def test_pure_white_and_black_regions_are_counted_inside_only():
    from srcnn.metrics import flat_region_kept

    original = np.full((12, 12, 3), 255, np.uint8)
    original[:, 6:] = 0
    output = original.copy()
    output[5, 2] = 254  # inside the white region (its 5x5 neighbourhood is all white)
    output[5, 5] = 250  # at the edge of the white region: not counted
    assert flat_region_kept(original, 255, output) == (8 * 2, 8 * 2 - 1)  # rows 2-9, columns 2-3
    assert flat_region_kept(original, 0, output) == (8 * 2, 8 * 2)  # columns 8-9
