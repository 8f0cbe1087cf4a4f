"""The blog's image recipe: padding onto white, mode conversion, the bicubic pair."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from srcnn.images import (
    ORIENTATIONS,
    ImageReadError,
    bicubic_degrade,
    header_error,
    jpeg_quality,
    load_rgb,
    make_pair,
    orient,
    pad_to_square,
    self_ensemble,
    to_rgb,
)

RED = (200, 30, 40)


@pytest.mark.parametrize(
    "size, box",
    [
        ((40, 20), (0, 10, 40, 30)),  # landscape: white bands above and below
        ((20, 40), (10, 0, 30, 40)),  # portrait: white bands left and right
        ((30, 30), (0, 0, 30, 30)),  # square: unchanged
        ((41, 20), (0, 10, 41, 30)),  # odd difference: the extra white row goes below
    ],
)
def test_pad_to_square_centres_image_on_white(size, box):
    image = Image.new("RGB", size, RED)
    padded = np.asarray(pad_to_square(image))
    side = max(size)
    assert padded.shape == (side, side, 3)
    left, top, right, bottom = box
    assert (padded[top:bottom, left:right] == RED).all()
    mask = np.ones((side, side), bool)
    mask[top:bottom, left:right] = False
    assert (padded[mask] == 255).all()


def test_rgba_transparency_becomes_white():
    rgba = np.zeros((10, 10, 4), np.uint8)
    rgba[:5] = (*RED, 255)  # opaque top half
    rgba[5:] = (0, 0, 0, 0)  # transparent black bottom half
    rgb = np.asarray(to_rgb(Image.fromarray(rgba, "RGBA")))
    assert (rgb[:5] == RED).all()
    assert (rgb[5:] == 255).all()


def test_grayscale_becomes_grey_rgb():
    rgb = np.asarray(to_rgb(Image.new("L", (4, 4), 77)))
    assert rgb.shape == (4, 4, 3) and (rgb == 77).all()


def test_palette_with_transparency_becomes_white(tmp_path):
    palette_image = Image.new("P", (8, 8), 0)
    palette_image.putpalette([*RED, 0, 255, 0] + [0] * 762)
    palette_image.paste(1, (0, 0, 4, 8))
    path = tmp_path / "palette.png"
    palette_image.save(path, transparency=1)
    rgb = np.asarray(load_rgb(path))
    assert (rgb[:, :4] == 255).all()  # the transparent green half
    assert (rgb[:, 4:] == RED).all()


def test_sixteen_bit_grey_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 257 * 100], [65535, 257 * 200]], dtype=np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(values).save(path)
    rgb = np.asarray(load_rgb(path))
    assert rgb[..., 0].tolist() == [[0, 100], [255, 200]]


def test_cmyk_becomes_rgb(tmp_path):
    path = tmp_path / "print.jpg"
    Image.new("CMYK", (16, 16), (0, 0, 0, 0)).save(path)
    rgb = load_rgb(path)
    assert rgb.mode == "RGB" and np.asarray(rgb).min() > 240  # no ink is white


def test_exif_orientation_is_applied(tmp_path):
    image = Image.new("RGB", (40, 20), RED)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 clockwise to display"
    path = tmp_path / "rotated.jpg"
    image.save(path, exif=exif)
    assert load_rgb(path).size == (20, 40)


def test_gif_first_frame(tmp_path):
    frames = [Image.new("RGB", (12, 12), colour) for colour in (RED, (0, 0, 255))]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    first = np.asarray(load_rgb(path))[0, 0]
    assert abs(int(first[0]) - RED[0]) < 16 and first[2] < 60


@pytest.mark.parametrize(
    "content, reason",
    [(b"", "not an image"), (b"hello, not a picture", "not an image")],
)
def test_unreadable_files_raise_a_clear_error(tmp_path, content, reason):
    path = tmp_path / "broken.png"
    path.write_bytes(content)
    with pytest.raises(ImageReadError, match=reason):
        load_rgb(path)
    assert reason in header_error(path)  # the same reason, from the header alone


def test_a_header_that_reads_is_no_error(tmp_path):
    Image.new("RGB", (4, 3)).save(tmp_path / "fine.png")
    assert header_error(tmp_path / "fine.png") == ""
    assert header_error(tmp_path) == "is a folder, not an image"


def test_truncated_png_raises_a_clear_error(tmp_path):
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)).save(buffer, "PNG")
    path = tmp_path / "cut.png"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(ImageReadError):
        load_rgb(path)


def test_folder_is_not_an_image(tmp_path):
    folder = tmp_path / "x.jpg"
    folder.mkdir()
    with pytest.raises(ImageReadError, match="folder"):
        load_rgb(folder)


def test_pair_sizes_and_kernel():
    image = Image.new("RGB", (300, 200), RED)
    image.paste((0, 90, 200), (0, 0, 150, 200))
    low_res, high_res = make_pair(image, size=128, scale=2)
    assert high_res.size == low_res.size == (128, 128)
    # The low-res twin is the blog's bicubic 64x64 round trip, not another filter.
    expected = high_res.resize((64, 64), Image.Resampling.BICUBIC).resize((128, 128), Image.Resampling.BICUBIC)
    assert np.array_equal(np.asarray(low_res), np.asarray(expected))
    bilinear = high_res.resize((64, 64), Image.Resampling.BILINEAR).resize((128, 128), Image.Resampling.BILINEAR)
    assert not np.array_equal(np.asarray(low_res), np.asarray(bilinear))


def test_degrade_loses_the_finest_detail():
    stripes = np.zeros((32, 32, 3), np.uint8)
    stripes[:, ::2] = 255  # one-pixel stripes cannot survive a 2x downscale
    low_res = np.asarray(bicubic_degrade(Image.fromarray(stripes), 2)).astype(float)
    assert low_res[:, 4:-4].std() < 20
    with pytest.raises(ValueError, match="multiple"):
        bicubic_degrade(Image.new("RGB", (31, 32)), 2)


def test_whole_pair_keeps_the_size_cropped_to_the_scale():
    from srcnn.images import make_whole_pair

    pixels = np.random.default_rng(0).integers(0, 256, (31, 45, 3), dtype=np.uint8)
    low_res, high_res = make_whole_pair(Image.fromarray(pixels), scale=2)
    assert high_res.size == low_res.size == (44, 30)
    assert np.array_equal(np.asarray(high_res), pixels[:30, :44])  # the top-left part is kept
    assert np.array_equal(np.asarray(low_res), np.asarray(bicubic_degrade(high_res, 2)))


def test_jpeg_quality_is_read_back_from_the_file_for_every_quality(tmp_path):
    photo = Image.fromarray(np.random.default_rng(4).integers(0, 256, (24, 24, 3), dtype=np.uint8))
    for quality in range(1, 101):
        photo.save(tmp_path / "photo.png", format="JPEG", quality=quality)  # JPEG bytes, whatever the name
        assert jpeg_quality(tmp_path / "photo.png") == quality
    photo.convert("L").save(tmp_path / "gray.jpg", quality=60)
    photo.save(tmp_path / "progressive.jpg", quality=88, progressive=True)
    assert (jpeg_quality(tmp_path / "gray.jpg"), jpeg_quality(tmp_path / "progressive.jpg")) == (60, 88)
    with Image.open(tmp_path / "photo.png") as saved:  # quality 100: every table entry 1
        assert set(saved.quantization[0]) == {1}
    photo.save(tmp_path / "photo.png", format="JPEG", quality=75)
    with Image.open(tmp_path / "photo.png") as saved:
        luminance, chroma = [list(table) for table in saved.quantization.values()]
    photo.save(tmp_path / "own_tables.jpg", qtables=[[value + 1 for value in luminance], chroma])
    assert jpeg_quality(tmp_path / "own_tables.jpg") in (74, 75)  # tables of its own: the nearest standard quality
    photo.save(tmp_path / "lossless.jpg", format="PNG")
    assert jpeg_quality(tmp_path / "lossless.jpg") is None
    (tmp_path / "broken.jpg").write_bytes(b"not an image")
    assert jpeg_quality(tmp_path / "broken.jpg") is None


def test_the_eight_orientations_are_distinct_and_each_is_undone():
    image = np.arange(2 * 3 * 3).reshape(2, 3, 3)  # non-square: quarter turns swap its sides
    seen = set()
    for index in range(ORIENTATIONS):
        turned = orient(image, index)
        assert turned.shape in ((2, 3, 3), (3, 2, 3))
        seen.add(turned.tobytes() + bytes(turned.shape))
        np.testing.assert_array_equal(orient(turned, index, undo=True), image)
    assert len(seen) == ORIENTATIONS


def test_self_ensemble_of_an_enlargement_that_ignores_orientation_is_that_enlargement():
    image = np.random.default_rng(3).integers(0, 256, (5, 9, 3), dtype=np.uint8)  # any wrong undo shows

    def repeat(small):  # 3x by repetition: the same in every orientation
        return np.repeat(np.repeat(small, 3, axis=0), 3, axis=1)

    np.testing.assert_array_equal(self_ensemble(repeat, image), repeat(image))


def test_self_ensemble_turns_each_result_back_before_averaging():
    image = np.full((3, 5, 3), 100, np.uint8)

    def enlarge(small):  # 2x by repetition, plus 16 at the top-left pixel of whatever it is given
        large = np.repeat(np.repeat(small, 2, axis=0), 2, axis=1)
        large[0, 0] += 16
        return large

    result = self_ensemble(enlarge, image)
    assert result.shape == (6, 10, 3) and result.dtype == np.uint8
    # Each orientation puts its +16 in one corner of the image, each corner from two of the eight.
    corners = result[[0, 0, -1, -1], [0, -1, 0, -1]]
    np.testing.assert_array_equal(corners, 104)
    result[[0, 0, -1, -1], [0, -1, 0, -1]] = 100
    np.testing.assert_array_equal(result, 100)  # the rest is untouched, and a pure level stays exact
