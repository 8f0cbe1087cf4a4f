"""Image quality metrics on uint8 images (PSNR, SSIM, BT.601 luma), as test.py reports them.

The project reports PSNR in three conventions, each where it has a reason, and names it there:
- "val PSNR" (train.py, history.csv; callbacks.psnr_rgb_float): RGB, the network's float output
  in [0, 1], not rounded. Computed in TensorFlow inside training, every epoch, cheaply; beside it
  val_psnr_y (callbacks.psnr_y_float), the same on BT.601 luma (Y_WEIGHTS), no border shaved.
- "RGB PSNR" (test.py on prepared pairs): RGB uint8, the model's output rounded as the PNG you get,
  over the whole 128x128 square, white padding included, peak 255: what a user of the blog's
  pipeline sees.
- "Y-PSNR" (test.py --benchmark): the SR literature's protocol: BT.601 luma, `scale` pixels shaved
  from each border, peak 255; the only one comparable with published numbers.
"""

from __future__ import annotations

import numpy as np

# ITU-R BT.601: luma levels per 255 of red, green and blue (they add up to 219, the span 16-235).
Y_WEIGHTS = (65.481, 128.553, 24.966)


def rgb_to_y(rgb: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 luma in [16, 235] from RGB in [0, 255], as float64 (the SRCNN paper's Y)."""
    rgb = np.asarray(rgb, dtype=np.float64)
    red, green, blue = Y_WEIGHTS
    return 16.0 + (red * rgb[..., 0] + green * rgb[..., 1] + blue * rgb[..., 2]) / 255.0


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


def ssim(reference: np.ndarray, test: np.ndarray, peak: float = 255.0) -> float:
    """Structural similarity of two (height, width) or (height, width, channels) images.

    scikit-image's SSIM with the literature's settings: a Gaussian window (sigma 1.5, 11x11),
    population covariances, K1 = 0.01, K2 = 0.03; the map is averaged without its 5-pixel border
    (the 'valid' region of the window) and then over channels.
    """
    from skimage.metrics import structural_similarity

    reference = np.asarray(reference, dtype=np.float64)
    test = np.asarray(test, dtype=np.float64)
    if reference.shape != test.shape:
        raise ValueError(f"shapes differ: {reference.shape} vs {test.shape}")
    if min(reference.shape[:2]) < 11:
        raise ValueError(f"SSIM needs images of at least 11x11 pixels, got {reference.shape[:2]}")
    return float(
        structural_similarity(
            reference,
            test,
            data_range=peak,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            channel_axis=2 if reference.ndim == 3 else None,
        )
    )


def benchmark_metrics(high_res: np.ndarray, image: np.ndarray, border: int) -> dict[str, float]:
    """Y-channel PSNR and SSIM and RGB PSNR of a uint8 image against the original, borders shaved."""
    high_res_y, image_y = shave(rgb_to_y(high_res), border), shave(rgb_to_y(image), border)
    return {
        "psnr_y": psnr(high_res_y, image_y),
        "ssim_y": ssim(high_res_y, image_y),
        "psnr_rgb": psnr(shave(high_res, border), shave(image, border)),
    }


def flat_region(original: np.ndarray, level: int) -> np.ndarray:
    """The pixels whose 5x5 neighbourhood is pure `level` in every channel of the original (a
    boolean mask; the image's outer 2 pixels never are)."""
    flat = np.all(np.asarray(original) == level, axis=-1)
    padded = np.pad(flat, 2, constant_values=False)
    return np.lib.stride_tricks.sliding_window_view(padded, (5, 5)).all(axis=(-2, -1))


def flat_region_kept(original: np.ndarray, level: int, *outputs: np.ndarray) -> tuple[int, ...]:
    """(pixels of the original's flat_region at `level`, then for each output how many of them it
    keeps exactly at `level`): does pure white (255) stay white, black (0) black? Catalogue photos
    need their white background exactly 255."""
    inside = flat_region(original, level)
    kept = (int((inside & np.all(np.asarray(output) == level, axis=-1)).sum()) for output in outputs)
    return int(inside.sum()), *kept
