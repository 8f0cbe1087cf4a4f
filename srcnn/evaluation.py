"""Run a trained network on test pairs: metrics against bicubic, and side-by-side comparisons."""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from srcnn import degradations
from srcnn.compare_page import ComparePage, gain_columns
from srcnn.dataset import DataError, list_pairs
from srcnn.files import write_text_atomic
from srcnn.images import save_png_atomic, self_ensemble, whole_high_res
from srcnn.metrics import benchmark_metrics, flat_region_kept, psnr, ssim
from srcnn.network import super_resolve


@dataclass
class PairScore:
    name: str
    bicubic_psnr: float
    bicubic_ssim: float
    model_psnr: float
    model_ssim: float


def score_pair(name: str, low_res: np.ndarray, super_res: np.ndarray, high_res: np.ndarray) -> PairScore:
    """RGB PSNR and SSIM of the bicubic input and of the model's output against the original."""
    return PairScore(
        name,
        psnr(high_res, low_res),
        ssim(high_res, low_res),
        psnr(high_res, super_res),
        ssim(high_res, super_res),
    )


def mean_score(scores: list[PairScore]) -> PairScore:
    values = {key: float(np.mean([getattr(s, key) for s in scores])) for key in asdict(scores[0]) if key != "name"}
    return PairScore(name="mean", **values)


def _label_font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow built without FreeType: the small bitmap font.
        return ImageFont.load_default()


def comparison_image(
    low_res: np.ndarray, super_res: np.ndarray, high_res: np.ndarray, captions: tuple[str, str, str], gap: int = 4
) -> Image.Image:
    """bicubic | model | original side by side, each with its title and caption written above it,
    and below each the same detail enlarged (nearest neighbour, so pixels stay pixels): the square
    where model and bicubic differ most, outlined in red above. Sharpness shows without zooming."""
    return panels_image(list(zip((low_res, super_res, high_res), TITLES, captions, strict=True)), gap=gap)


def panels_image(
    panels: list[tuple[np.ndarray, str, str]], gap: int = 4, detail_of: tuple[int, int] = (0, 1)
) -> Image.Image:
    """Same-size images side by side, each as (pixels, title, caption), with the detail row below:
    the square where the two panels `detail_of` differ most, enlarged."""
    height, width = panels[0][0].shape[:2]
    font_size = max(10, min(16, width // 10))
    label_height = 2 * font_size + 8
    side = max(4, min(height, width) // 4)
    zoom = max(2, width // side)
    top, left = most_different_square(panels[detail_of[0]][0], panels[detail_of[1]][0], side)
    size = (len(panels) * width + (len(panels) - 1) * gap, label_height + height + gap + side * zoom)
    canvas = Image.new("RGB", size, (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    font = _label_font(font_size)
    for index, (pixels, title, caption) in enumerate(panels):
        x = index * (width + gap)
        draw.text((x + 2, 2), title, fill=(0, 0, 0), font=font)
        draw.text((x + 2, 4 + font_size), caption, fill=(0, 0, 0), font=font)
        canvas.paste(Image.fromarray(pixels), (x, label_height))
        detail = Image.fromarray(pixels[top : top + side, left : left + side])
        canvas.paste(
            detail.resize((side * zoom, side * zoom), Image.Resampling.NEAREST), (x, label_height + height + gap)
        )
        box = (x + left - 1, label_height + top - 1, x + left + side, label_height + top + side)
        draw.rectangle(box, outline=(255, 0, 0))
    return canvas


def most_different_square(first: np.ndarray, second: np.ndarray, side: int) -> tuple[int, int]:
    """(top, left) of the side x side square where two images differ most (sum of absolute
    differences over the square, from an integral image)."""
    difference = np.abs(first.astype(np.int64) - second.astype(np.int64)).reshape(*first.shape[:2], -1).sum(axis=2)
    integral = np.pad(difference.cumsum(axis=0).cumsum(axis=1), ((1, 0), (1, 0)))
    sums = integral[side:, side:] - integral[:-side, side:] - integral[side:, :-side] + integral[:-side, :-side]
    top, left = np.unravel_index(int(np.argmax(sums)), sums.shape)
    return int(top), int(left)


TITLES = ("bicubic", "model", "original")


def rgb_captions(score: PairScore) -> tuple[str, str, str]:
    return (
        f"{score.bicubic_psnr:.2f} dB  {score.bicubic_ssim:.3f}",
        f"{score.model_psnr:.2f} dB  {score.model_ssim:.3f}",
        "RGB PSNR (dB)  SSIM",
    )


def read_rgb_array(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def evaluate_pairs(
    model: keras.Model, pairs: list[tuple[Path, Path]], compare_dir: Path | None = None
) -> list[PairScore]:
    """Score every (low_res, high_res) pair; write compare_dir/NAME.png for each when given."""
    scores = []
    page = None
    if compare_dir is not None:
        compare_dir.mkdir(parents=True, exist_ok=True)
        page = ComparePage(
            compare_dir,
            f"bicubic against the model: {len(pairs)} prepared pair(s)",
            gain_columns("RGB"),
            note="RGB PSNR (dB) and SSIM of the whole images against the original.",
            sort_key="gain",
        )
    for low_res_path, high_res_path in pairs:
        low_res, high_res = read_rgb_array(low_res_path), read_rgb_array(high_res_path)
        if low_res.shape != high_res.shape:
            raise ValueError(f"{low_res_path}: size {low_res.shape[:2]} differs from {high_res_path}'s")
        super_res = super_resolve(model, low_res)
        score = score_pair(high_res_path.stem, low_res, super_res, high_res)
        scores.append(score)
        if compare_dir is not None:
            image = comparison_image(low_res, super_res, high_res, rgb_captions(score))
            save_png_atomic(image, compare_dir / high_res_path.name)
            page.add(
                score.name,
                {"bicubic": low_res, "model": super_res, "original": high_res},
                page_numbers(score.bicubic_psnr, score.model_psnr, score.bicubic_ssim, score.model_ssim),
            )
    if page is not None:
        page.write()
    return scores


def page_numbers(bicubic_psnr: float, model_psnr: float, bicubic_ssim: float, model_ssim: float) -> dict:
    """An image's numbers for the comparison page (compare_page.gain_columns)."""
    return {
        "bicubic_psnr": bicubic_psnr,
        "model_psnr": model_psnr,
        "gain": model_psnr - bicubic_psnr,
        "bicubic_ssim": bicubic_ssim,
        "model_ssim": model_ssim,
    }


def scores_to_csv(scores: list[PairScore]) -> str:
    """CSV text with one row per image and a final 'mean' row."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(asdict(scores[0])), lineterminator="\n")
    writer.writeheader()
    for score in scores + [mean_score(scores)]:
        writer.writerow({key: value if key == "name" else f"{value:.4f}" for key, value in asdict(score).items()})
    return buffer.getvalue()


def format_table(scores: list[PairScore]) -> str:
    """A plain-text table: per image and mean, bicubic against model, under a line naming the metric."""
    width = max(12, *(len(s.name) for s in scores))
    lines = [
        "RGB PSNR (dB) and SSIM of the whole uint8 images (any white padding too), model output rounded, peak 255:",
        f"{'image':<{width}}  {'bicubic PSNR':>12}  {'SSIM':>6}  {'model PSNR':>10}  {'SSIM':>6}  {'gain':>6}",
    ]
    for score in scores + [mean_score(scores)]:
        gain = score.model_psnr - score.bicubic_psnr
        lines.append(
            f"{score.name:<{width}}  {score.bicubic_psnr:>12.2f}  {score.bicubic_ssim:>6.3f}"
            f"  {score.model_psnr:>10.2f}  {score.model_ssim:>6.3f}  {gain:>+6.2f}"
        )
    return "\n".join(lines)


def test_split(model: keras.Model, data_dir: Path, results_dir: Path, split: str = "test") -> list[PairScore]:
    """Score a prepared split: results_dir/compare/NAME.png per pair and results_dir/metrics.csv."""
    pairs = list_pairs(data_dir, split)
    if not pairs:
        raise DataError(
            f"{data_dir / split}: no prepared image pairs; make them with: "
            f"python prep_images.py --input YOUR_PHOTOS --output {data_dir}"
            " (to test a run, name it: --checkpoint-dir checkpoints/demo tests the demo on its own data)"
        )
    scores = evaluate_pairs(model, pairs, results_dir / "compare")
    write_text_atomic(results_dir / "metrics.csv", scores_to_csv(scores))
    return scores


# --- Benchmark protocol (SRCNN paper): Y channel of BT.601, 2-pixel shave, peak 255 ------------

BENCHMARK_KEYS = ("psnr_y", "ssim_y", "psnr_rgb", "bicubic_psnr_y", "bicubic_ssim_y", "bicubic_psnr_rgb")


# For test.py --model auto: the small image (before the bicubic enlargement) -> (the network that
# fits it, or at 3x and 4x its passes (srcnn/passes.py), and its name).
ModelPicker = Callable[[np.ndarray], tuple[keras.Model | list, str]]


def benchmark_image(
    model: keras.Model | ModelPicker | list,
    image: Image.Image,
    scale: int = 2,
    compare_path: Path | None = None,
    jpeg_quality: int | None = None,
    recipe: dict | None = None,
    page: ComparePage | None = None,
    ensemble: bool = False,
) -> dict[str, float]:
    """The paper's protocol on one RGB photo: crop to a multiple of scale, bicubic down and up, run.

    With `recipe` (srcnn/degradations.py), the small image is made that way instead of by PIL's
    bicubic; with `jpeg_quality`, it then passes through a JPEG of that quality. Bicubic is scored
    on the same small image, enlarged. `model` is one network, or a picker that chooses one from
    the small image (the row then names it under "model"), or the passes of srcnn/passes.py
    (x3, x4: the x2 model, then bicubic to the full size and a network for the rest). With `compare_path`, also writes
    bicubic | model | original there, captioned with Y-PSNR/SSIM, and adds the three at full size
    to `page` under the file's name. With `ensemble`, the model's image is the mean of all eight
    flips and quarter turns of the small image enlarged (images.self_ensemble); bicubic stays one.
    """
    high_res_image = whole_high_res(image, scale)
    recipe = recipe or degradations.SUITE[degradations.DEFAULT]
    small, low_res_image = degradations.small_and_low_res(high_res_image, scale, recipe, jpeg_quality)
    low_res, high_res = np.asarray(low_res_image), np.asarray(high_res_image)
    chosen = {}
    if not isinstance(model, keras.Model | list):
        model, chosen["model"] = model(np.asarray(small))
    if isinstance(model, list):
        from srcnn.passes import enlarge

        passes = model

        def run(image: np.ndarray) -> np.ndarray:
            return enlarge(passes, Image.fromarray(image))

    else:
        network = model

        def run(image: np.ndarray) -> np.ndarray:  # as low_res is made: PIL bicubic to `scale` times the size
            size = (image.shape[1] * scale, image.shape[0] * scale)
            return super_resolve(network, np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BICUBIC)))

    super_res = self_ensemble(run, np.asarray(small)) if ensemble else run(np.asarray(small))
    border = scale  # the SR convention: shave as many pixels as the scale factor
    model_values = benchmark_metrics(high_res, super_res, border)
    bicubic_values = benchmark_metrics(high_res, low_res, border)
    if compare_path is not None:
        captions = (
            f"Y {bicubic_values['psnr_y']:.2f} dB  {bicubic_values['ssim_y']:.4f}",
            f"Y {model_values['psnr_y']:.2f} dB  {model_values['ssim_y']:.4f}",
            "Y-PSNR  SSIM",
        )
        save_png_atomic(comparison_image(low_res, super_res, high_res, captions), compare_path)
        if page is not None:
            numbers = page_numbers(
                bicubic_values["psnr_y"], model_values["psnr_y"], bicubic_values["ssim_y"], model_values["ssim_y"]
            )
            page.add(
                compare_path.stem,
                {"bicubic": low_res, "model": super_res, "original": high_res},
                numbers | chosen,
            )
    flat = {}
    for name, level in (("white", 255), ("black", 0)):
        counts = flat_region_kept(high_res, level, super_res, low_res)  # the mask once, for both outputs
        flat[f"{name}_pixels"], flat[f"{name}_kept"], flat[f"bicubic_{name}_kept"] = counts
    return {**model_values, **{f"bicubic_{key}": value for key, value in bicubic_values.items()}, **flat, **chosen}


def flat_region_summary(rows: list[dict]) -> str:
    """One line per pure level found: how much of it the model and bicubic keep exactly (all images)."""
    lines = []
    for name in ("white", "black"):
        total = sum(row.get(f"{name}_pixels", 0) for row in rows)
        if total:
            model = 100 * sum(row[f"{name}_kept"] for row in rows) / total
            bicubic = 100 * sum(row[f"bicubic_{name}_kept"] for row in rows) / total
            lines.append(
                f"pure {name} kept exactly (pixels whose 5x5 neighbourhood is pure {name}, {total} of them):"
                f" model {model:.3f}%, bicubic {bicubic:.3f}%"
            )
    return "\n".join(lines)


def degradation_summary(rows: list[dict]) -> dict[str, float]:
    """One degradation's line of test.py --degradation all: the mean Y-PSNR of bicubic and of the
    model, the model's mean gain, and how many images it leaves below bicubic."""
    gains = [row["psnr_y"] - row["bicubic_psnr_y"] for row in rows]
    return {
        "images": len(rows),
        "bicubic_psnr_y": float(np.mean([row["bicubic_psnr_y"] for row in rows])),
        "psnr_y": float(np.mean([row["psnr_y"] for row in rows])),
        "gain": float(np.mean(gains)),
        "below": sum(gain < 0 for gain in gains),
        # --model auto: how many images each shipped model took
        "models": dict(sorted(Counter(row["model"] for row in rows if row.get("model")).items())),
    }


def format_degradation_table(summaries: dict[str, dict]) -> str:
    """test.py --degradation all: a line per degradation, then the mean gain over all of them."""
    width = max(11, *(len(name) for name in summaries))
    routed = any(summary["models"] for summary in summaries.values())
    lines = [
        "Y-PSNR (dB), borders shaved by the scale; gain over bicubic of the same small image:",
        f"{'degradation':<{width}}  {'bicubic':>7}  {'model':>7}  {'gain':>6}  {'below bicubic':>13}"
        + ("  models (--model auto)" if routed else ""),
    ]
    for name, summary in summaries.items():
        line = (
            f"{name:<{width}}  {summary['bicubic_psnr_y']:>7.2f}  {summary['psnr_y']:>7.2f}  {summary['gain']:>+6.2f}"
            f"  {summary['below']:>5} of {summary['images']:<4}"
        )
        taken = ", ".join(f"{name} {count}" for name, count in summary["models"].items())
        lines.append((line + (f"  {taken}" if routed else "")).rstrip())
    mean_gain = float(np.mean([summary["gain"] for summary in summaries.values()]))
    lines.append(f"{'mean':<{width}}  {'':>7}  {'':>7}  {mean_gain:>+6.2f}")
    return "\n".join(lines)


def benchmark_mean(rows: list[dict]) -> dict[str, float]:
    return {key: float(np.mean([row[key] for row in rows])) for key in BENCHMARK_KEYS}


def format_benchmark_table(rows: list[dict]) -> str:
    width = max(10, *(len(row["name"]) for row in rows))
    header = f"{'image':<{width}}  {'bicubic Y-PSNR':>14}  {'SSIM':>6}  {'model Y-PSNR':>12}  {'SSIM':>6}  {'gain':>6}"
    header += f"  {'bicubic RGB':>11}  {'model RGB':>9}"
    lines = ["Y-PSNR (dB) and SSIM on BT.601 luma, RGB PSNR beside; borders shaved by the scale, peak 255:"]
    lines.append(header)
    for row in rows + [{"name": "mean", **benchmark_mean(rows)}]:
        lines.append(
            f"{row['name']:<{width}}  {row['bicubic_psnr_y']:>14.2f}  {row['bicubic_ssim_y']:>6.4f}"
            f"  {row['psnr_y']:>12.2f}  {row['ssim_y']:>6.4f}  {row['psnr_y'] - row['bicubic_psnr_y']:>+6.2f}"
            f"  {row['bicubic_psnr_rgb']:>11.2f}  {row['psnr_rgb']:>9.2f}"
        )
    return "\n".join(lines)
