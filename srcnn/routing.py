"""Which shipped model fits a lossless small photo, read from how much fine detail it carries.

The clean model learned one way of making small images, PIL's antialiased bicubic, which softens
what lies near the small image's finest scale; it restores that detail, and so over-sharpens a
small image that kept it (OpenCV's unfiltered resize, nearest neighbour, a sharpened thumbnail):
below bicubic on those. The general model learned a mix of ways (srcnn/degradations.py) and pays
part of the clean model's gain on the protocol for it. The choice between them is made from the
small image alone, before the bicubic enlargement:

    profile = log power of the luma's spectrum in rings from 0.02 to 0.71 cycles per pixel, its mean
              removed (so brightness and contrast do not count, only the spectrum's shape)
    score   = profile . weights   (a linear discriminant, fitted by docs/fit_router.py on photos the
              benchmarks never use: T91 and 180 of BSD200 made small by each way of the suite)
    model   = general if score > threshold else clean

NumPy only (no TensorFlow): docs/fit_router.py fits it, checkpoints.auto_choice applies it.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from srcnn.metrics import Y_WEIGHTS

# Cycles per pixel: 24 rings up to the corners of the spectrum (0.5 on each axis), where an
# antialiased downscale leaves least and aliasing folds most.
BAND_EDGES = np.linspace(0.02, np.sqrt(0.5), 25)
MAX_SIDE = 1024  # a larger image is scored on its centre crop: the spectrum's shape is the same
MIN_PADDED = 64  # a smaller image is zero-padded, so every ring holds frequencies
FLAT_STD = 0.5  # grey levels: an image flatter than this has no spectrum to read (clean, the protocol's)
MIN_SIDE = 16  # pixels: a narrower image has too few frequencies to read (clean too)


def spectral_profile(pixels: np.ndarray) -> np.ndarray | None:
    """(height, width, 3) uint8 -> the mean-removed log10 power of its luma in each ring of
    BAND_EDGES; None for an image too flat or too small to tell."""
    height, width = pixels.shape[:2]
    if min(height, width) < MIN_SIDE:
        return None
    top, left = max(0, (height - MAX_SIDE) // 2), max(0, (width - MAX_SIDE) // 2)
    crop = pixels[top : top + MAX_SIDE, left : left + MAX_SIDE, :3]  # before any copy: a photo may be huge
    luma = crop.astype(np.float64) @ np.asarray(Y_WEIGHTS[:3])  # BT.601 weights, no offset
    if luma.std() < FLAT_STD:
        return None
    height, width = luma.shape
    # A Hann window, so the image's borders (a jump where the FFT wraps it round) add no fine detail.
    windowed = (luma - luma.mean()) * np.outer(np.hanning(height), np.hanning(width))
    shape = (max(height, MIN_PADDED), max(width, MIN_PADDED))
    power = np.abs(np.fft.rfft2(windowed, s=shape)) ** 2
    radius = np.hypot(np.fft.fftfreq(shape[0])[:, None], np.fft.rfftfreq(shape[1])[None, :])
    ring = np.digitize(radius, BAND_EDGES) - 1  # -1 and len(BAND_EDGES) - 1: outside every ring
    inside = (ring >= 0) & (ring < len(BAND_EDGES) - 1)
    sums = np.bincount(ring[inside], weights=power[inside], minlength=len(BAND_EDGES) - 1)
    counts = np.bincount(ring[inside], minlength=len(BAND_EDGES) - 1)
    log_power = np.log10(sums / np.maximum(counts, 1) + 1e-12)
    return log_power - log_power.mean()


@dataclass(frozen=True)
class Router:
    """A linear discriminant over spectral_profile and the score above which the general model fits."""

    weights: tuple[float, ...]
    threshold: float
    fitted_on: str = ""  # what it was fitted on, for the record

    def score(self, pixels: np.ndarray) -> float | None:
        """How much the small image looks made some other way than PIL's bicubic (higher: more);
        None for a flat image."""
        profile = spectral_profile(pixels)
        return None if profile is None else float(profile @ np.asarray(self.weights))

    def choose(self, pixels: np.ndarray) -> tuple[str, str]:
        """("clean" or "general", why) for one small image."""
        score = self.score(pixels)
        if score is None:
            return "clean", "too flat or too small to read its fine detail"
        if score > self.threshold:
            return "general", f"fine detail {score:.2f} > {self.threshold:.2f}: not a smooth bicubic downscale"
        return "clean", f"fine detail {score:.2f} <= {self.threshold:.2f}: a smooth downscale"

    def save(self, path: str | os.PathLike) -> None:
        from srcnn.files import write_text_atomic

        write_text_atomic(Path(path), json.dumps(asdict(self), indent=1) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike) -> Router:
        """The router saved at `path`; a ValueError naming the file if it is not one."""
        try:
            values = json.loads(Path(path).read_text(encoding="utf-8"))
            weights = tuple(float(value) for value in values["weights"])
            threshold = float(values["threshold"])
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ValueError(f"{path}: not a router file ({type(error).__name__}: {error})") from None
        if len(weights) != len(BAND_EDGES) - 1:
            raise ValueError(f"{path}: {len(weights)} weights, expected {len(BAND_EDGES) - 1}")
        return cls(weights, threshold, str(values.get("fitted_on", "")))


def fit_weights(smooth: np.ndarray, other: np.ndarray, ridge: float = 1e-3) -> np.ndarray:
    """Fisher's linear discriminant between two sets of profiles (rows): the direction that best
    separates their means relative to their spread, scaled so the two means lie 1 apart."""
    spread = np.cov(smooth.T) + np.cov(other.T) + ridge * np.eye(smooth.shape[1])
    weights = np.linalg.solve(spread, other.mean(axis=0) - smooth.mean(axis=0))
    return weights / float((other.mean(axis=0) - smooth.mean(axis=0)) @ weights)
