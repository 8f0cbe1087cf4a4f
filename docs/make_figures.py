"""The README's comparison figures: two crops of scikit-image's photos (never trained on), scored and
drawn by test.py --benchmark with the shipped model; one JPEG input (quality 75) enlarged by
bicubic, the clean model and the JPEG model for that quality, beside the original; and one crop
enlarged 4x by bicubic, the x2 model twice and the shipped x4 model.

Usage (from the project's root): python docs/make_figures.py
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import skimage.data
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
# (photo, top, left): 192x192 crops, the astronaut's face and the coffee cup.
CROPS = {"astronaut_face": ("astronaut", 20, 160), "coffee_cup": ("coffee", 120, 190)}


def main() -> int:
    sys.path.insert(0, str(ROOT))  # a script in docs/, run from anywhere
    import test as test_script
    from srcnn.checkpoints import SHIPPED_WEIGHTS

    with tempfile.TemporaryDirectory() as folder:
        for name, (photo, top, left) in CROPS.items():
            pixels = np.asarray(getattr(skimage.data, photo)())[top : top + 192, left : left + 192]
            Image.fromarray(pixels).save(Path(folder) / f"{name}.png")
        arguments = ["--benchmark", folder, "--checkpoint", str(SHIPPED_WEIGHTS["clean"])]
        status = test_script.main([*arguments, "--compare-dir", str(ROOT / "docs" / "pretrained")])
    jpeg_figure("coffee_cup", quality=75).save(ROOT / "docs" / "pretrained" / "coffee_cup_jpeg75.png")
    x4_figure("astronaut_face").save(ROOT / "docs" / "pretrained" / "astronaut_face_x4.png")
    return status


def x4_figure(name: str) -> Image.Image:
    """bicubic x4 | the x2 model twice | the shipped x4 model (its two passes, trained together) |
    original, on one crop shrunk 4x with PIL's bicubic (test.py --benchmark --scale 4's protocol)."""
    from srcnn.checkpoints import SHIPPED_BY_SCALE, SHIPPED_WEIGHTS
    from srcnn.evaluation import panels_image
    from srcnn.metrics import benchmark_metrics
    from srcnn.passes import enlarge, load_passes

    photo, top, left = CROPS[name]
    high_res = np.asarray(getattr(skimage.data, photo)())[top : top + 192, left : left + 192]
    small = Image.fromarray(high_res).resize((48, 48), Image.Resampling.BICUBIC)
    x2 = load_passes(SHIPPED_WEIGHTS["clean"])
    panels = [
        (np.asarray(small.resize((192, 192), Image.Resampling.BICUBIC)), "bicubic x4"),
        (enlarge(x2 + [replace(x2[0], scale=4)], small), "x2 model twice"),
        (enlarge(load_passes(SHIPPED_BY_SCALE[4]), small), "x4 model"),
        (high_res, "original"),
    ]
    captioned = []
    for image, title in panels:
        values = benchmark_metrics(high_res, image, border=4)
        caption = f"Y {values['psnr_y']:.2f} dB  {values['ssim_y']:.4f}" if image is not high_res else "Y-PSNR  SSIM"
        captioned.append((image, title, caption))
    return panels_image(captioned, detail_of=(1, 2))


def jpeg_figure(name: str, quality: int) -> Image.Image:
    """bicubic | clean model | the JPEG model for `quality` | original on one crop whose half-size
    image was saved as a JPEG of `quality`, each captioned with its Y-PSNR/SSIM (test.py --benchmark
    --jpeg's protocol)."""
    from srcnn.checkpoints import jpeg_model_name, load_for_inference, shipped_weights
    from srcnn.evaluation import panels_image
    from srcnn.images import make_whole_pair
    from srcnn.metrics import benchmark_metrics
    from srcnn.network import super_resolve

    photo, top, left = CROPS[name]
    pixels = np.asarray(getattr(skimage.data, photo)())[top : top + 192, left : left + 192]
    low_res, high_res = (np.asarray(image) for image in make_whole_pair(Image.fromarray(pixels), 2, quality))
    panels = [(low_res, f"bicubic of JPEG q{quality}")]
    for model_name in ("clean", jpeg_model_name(quality)):
        model, _ = load_for_inference(shipped_weights(model_name))
        panels.append((super_resolve(model, low_res), f"{model_name} model"))
    panels.append((high_res, "original"))
    captioned = []
    for image, title in panels:
        values = benchmark_metrics(high_res, image, border=2)
        caption = f"Y {values['psnr_y']:.2f} dB  {values['ssim_y']:.4f}" if image is not high_res else "Y-PSNR  SSIM"
        captioned.append((image, title, caption))
    return panels_image(captioned, detail_of=(1, 2))  # where the two models differ most


if __name__ == "__main__":
    sys.exit(main())
