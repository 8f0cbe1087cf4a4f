"""The before/after page (srcnn/compare_page.py): written right, and working in a real browser.

The browser test opens the page from disk in Debian's Chromium (/usr/bin/chromium, or $CHROMIUM)
driven by Playwright, with every request that is not a local file refused. Without a browser it
is skipped here, and fails where SRCNN_REQUIRE_BROWSER=1 (CI, .ci/run).
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from srcnn.compare_page import CHROMIUM_ARGS, Column, ComparePage, gain_columns, page_html, safe_name

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def tiny_page(folder: Path) -> Path:
    """Two 40x32 images of noise, each in three versions of clearly different colour."""
    rng = np.random.default_rng(0)
    page = ComparePage(folder, "tiny <test> page", gain_columns("Y"), note="a & b", sort_key="gain")
    for name, gain in (("first", 1.5), ("second", -0.25)):
        noise = rng.integers(0, 256, (32, 40), dtype=np.uint8)
        views = {
            "bicubic": np.stack([noise, noise // 4, noise // 4], axis=-1),  # reddish
            "model": np.stack([noise // 4, noise // 4, noise], axis=-1),  # bluish
            "original": np.stack([noise // 4, noise, noise // 4], axis=-1),  # greenish
        }
        numbers = {
            "bicubic_psnr": 30.0,
            "model_psnr": 30.0 + gain,
            "gain": gain,
            "bicubic_ssim": 0.9,
            "model_ssim": 0.95,
        }
        page.add(name, views, numbers)
    return page.write()


def page_data(page: Path) -> dict:
    text = page.read_text(encoding="utf-8")
    return json.loads(re.search(r'<script type="application/json" id="page-data">(.*?)</script>', text, re.S)[1])


def test_page_files_and_data(tmp_path):
    page = tiny_page(tmp_path / "compare")
    data = page_data(page)
    assert [entry["name"] for entry in data["entries"]] == ["first", "second"]
    assert data["sort"] == "gain"
    for entry in data["entries"]:
        assert list(entry["images"]) == ["bicubic", "model", "original"]
        for source in entry["images"].values():
            image = Image.open(page.parent / source)
            assert image.size == (40, 32)
    text = page.read_text(encoding="utf-8")
    assert "tiny &lt;test&gt; page" in text and "a &amp; b" in text
    assert "http" not in text.replace("http-equiv", "")  # nothing fetched from a network


def test_page_links_existing_files_and_escapes_script_ends(tmp_path):
    result = tmp_path / "out" / "photo x2.png"
    result.parent.mkdir()
    Image.new("RGB", (8, 6)).save(result)
    page = ComparePage(tmp_path / "out" / "compare", "t", [Column("model", "model")])
    name = "<!--<script></script><b>{{note}}&amp;"
    page.add(name, {"bicubic": Image.new("RGB", (8, 6)), "model": result}, {"model": "clean"})
    path = page.write()
    data = page_data(path)
    assert data["entries"][0]["name"] == name  # kept as text, not markup or a placeholder
    assert "<!--" not in path.read_text().split('id="page-data">')[1]  # nothing the HTML parser reads as markup
    assert data["entries"][0]["images"]["model"] == "../photo%20x2.png"
    assert (path.parent / "../photo x2.png").exists()
    assert safe_name("a/b c?.png") == "a_b_c_.png"


def test_an_image_equal_to_its_original_has_an_infinite_psnr_shown_as_text():
    numbers = {"model_psnr": float("inf"), "gain": float("nan"), "bicubic_psnr": 30.0}
    text = page_html("t", "", gain_columns("Y"), "gain", [{"name": "x", "images": {}, "numbers": numbers}])
    data = json.loads(re.search(r'id="page-data">(.*?)</script>', text, re.S)[1])
    assert data["entries"][0]["numbers"] == {"model_psnr": "inf", "gain": "n/a", "bicubic_psnr": 30.0}


def distinct_colours(png: bytes) -> int:
    return len(np.unique(np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).reshape(-1, 3), axis=0))


def dominant_channel(png: bytes) -> int:
    return int(np.argmax(np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).reshape(-1, 3).mean(axis=0)))


@pytest.mark.slow
def test_page_in_chromium(tmp_path):
    required = os.environ.get("SRCNN_REQUIRE_BROWSER") == "1"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if required:
            raise
        pytest.skip("playwright is not installed (pip install -r requirements-dev.txt)")
    if not shutil.which(CHROMIUM):
        if required:
            pytest.fail(f"{CHROMIUM}: no browser (apt-get install chromium)")
        pytest.skip(f"{CHROMIUM}: no browser (apt-get install chromium)")
    page_path = tiny_page(tmp_path / "compare")
    refused, problems = [], []

    def route(request_route):
        if request_route.request.url.startswith("file://"):
            request_route.continue_()
        else:
            refused.append(request_route.request.url)
            request_route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which(CHROMIUM), args=list(CHROMIUM_ARGS))
        try:
            context = browser.new_context(viewport={"width": 900, "height": 700})
            context.route("**/*", route)
            page = context.new_page()
            page.on("console", lambda message: message.type == "error" and problems.append(message.text))
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.goto(page_path.as_uri())
            page.wait_for_function("[...document.images].every((image) => image.complete)")

            # Every image loaded at its full size.
            sizes = page.eval_on_selector_all("img", "images => images.map(i => [i.naturalWidth, i.naturalHeight])")
            assert sizes == [[40, 32]] * 4

            # The table: worst gain first; a header click sorts; a row jumps to its image.
            def names():
                return page.eval_on_selector_all("#summary tbody tr", "rows => rows.map(r => r.cells[0].textContent)")

            assert names() == ["second", "first"]
            assert page.inner_text("#summary tbody tr:first-child td.worse") == "-0.25"
            page.click("#summary th[data-key=gain]")
            assert names() == ["first", "second"]
            page.click("#summary tbody tr:first-child")
            assert page.evaluate("location.hash") == "#image-0"

            # Dragging the slider's line changes what is shown.
            viewer = page.locator("#image-1 .viewer")
            viewer.scroll_into_view_if_needed()
            box = viewer.bounding_box()
            between = {
                "x": box["x"] + box["width"] * 0.35,
                "y": box["y"] + box["height"] / 2 - 20,
                "width": 40,
                "height": 40,
            }
            assert dominant_channel(page.screenshot(clip=between)) == 0  # left of the line: bicubic, reddish
            page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            page.mouse.down()
            page.mouse.move(box["x"] + box["width"] * 0.2, box["y"] + box["height"] / 2, steps=5)
            page.mouse.up()
            assert float(viewer.get_attribute("data-split")) == pytest.approx(0.2, abs=0.02)
            assert dominant_channel(page.screenshot(clip=between)) == 2  # now right of it: the model, bluish

            # The wheel zooms both sides together down to single image pixels, drawn as blocks.
            page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            for _ in range(30):
                page.mouse.wheel(0, -100)
            page.wait_for_function("document.querySelector('#image-1 .viewer').dataset.zoom >= 32")
            transforms = page.eval_on_selector_all("#image-1 img", "images => images.map(i => i.style.transform)")
            assert transforms[0] == transforms[1] and "scale(" in transforms[0]
            for left in (box["x"] + 10, box["x"] + box["width"] * 0.6):  # each side of the line
                clip = {"x": left, "y": box["y"] + 40, "width": 64, "height": 64}
                # 64 screen pixels show at most three image pixels a side at 32x: a few flat blocks, not a blur.
                assert distinct_colours(page.screenshot(clip=clip)) <= 9
            assert not problems, problems
            assert not refused, refused
        finally:
            browser.close()


def test_upscale_writes_the_page_for_your_photos(tmp_path, run_main):
    from conftest import gradient_image, save_tiny_checkpoint

    weights = save_tiny_checkpoint(tmp_path / "model")
    photos = tmp_path / "photos"
    photos.mkdir()
    gradient_image(15, 9).save(photos / "a.png")
    gradient_image(12, 10).convert("L").save(photos / "b.tif")  # browsers show no TIFF: a PNG copy
    arguments = ("photos", "--out-dir", "big", "--compare", "big/compare", "--checkpoint", str(weights))
    done = run_main("upscale.py", *arguments, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    page = tmp_path / "big" / "compare" / "index.html"
    entries = page_data(page)["entries"]
    assert [entry["name"] for entry in entries] == ["a.png", "b.tif"]
    assert entries[0]["images"]["model"] == "../a_x2.png" and entries[0]["numbers"]["output"] == "30x18"
    for entry in entries:
        for source in entry["images"].values():
            assert (page.parent / source).is_file()
    # A rerun keeps the outputs (up to date) and the page still shows them.
    again = run_main("upscale.py", *arguments, cwd=tmp_path)
    assert "0 enlarged, 2 up to date" in again.stdout and len(page_data(page)["entries"]) == 2
