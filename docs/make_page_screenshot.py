"""The README's picture of the comparison page, taken by the browser its test uses.

    python test.py --benchmark ../shared/data/Set5 --compare-dir results/set5-compare
    python docs/make_page_screenshot.py results/set5-compare/index.html docs/compare-page.png

Opens the page from disk in Debian's Chromium (Playwright, network refused), zooms the viewer of
the image named by --image to --zoom around --at (fractions of the viewer), and saves the table
above that image's viewer.
"""

from __future__ import annotations

import argparse
import io
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from srcnn.compare_page import CHROMIUM_ARGS  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("page", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--image", default="butterfly_GT", help="the image whose viewer is zoomed")
    parser.add_argument("--zoom", type=float, default=6.0, help="screen pixels per image pixel")
    parser.add_argument("--at", type=float, nargs=2, default=(0.55, 0.45), help="where to zoom, x y in 0-1")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=list(CHROMIUM_ARGS))
        context = browser.new_context(viewport={"width": 1200, "height": 860})
        context.route(
            "**/*", lambda route: route.continue_() if route.request.url.startswith("file:") else route.abort()
        )
        page = context.new_page()
        page.goto(args.page.resolve().as_uri())
        page.wait_for_function("[...document.images].every((image) => image.complete)")
        section = page.locator("section", has=page.locator("h2", has_text=args.image)).first
        section.scroll_into_view_if_needed()
        viewer = section.locator(".viewer")
        box = viewer.bounding_box()
        x, y = box["x"] + box["width"] * args.at[0], box["y"] + box["height"] * args.at[1]
        page.mouse.move(x, y)
        for _ in range(100):  # the page's own limit is 64x
            if float(viewer.get_attribute("data-zoom")) >= args.zoom:
                break
            page.mouse.wheel(0, -100)
            page.wait_for_timeout(30)
        # The table, then that image's viewer: two shots of the one page, one above the other.
        shots = [page.locator("#summary").screenshot(), section.screenshot()]
        browser.close()
    from PIL import Image

    table, viewer_shot = (Image.open(io.BytesIO(shot)).convert("RGB") for shot in shots)
    picture = Image.new("RGB", (max(table.width, viewer_shot.width), table.height + 16 + viewer_shot.height), "#fafafa")
    picture.paste(table, (0, 0))
    picture.paste(viewer_shot, (0, table.height + 16))
    picture.save(args.output)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
