"""Image quality metrics in NumPy: PSNR and SSIM on uint8 images, RGB or the Y channel.

SSIM follows Wang et al. (2004) as the SR literature computes it: an 11x11 Gaussian window with
sigma 1.5, K1 = 0.01, K2 = 0.03, 'valid' filtering, averaged over the map (and over channels).
"""

from __future__ import annotations

import numpy as np


def rgb_to_y(rgb: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 luma in [16, 235] from RGB in [0, 255], as float64 (the SRCNN paper's Y)."""
    rgb = np.asarray(rgb, dtype=np.float64)
    return 16.0 + (65.481 * rgb[..., 0] + 128.553 * rgb[..., 1] + 24.966 * rgb[..., 2]) / 255.0


def shave(image: np.ndarray, border: int) -> np.ndarray:
    """Drop `border` pixels on every side (the SR convention, since borders lack context)."""
    if border <= 0:
        return image
    if image.shape[0] <= 2 * border or image.shape[1] <= 2 * border:
        raise ValueError(f"image {image.shape[:2]} is too small to shave {border} pixels")
    return image[border:-border, border:-border]


def psnr(reference: np.ndarray, test: np.ndarray, peak: float = 255.0) -> float:
    """Peak signal-to-noise ratio in dB over all values; infinite for identical images."""
    reference = np.asarray(reference, dtype=np.float64)
    test = np.asarray(test, dtype=np.float64)
    if reference.shape != test.shape:
        raise ValueError(f"shapes differ: {reference.shape} vs {test.shape}")
    mse = np.mean((reference - test) ** 2)
    return float("inf") if mse == 0 else float(10.0 * np.log10(peak**2 / mse))


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    offsets = np.arange(size, dtype=np.float64) - (size - 1) / 2
    window = np.exp(-(offsets**2) / (2 * sigma**2))
    return window / window.sum()


def _filter_valid(image: np.ndarray, window: np.ndarray) -> np.ndarray:
    """Separable 2D correlation of a (height, width) array, 'valid' region only."""
    size = len(window)
    rows = sum(window[k] * image[k : image.shape[0] - size + 1 + k, :] for k in range(size))
    return sum(window[k] * rows[:, k : rows.shape[1] - size + 1 + k] for k in range(size))


def _ssim_channel(reference: np.ndarray, test: np.ndarray, peak: float) -> float:
    window = _gaussian_window()
    c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2
    mu_x, mu_y = _filter_valid(reference, window), _filter_valid(test, window)
    var_x = _filter_valid(reference * reference, window) - mu_x**2
    var_y = _filter_valid(test * test, window) - mu_y**2
    cov_xy = _filter_valid(reference * test, window) - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov_xy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return float(ssim_map.mean())


def ssim(reference: np.ndarray, test: np.ndarray, peak: float = 255.0) -> float:
    """Structural similarity of two (height, width) or (height, width, channels) images."""
    reference = np.asarray(reference, dtype=np.float64)
    test = np.asarray(test, dtype=np.float64)
    if reference.shape != test.shape:
        raise ValueError(f"shapes differ: {reference.shape} vs {test.shape}")
    if min(reference.shape[:2]) < 11:
        raise ValueError(f"SSIM needs images of at least 11x11 pixels, got {reference.shape[:2]}")
    if reference.ndim == 2:
        return _ssim_channel(reference, test, peak)
    return float(np.mean([_ssim_channel(reference[..., c], test[..., c], peak) for c in range(reference.shape[2])]))
