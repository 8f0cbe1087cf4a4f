"""Which shipped model fits a lossless small photo, read from the small photo itself.

The clean model learned one way of making small images, PIL's antialiased bicubic, which softens
what lies near the small image's finest scale; it restores that detail, and so over-sharpens a
small image that kept it (OpenCV's unfiltered resize, nearest neighbour) or was sharpened after
(phones, web pipelines): 2-3 dB below bicubic on those. Each kind of small image has the model that
does best on it, and the router reads the kind from the small image before the bicubic enlargement:

    tiles   = the luma's 32x32 pieces on a grid that hold some detail (std >= 4 grey levels),
              each with its mean removed and divided by its std (only the shape of the detail counts)
    reading = a small CNN's log-probability of each kind (smooth, box-filtered, unfiltered,
              sharpened), averaged over the tiles, plus a bias per kind (fitted so that the
              benchmark protocol keeps the clean model; at 3x and 4x, biases fitted for the x2
              model picked, then the x3 or x4 second pass: `scale_bias`)
    model   = the most likely kind's model (router.json's `models`; the shipped router: smooth ->
              clean, sharpened -> sharpened, box-filtered and unfiltered -> unfiltered), or, for a
              router fitted with a `gain` table, the model of the largest expected gain: each kind's
              share of the reading (its softmax) times each model's mean gain over bicubic on small
              images of that kind, measured on held-out photos

The expected gain would hedge (a photo read as half smooth, half sharpened goes to a model that does
well enough on both); docs/fit_router.py scores it beside the kind's own model on every fit and
keeps the better (the shipped router: the kind's own model, docs/degradations.md says why).

A global spectrum tells antialiased from unfiltered, but not a sharpened photo from a detailed one:
an unsharp mask's halos sit beside edges, which a CNN on local pieces sees (docs/degradations.md).
docs/fit_router.py trains the CNN and the biases on photos the benchmarks never use.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from srcnn.metrics import Y_WEIGHTS

TILE = 32  # pixels of the small image: a few edges' halos or a stretch of aliasing
MIN_TILE_STD = 4.0  # grey levels: a flatter tile holds nothing to read
MAX_TILES = 256  # a larger image is read on that many tiles, evenly spread over it
CLASSIFIER_NAME = "classifier.keras"
ROUTER_NAME = "router.json"


def luma_tiles(pixels: np.ndarray, max_tiles: int = MAX_TILES, stride: int = TILE) -> np.ndarray:
    """(height, width, 3) uint8 -> (n, TILE, TILE, 1) float32: the luma's textured tiles on a grid
    of step `stride` (TILE: side by side; less: overlapping, a lab try in docs/router_floor.py), each
    normalized to mean 0 and std 1; n is 0 for an image too flat or too small to read."""
    luma = pixels[..., :3].astype(np.float32) @ np.asarray(Y_WEIGHTS[:3], np.float32)
    if min(luma.shape) < TILE:
        return np.zeros((0, TILE, TILE, 1), np.float32)
    tiles = np.lib.stride_tricks.sliding_window_view(luma, (TILE, TILE))[::stride, ::stride].reshape(-1, TILE, TILE)
    spread = tiles.std(axis=(1, 2))
    tiles, spread = tiles[spread >= MIN_TILE_STD], spread[spread >= MIN_TILE_STD]
    if len(tiles) > max_tiles:
        keep = np.linspace(0, len(tiles) - 1, max_tiles).round().astype(int)
        tiles, spread = tiles[keep], spread[keep]
    normalized = (tiles - tiles.mean(axis=(1, 2), keepdims=True)) / spread[:, None, None]
    return normalized[..., None].astype(np.float32)


def build_classifier(kinds: int):
    """The tile classifier: four 3x3 convolutions (one strided), global average, a logit per kind
    (65,252 parameters for four kinds; at half the width, 16,500, it read 67% of held-out tiles
    right after 40 epochs, against 72% on the same tiles: docs/degradations.md, "The router")."""
    import keras

    inputs = keras.Input((None, None, 1), name="tile")
    x = inputs
    for filters, stride in ((32, 1), (32, 1), (64, 2), (64, 1)):
        x = keras.layers.Conv2D(filters, 3, strides=stride, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(kinds, name="kind")(x), name="degradation_classifier")


@dataclass
class Router:
    """The kinds the classifier tells apart, the shipped model for each, and the biases added to
    their mean log-probabilities; `classifier` is the Keras model (loaded from beside router.json)."""

    kinds: tuple[str, ...]
    models: tuple[str, ...]
    bias: tuple[float, ...]
    fitted_on: str = ""
    # gain[k][m]: models[m]'s mean Y-PSNR gain over bicubic (dB) on held-out small images of
    # kinds[k] (docs/fit_router.py); empty: each kind goes to its own model.
    gain: tuple[tuple[float, ...], ...] = ()
    # The biases for a small image that is enlarged 3x or 4x ({"3": biases, ...}), fitted for the
    # passes that enlarge it (docs/fit_router.py --scale); `bias` for any scale not named.
    scale_bias: dict[str, tuple[float, ...]] = field(default_factory=dict)
    classifier: object = field(default=None, repr=False)

    def reading(self, pixels: np.ndarray, scale: int = 2, stride: int = TILE) -> np.ndarray | None:
        """Each kind's mean log-probability over the image's tiles (luma_tiles), plus its bias for a
        small image enlarged `scale` times; None if it has no tiles."""
        tiles = luma_tiles(pixels, stride=stride)
        if not len(tiles):
            return None
        logits = np.asarray(self.classifier.predict_on_batch(tiles), np.float64)
        log_probability = logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)
        return log_probability.mean(axis=0) + np.asarray(self.scale_bias.get(str(scale), self.bias))

    def __post_init__(self) -> None:
        if not len(self.kinds) == len(self.models) == len(self.bias) >= 2:
            raise ValueError("kinds, models and bias must be lists of one length (2 or more)")
        if any(len(biases) != len(self.kinds) for biases in self.scale_bias.values()):
            raise ValueError("scale_bias must hold a bias per kind for each scale")
        if "2" in self.scale_bias:
            raise ValueError("scale_bias is for 3x and 4x; `bias` is the one for 2x")
        if self.gain and (
            len(self.gain) != len(self.kinds)
            or any(len(row) != len(self.models) for row in self.gain)
            or not np.isfinite(self.gain).all()
        ):
            raise ValueError("gain must hold a row per kind and a finite value per model")

    @staticmethod
    def shares(reading: np.ndarray) -> np.ndarray:
        """Each kind's share of a reading (its softmax)."""
        return np.exp(reading - np.logaddexp.reduce(reading))

    def expected_gain(self, reading: np.ndarray) -> np.ndarray:
        """Each model's gain over bicubic (dB) expected for a reading: its mean gain on each kind,
        weighed by the kind's share of the reading."""
        return self.shares(reading) @ np.asarray(self.gain, np.float64)

    def pick(self, reading: np.ndarray) -> int:
        """The index (in `models`) of the model for a reading."""
        return int(np.argmax(self.expected_gain(reading) if self.gain else reading))

    def choose(self, pixels: np.ndarray, scale: int = 2) -> tuple[str, str]:
        """(shipped model name, why) for one small image to be enlarged `scale` times (at 3x and 4x,
        the x2 model that runs first)."""
        reading = self.reading(pixels, scale)
        if reading is None:
            return self.models[0], "too flat or too small to read how it was made"
        kind = int(np.argmax(reading))
        share = self.shares(reading)[kind]
        why = f"reads as {self.kinds[kind]} ({share:.0%})"
        if not self.gain:
            model = self.models[kind]
            shared = [name for name, goes in zip(self.kinds, self.models, strict=True) if goes == model]
            if len(shared) > 1:  # say so, or "box-filtered" beside "the unfiltered model" reads as a slip
                why += f"; the {model} model takes {' and '.join(shared)} images"
            return model, why
        pick = self.pick(reading)
        expected = self.expected_gain(reading)[pick]
        return self.models[pick], f"{why}; expected gain over bicubic {expected:+.2f} dB, the most of the models"

    def save(self, folder: str | os.PathLike) -> None:
        from srcnn.files import write_atomic, write_text_atomic

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        record = {key: value for key, value in asdict(self).items() if key != "classifier"}
        write_atomic(folder / CLASSIFIER_NAME, self.classifier.save)
        write_text_atomic(folder / ROUTER_NAME, json.dumps(record, indent=1) + "\n")

    @classmethod
    def load(cls, folder: str | os.PathLike) -> Router:
        """The router saved in `folder`; a ValueError naming the file if it is not one."""
        path = Path(folder) / ROUTER_NAME
        try:
            values = json.loads(path.read_text(encoding="utf-8"))
            kinds = tuple(str(kind) for kind in values["kinds"])
            models = tuple(str(model) for model in values["models"])
            bias = tuple(float(value) for value in values["bias"])
            gain = tuple(tuple(float(value) for value in row) for row in values.get("gain", ()))
            scale_bias = {
                str(int(scale)): tuple(float(value) for value in biases)
                for scale, biases in values.get("scale_bias", {}).items()
            }
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            raise ValueError(f"{path}: not a router file ({type(error).__name__}: {error})") from None
        try:
            router = cls(kinds, models, bias, str(values.get("fitted_on", "")), gain, scale_bias)
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from None
        import keras

        classifier_path = Path(folder) / CLASSIFIER_NAME
        try:
            classifier = keras.models.load_model(classifier_path, compile=False)
        except Exception as error:  # Keras raises many kinds for a missing or broken file
            raise ValueError(f"{classifier_path}: not a classifier ({type(error).__name__})") from None
        if classifier.output_shape[-1] != len(kinds):
            raise ValueError(f"{classifier_path}: {classifier.output_shape[-1]} outputs for {len(kinds)} kinds")
        router.classifier = classifier
        return router
