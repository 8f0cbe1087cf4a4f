"""The ways a small photo gets made: a suite of named, seeded downscalers and a mix of them for training.

The blog makes every low-res image one way (PIL's antialiased bicubic), and so does the SR benchmark
protocol. Users' small photos come from everywhere: OpenCV's `cv2.resize` (no antialiasing),
browsers and phones (which sharpen), cameras (blur, sensor noise), JPEG. Each way is a *recipe*, a
small JSON-able dict such as {"name": "noise", "sigma": 3.0, "seed": 7}: `downscale` makes the small
image from a recipe, the same pixels on every machine, and prep records the recipe with each pair.

PIL, NumPy and OpenCV (opencv-python-headless, the field's library) only; no TensorFlow.
"""

from __future__ import annotations

import hashlib
import io
import math
import random

import numpy as np
from PIL import Image, ImageFilter

PIL_FILTERS = {
    "bicubic": Image.Resampling.BICUBIC,  # the blog's and the benchmark protocol's
    "bilinear": Image.Resampling.BILINEAR,
    "lanczos": Image.Resampling.LANCZOS,
    "box": Image.Resampling.BOX,  # the mean of each block: OpenCV's INTER_AREA at integer scales
    # One pixel of each block: at 2x PIL keeps pixel 2i+1 (as scikit-image does), OpenCV 2i (as
    # NumPy's image[::2, ::2] does), so their small images sit half a pixel apart, either way.
    "nearest": Image.Resampling.NEAREST,
}
OPENCV_FLAGS = {
    "cv2-cubic": "INTER_CUBIC",
    "cv2-linear": "INTER_LINEAR",
    "cv2-area": "INTER_AREA",
    "cv2-nearest": "INTER_NEAREST",
}

# The suite test.py --degradation all scores, one fixed recipe each; the parameters are typical of
# their kind (a camera's slight blur, mild sensor noise, a web pipeline's unsharp mask, a common JPEG).
SUITE: dict[str, dict] = {
    "bicubic": {"name": "bicubic"},
    "bilinear": {"name": "bilinear"},
    "lanczos": {"name": "lanczos"},
    "box": {"name": "box"},
    "nearest": {"name": "nearest"},
    "cv2-cubic": {"name": "cv2-cubic"},
    "cv2-linear": {"name": "cv2-linear"},
    "cv2-area": {"name": "cv2-area"},
    "cv2-nearest": {"name": "cv2-nearest"},
    "blur": {"name": "blur", "sigma": 0.8},
    "noise": {"name": "noise", "sigma": 3.0},
    "sharpen": {"name": "sharpen", "radius": 1.0, "percent": 100},
    "jpeg": {"name": "jpeg", "quality": 75},
}
DEFAULT = "bicubic"

# The training mix: (name, weight). PIL bicubic keeps the largest share, so the protocol's pairs stay
# common; the inputs that the clean model made worse than bicubic (OpenCV's unfiltered cubic and
# nearest, sharpening) weigh double. JPEG stays out: the JPEG models cover it (upscale.py picks them).
MIX_WEIGHTS: tuple[tuple[str, float], ...] = (
    ("bicubic", 3),
    ("bilinear", 1),
    ("lanczos", 1),
    ("box", 1),
    ("cv2-cubic", 2),
    ("cv2-area", 1),
    ("cv2-nearest", 2),
    ("blur", 1),
    ("noise", 1),
    ("sharpen", 2),
)
MIX = "mix"


def parse(text: str) -> dict:
    """A recipe from its command-line form: a suite name, optionally with its one parameter after a
    colon ('blur:1.2' = sigma, 'noise:5' = sigma, 'sharpen:150' = percent, 'jpeg:90' = quality)."""
    name, _, value = text.partition(":")
    if name not in SUITE:
        raise ValueError(f"unknown degradation {text!r} (known: {', '.join(SUITE)}, or {MIX} for training)")
    recipe = dict(SUITE[name])
    if value:
        key = PARAMETER.get(name)
        if key is None:
            raise ValueError(f"degradation {name!r} takes no parameter, got {text!r}")
        try:
            recipe[key] = int(value) if key in ("quality", "percent") else float(value)
        except ValueError:
            kind = "a whole number" if key in ("quality", "percent") else "a number"
            raise ValueError(f"degradation {text!r}: {value!r} is not {kind}") from None
        if not math.isfinite(recipe[key]):
            raise ValueError(f"degradation {text!r}: {value!r} is not a finite number")
    validate(recipe)
    return recipe


# The one parameter NAME:VALUE sets, per way that has one.
PARAMETER = {"blur": "sigma", "noise": "sigma", "sharpen": "percent", "jpeg": "quality"}


def validate(recipe: dict) -> None:
    """Refuse a recipe downscale() cannot make, with the reason."""
    name = recipe.get("name")
    if name not in SUITE:
        raise ValueError(f"unknown degradation {name!r} (known: {', '.join(SUITE)})")
    if name == "jpeg" and not 1 <= recipe.get("quality", 0) <= 100:
        raise ValueError(f"JPEG quality must be within 1-100, got {recipe.get('quality')}")
    for key in ("sigma", "radius"):
        if key in recipe and not 0 < recipe[key] <= 10:
            raise ValueError(f"degradation {name!r}: {key} must be within (0, 10], got {recipe[key]}")
    if name == "sharpen" and not 0 < recipe.get("percent", 0) <= 500:
        raise ValueError(f"degradation 'sharpen': percent must be within 1-500, got {recipe.get('percent')}")
    if recipe.get("base", "bicubic") not in PIL_FILTERS:
        raise ValueError(f"degradation {name!r}: base must be one of {', '.join(PIL_FILTERS)}, got {recipe['base']!r}")


def label(recipe: dict) -> str:
    """A short name for tables and file names: 'noise', or 'noise:5' when it differs from the suite's."""
    name = recipe["name"]
    own = {key: value for key, value in recipe.items() if key != "seed"}
    if own == SUITE[name]:
        return name
    key = PARAMETER.get(name)
    if key is not None and own == SUITE[name] | {key: own.get(key)}:
        return f"{name}:{own[key]:g}"  # what parse() reads back
    return f"{name}(" + ", ".join(f"{k}={v}" for k, v in own.items() if k != "name") + ")"  # a drawn mix recipe


def seed_from(text: str) -> int:
    """A 32-bit seed from any text (a photo's path, a copy number): the same on every machine."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:4], "big")


def is_mix(spec: str) -> bool:
    """`mix` (every way of MIX_WEIGHTS) or `mix:NAME,NAME` (only those, e.g. mix:sharpen), where a
    way may carry its own weight: `mix:cv2-cubic=3,cv2-nearest=1`."""
    return spec == MIX or spec.startswith(MIX + ":")


def mix_weights(spec: str) -> tuple[tuple[str, float], ...]:
    """The (way, weight) pairs a mix spec draws from, checked, in MIX_WEIGHTS' order:
    mix:sharpen,cv2-cubic=1 -> (("cv2-cubic", 1.0), ("sharpen", 2)); plain `mix` -> MIX_WEIGHTS."""
    if spec == MIX:
        return MIX_WEIGHTS
    # The suite's other ways (but JPEG: the JPEG models cover it) may join at weight 1, after the
    # mix's own, so that a mix of the mix's ways draws as before.
    known = dict(MIX_WEIGHTS) | {name: 1.0 for name in SUITE if name not in dict(MIX_WEIGHTS) and name != "jpeg"}
    asked: dict[str, float] = {}
    wrong = []
    for item in spec.partition(":")[2].split(","):
        name, equals, weight = (part.strip() for part in item.partition("="))
        try:
            value = float(weight.replace("_", "x")) if equals else known[name]
        except (KeyError, ValueError):
            value = math.nan
        if name not in known or name in asked or not 0 < value < math.inf:
            wrong.append(repr(item.strip()))
        asked[name] = value
    if wrong:
        raise ValueError(
            f"{spec!r}: a mix draws from {', '.join(known)}, each once, with an optional positive weight"
            f" (NAME=WEIGHT); got {', '.join(wrong)}"
        )
    return tuple((name, asked[name]) for name in known if name in asked)


def mix_ways(spec: str) -> tuple[str, ...]:
    """The ways a mix spec draws from, checked: mix:sharpen,cv2-cubic -> ("cv2-cubic", "sharpen")."""
    return tuple(name for name, _ in mix_weights(spec))


def draw_mix_recipe(seed: int, weights: tuple[tuple[str, float], ...] = MIX_WEIGHTS) -> dict:
    """One recipe of the training mix, drawn from `seed`: a downscaler by `weights` (MIX_WEIGHTS or
    some of its ways, see mix_weights) and, for the kinds with a strength, a strength from a range
    around the suite's (blur sigma 0.4-1.2, noise sigma 1-6, unsharp radius 0.6-1.6 at 30-130% on a
    bicubic or lanczos base)."""
    rng = random.Random(seed)
    names, chances = zip(*weights, strict=True)
    name = rng.choices(names, weights=chances)[0]
    if name == "blur":
        return {"name": name, "sigma": round(rng.uniform(0.4, 1.2), 3)}
    if name == "noise":
        return {"name": name, "sigma": round(rng.uniform(1.0, 6.0), 3), "seed": rng.getrandbits(32)}
    if name == "sharpen":
        return {
            "name": name,
            "radius": round(rng.uniform(0.6, 1.6), 3),
            "percent": rng.randint(30, 130),
            "base": rng.choice(("bicubic", "lanczos")),
        }
    return {"name": name}


def recipe_for(spec: str, seed: int) -> dict:
    """The recipe a pair gets from prep's --degradation SPEC: the named one (the noise seeded by
    `seed`), or one drawn from the mix (or a mix:NAME,... of some of its ways) with `seed`."""
    if is_mix(spec):
        return draw_mix_recipe(seed, mix_weights(spec))
    recipe = parse(spec)
    return recipe | {"seed": seed} if recipe["name"] == "noise" else recipe


def downscale(high_res: Image.Image, scale: int, recipe: dict) -> Image.Image:
    """The small image (size / scale) that `recipe` makes of an RGB image whose sides are multiples
    of scale."""
    validate(recipe)
    high_res = high_res.convert("RGB")  # one mode for every way (a no-op for RGB)
    width, height = high_res.size
    if width % scale or height % scale:
        raise ValueError(f"image size {width}x{height} is not a multiple of scale {scale}")
    size = (width // scale, height // scale)
    name = recipe["name"]
    if name in PIL_FILTERS:
        return high_res.resize(size, PIL_FILTERS[name])
    if name in OPENCV_FLAGS:
        cv2 = _opencv()
        flag = getattr(cv2, OPENCV_FLAGS[name])
        return Image.fromarray(cv2.resize(np.asarray(high_res), size, interpolation=flag))
    if name == "blur":
        # A camera's or a resizer's softness before the protocol's bicubic.
        blurred = _gaussian_blur(np.asarray(high_res), recipe["sigma"])
        return Image.fromarray(blurred).resize(size, Image.Resampling.BICUBIC)
    small = high_res.resize(size, PIL_FILTERS[recipe.get("base", "bicubic")])
    if name == "noise":
        rng = np.random.default_rng(recipe.get("seed", 0))
        noisy = np.asarray(small, dtype=np.float64) + rng.normal(0.0, recipe["sigma"], (size[1], size[0], 3))
        return Image.fromarray(np.clip(np.rint(noisy), 0, 255).astype(np.uint8))
    if name == "sharpen":
        # What phones and web pipelines do after shrinking: an unsharp mask on the small image.
        return small.filter(ImageFilter.UnsharpMask(radius=recipe["radius"], percent=recipe["percent"], threshold=0))
    return jpeg_round_trip(small, recipe["quality"])


def jpeg_round_trip(image: Image.Image, quality: int) -> Image.Image:
    """The image as it comes back from a JPEG file of `quality` (1-100; Pillow's defaults otherwise)."""
    if not 1 <= quality <= 100:
        raise ValueError(f"JPEG quality must be within 1-100, got {quality}")
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return decoded.convert("RGB")


def _opencv():
    """OpenCV, loaded only for the ways that use it; a ValueError saying how to install it if missing."""
    try:
        import cv2
    except ImportError:
        raise ValueError(
            "this degradation needs OpenCV: pip install -r requirements.txt (opencv-python-headless)"
        ) from None
    return cv2


def _gaussian_blur(pixels: np.ndarray, sigma: float) -> np.ndarray:
    cv2 = _opencv()
    return cv2.GaussianBlur(pixels, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT_101)


def degrade(high_res: Image.Image, scale: int, recipe: dict, jpeg_quality: int | None = None) -> Image.Image:
    """The blog's low-res twin, made by `recipe`: the small image (through a JPEG of `jpeg_quality`,
    when given) enlarged back with bicubic."""
    return small_and_low_res(high_res, scale, recipe, jpeg_quality)[1]


def small_and_low_res(
    high_res: Image.Image, scale: int, recipe: dict, jpeg_quality: int | None = None
) -> tuple[Image.Image, Image.Image]:
    """(the small image, its bicubic enlargement to the high-res size): degrade() with the small
    image kept, for a model choice made from it (upscale.py sees only that)."""
    small = downscale(high_res, scale, recipe)
    if jpeg_quality is not None:
        small = jpeg_round_trip(small, jpeg_quality)
    return small, small.resize(high_res.size, Image.Resampling.BICUBIC)
