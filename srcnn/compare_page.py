"""A before/after page: one self-contained HTML file that compares images at full resolution.

For each image a slider between two of its versions (bicubic, the model, the original: any two),
wheel zoom down to single pixels (drawn as blocks, not smoothed) and drag to pan, both sides always
in step; its numbers beside it; above them a table of every image, sortable by any column, worst
gain first, each row a link to its image. Plain HTML, CSS and JavaScript of our own in one file, no
network: the page opens from disk (file://) anywhere, the images beside it as PNG files.
"""

from __future__ import annotations

import html
import json
import math
import os
import re
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from srcnn.files import write_text_atomic
from srcnn.images import save_png_atomic

PAGE_NAME = "index.html"
# Headless Chromium on a machine without network (the page's test, docs/make_page_screenshot.py):
# no background connections, no first-run tasks, no GPU, no sandbox (root in CI).
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
IMAGES_FOLDER = "images"


@dataclass(frozen=True)
class Column:
    """One number per image in the table: its key in each entry's numbers, the header, how shown."""

    key: str
    label: str
    digits: int = 2
    signed: bool = False  # a gain: shown with its sign


# The columns test.py shows: the model against bicubic, on the Y channel (the benchmark protocol)
# or on RGB (the prepared pairs).
def gain_columns(channel: str) -> list[Column]:
    return [
        Column("bicubic_psnr", f"bicubic {channel}-PSNR"),
        Column("model_psnr", f"model {channel}-PSNR"),
        Column("gain", "gain (dB)", signed=True),
        Column("bicubic_ssim", f"bicubic {channel}-SSIM", digits=4),
        Column("model_ssim", f"model {channel}-SSIM", digits=4),
    ]


@dataclass
class ComparePage:
    """Collects images and their numbers, then writes folder/index.html beside them."""

    folder: Path
    title: str
    columns: list[Column]
    note: str = ""
    sort_key: str = "name"  # the table's first order, ascending (a gain: worst first)
    entries: list[dict] = field(default_factory=list)

    def add(self, name: str, views: dict[str, np.ndarray | Image.Image | Path], numbers: dict) -> None:
        """One image: its versions by label ("bicubic", "model", "original"), in the order the slider
        shows them; an array or a PIL image is written as a PNG under images/, a Path (a file
        already written, such as upscale.py's result) is linked where it lies."""
        folder_name = f"{len(self.entries):04d}-{safe_name(name)}"
        sources = {}
        for label, view in views.items():
            if isinstance(view, Path):
                sources[label] = relative_url(view, self.folder)
                continue
            path = self.folder / IMAGES_FOLDER / folder_name / f"{safe_name(label)}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            save_png_atomic(view if isinstance(view, Image.Image) else Image.fromarray(view), path)
            sources[label] = relative_url(path, self.folder)
        self.entries.append({"name": name, "images": sources, "numbers": numbers})

    def write(self) -> Path:
        """Write the page (replacing an older one); returns its path."""
        self.folder.mkdir(parents=True, exist_ok=True)
        page = self.folder / PAGE_NAME
        write_text_atomic(page, page_html(self.title, self.note, self.columns, self.sort_key, self.entries))
        return page


def finite(numbers: dict) -> dict:
    """The numbers JSON can hold: an infinite PSNR (an image equal to its original) as the text
    "inf", NaN (inf - inf) as "n/a"."""
    return {
        key: value
        if not isinstance(value, float) or math.isfinite(value)
        else ("n/a" if math.isnan(value) else ("inf" if value > 0 else "-inf"))
        for key, value in numbers.items()
    }


def safe_name(text: str) -> str:
    """A file name made of letters, digits, '.', '_' and '-' only."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "image"


def relative_url(path: Path, page_folder: Path) -> str:
    """The path as a URL relative to the page, so the folder can move as a whole."""
    relative = os.path.relpath(os.path.abspath(path), os.path.abspath(page_folder))
    return urllib.parse.quote(Path(relative).as_posix())


def page_html(title: str, note: str, columns: list[Column], sort_key: str, entries: list[dict]) -> str:
    """The whole page: the entries as JSON inside it, read by the script at the end."""
    data = {
        "columns": [vars(column) for column in columns],
        "sort": sort_key,
        "entries": [entry | {"numbers": finite(entry["numbers"])} for entry in entries],
    }
    # <, > and & as JSON escapes: no name can close the <script> block or change how it is parsed.
    payload = json.dumps(data, allow_nan=False)
    payload = payload.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    values = {"title": html.escape(title), "note": html.escape(note), "data": payload}
    # One pass, so that a name holding "{{note}}" stays text.
    return re.sub(r"\{\{(title|note|data)\}\}", lambda match: values[match.group(1)], TEMPLATE)


TEMPLATE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{title}}</title>
<style>
  body { font: 15px/1.4 system-ui, sans-serif; margin: 1.5em auto; max-width: 1400px; padding: 0 1em;
         color: #222; background: #fafafa; }
  h1 { font-size: 1.4em; margin: 0 0 .2em; }
  .note { color: #555; margin: 0 0 1em; }
  table { border-collapse: collapse; margin-bottom: 2em; }
  th, td { padding: .25em .7em; border-bottom: 1px solid #ddd; text-align: right; white-space: nowrap; }
  th:first-child, td:first-child { text-align: left; }
  th { cursor: pointer; user-select: none; background: #eee; }
  th.sorted::after { content: " \\25B2"; font-size: .7em; }
  th.sorted.descending::after { content: " \\25BC"; }
  tbody tr { cursor: pointer; }
  tbody tr:hover { background: #e8f0fe; }
  td.worse { color: #b00020; }
  section { margin-bottom: 2.5em; }
  h2 { font-size: 1.1em; margin: 0 0 .3em; }
  .controls { display: flex; gap: 1em; align-items: center; flex-wrap: wrap; margin-bottom: .4em; }
  .controls input[type=range] { flex: 1; min-width: 8em; }
  .viewer { position: relative; overflow: hidden; background: #333; cursor: grab; touch-action: none;
            width: 100%; height: 60vh; user-select: none; }
  .viewer.panning { cursor: grabbing; }
  .layer { position: absolute; inset: 0; overflow: hidden; }
  .layer img { position: absolute; left: 0; top: 0; transform-origin: 0 0; max-width: none;
               image-rendering: pixelated; pointer-events: none; }
  .divider { position: absolute; top: 0; bottom: 0; width: 18px; margin-left: -9px; cursor: ew-resize; }
  .divider::before { content: ""; position: absolute; left: 8px; top: 0; bottom: 0; width: 2px;
                     background: #fff; box-shadow: 0 0 3px #000; }
  .tag { position: absolute; top: .4em; padding: .1em .5em; background: rgba(0,0,0,.6); color: #fff;
         font-size: .85em; pointer-events: none; }
  .tag.left { left: .4em; } .tag.right { right: .4em; }
  .numbers { color: #444; margin-top: .3em; }
</style>
</head>
<body>
<h1>{{title}}</h1>
<p class="note">{{note}}</p>
<p class="note">Drag the white line (or the slider) to compare; scroll to zoom, down to single pixels;
drag to pan; double-click to fit. Both sides always show the same place.</p>
<table id="summary"><thead><tr></tr></thead><tbody></tbody></table>
<div id="items"></div>
<script type="application/json" id="page-data">{{data}}</script>
<script>
"use strict";
const page = JSON.parse(document.getElementById("page-data").textContent);
const MAX_ZOOM = 64;  // screen pixels per image pixel at the closest zoom

function formatted(value, column) {
  if (typeof value !== "number") return value === undefined ? "" : String(value);
  const text = value.toFixed(column.digits);
  return column.signed && value > 0 ? "+" + text : text;
}

function element(tag, attributes, parent) {
  const node = document.createElement(tag);
  Object.assign(node, attributes || {});
  if (parent) parent.appendChild(node);
  return node;
}

// --- The table: one row per image, sortable, each row a link to its viewer. ---
const table = { key: page.sort, ascending: true };
function buildTable() {
  const head = document.querySelector("#summary thead tr");
  const all = [{ key: "name", label: "image" }].concat(page.columns);
  for (const column of all) {
    const cell = element("th", { textContent: column.label }, head);
    cell.dataset.key = column.key;
    cell.addEventListener("click", () => {
      table.ascending = table.key === column.key ? !table.ascending : true;
      table.key = column.key;
      fillTable();
    });
  }
  fillTable();
}
function sortValue(entry, key) {
  return key === "name" ? entry.name : entry.numbers[key];
}
function fillTable() {
  const body = document.querySelector("#summary tbody");
  body.textContent = "";
  const order = page.entries.map((entry, index) => ({ entry, index }));
  order.sort((a, b) => {
    const x = sortValue(a.entry, table.key), y = sortValue(b.entry, table.key);
    const result = typeof x === "number" && typeof y === "number"
      ? x - y : String(x).localeCompare(String(y), undefined, { numeric: true });
    return table.ascending ? result : -result;
  });
  for (const { entry, index } of order) {
    const row = element("tr", {}, body);
    row.dataset.target = "image-" + index;
    element("td", { textContent: entry.name }, row);
    for (const column of page.columns) {
      const value = entry.numbers[column.key];
      const cell = element("td", { textContent: formatted(value, column) }, row);
      if (column.signed && typeof value === "number" && value < 0) cell.className = "worse";
    }
    row.addEventListener("click", () => {
      location.hash = row.dataset.target;
      document.getElementById(row.dataset.target).scrollIntoView();
    });
  }
  for (const cell of document.querySelectorAll("#summary th")) {
    cell.classList.toggle("sorted", cell.dataset.key === table.key);
    cell.classList.toggle("descending", cell.dataset.key === table.key && !table.ascending);
  }
}

// --- A viewer: two layers of the same size and transform; the right one clipped at the split. ---
class Viewer {
  constructor(entry, index, parent) {
    this.entry = entry;
    const labels = Object.keys(entry.images);
    const section = element("section", { id: "image-" + index }, parent);
    element("h2", { textContent: entry.name }, section);
    const controls = element("div", { className: "controls" }, section);
    this.leftChoice = this.choice(controls, "left", labels, labels[0]);
    this.slider = element("input", { type: "range", min: 0, max: 1000, value: 500, className: "split" }, controls);
    this.slider.setAttribute("aria-label", "split");
    this.rightChoice = this.choice(controls, "right", labels, labels[1] || labels[0]);
    this.zoomText = element("span", { className: "zoom" }, controls);
    const fit = element("button", { textContent: "fit", type: "button" }, controls);
    const actual = element("button", { textContent: "1:1", type: "button" }, controls);

    this.frame = element("div", { className: "viewer" }, section);
    this.layers = [0, 1].map(() => element("div", { className: "layer" }, this.frame));
    this.images = this.layers.map((layer) => element("img", { alt: "", decoding: "async" }, layer));
    this.tags = ["left", "right"].map((side) => element("div", { className: "tag " + side }, this.frame));
    this.divider = element("div", { className: "divider" }, this.frame);
    const numbers = element("div", { className: "numbers" }, section);
    numbers.textContent = page.columns
      .filter((column) => entry.numbers[column.key] !== undefined)
      .map((column) => column.label + " " + formatted(entry.numbers[column.key], column))
      .join("  \\u00b7  ");

    this.split = 0.5;
    this.scale = 1; this.x = 0; this.y = 0; this.fitted = true;
    this.show();
    this.images[0].addEventListener("load", () => this.fit());
    this.slider.addEventListener("input", () => { this.split = this.slider.value / 1000; this.apply(); });
    this.leftChoice.addEventListener("change", () => this.show());
    this.rightChoice.addEventListener("change", () => this.show());
    fit.addEventListener("click", () => this.fit());
    actual.addEventListener("click", () => this.zoomTo(1, this.frame.clientWidth / 2, this.frame.clientHeight / 2));
    this.frame.addEventListener("wheel", (event) => this.wheel(event), { passive: false });
    this.frame.addEventListener("pointerdown", (event) => this.press(event));
    this.frame.addEventListener("dblclick", () => this.fit());
    window.addEventListener("resize", () => { if (this.fitted) this.fit(); else this.apply(); });
  }

  choice(parent, side, labels, chosen) {
    const label = element("label", { textContent: side + " " }, parent);
    const select = element("select", { className: side }, label);
    for (const name of labels) element("option", { value: name, textContent: name, selected: name === chosen }, select);
    return select;
  }

  show() {
    const chosen = [this.leftChoice.value, this.rightChoice.value];
    chosen.forEach((label, side) => {
      this.images[side].src = this.entry.images[label];
      this.tags[side].textContent = label;
    });
    this.apply();
  }

  naturalSize() {
    return [this.images[0].naturalWidth || 1, this.images[0].naturalHeight || 1];
  }

  fitScale() {
    const [width, height] = this.naturalSize();
    return Math.min(this.frame.clientWidth / width, this.frame.clientHeight / height);
  }

  fit() {
    const [width, height] = this.naturalSize();
    this.scale = this.fitScale();
    this.x = (this.frame.clientWidth - width * this.scale) / 2;
    this.y = (this.frame.clientHeight - height * this.scale) / 2;
    this.fitted = true;
    this.apply();
  }

  zoomTo(scale, atX, atY) {
    const limited = Math.min(MAX_ZOOM, Math.max(Math.min(1, this.fitScale()), scale));
    // The image point under (atX, atY) stays there.
    this.x = atX - ((atX - this.x) * limited) / this.scale;
    this.y = atY - ((atY - this.y) * limited) / this.scale;
    this.scale = limited;
    this.fitted = false;
    this.apply();
  }

  wheel(event) {
    event.preventDefault();
    const box = this.frame.getBoundingClientRect();
    const steps = event.deltaMode === 1 ? event.deltaY / 3 : event.deltaY / 100;
    this.zoomTo(this.scale * Math.pow(1.25, -steps), event.clientX - box.left, event.clientY - box.top);
  }

  press(event) {
    if (event.button !== 0) return;
    const box = this.frame.getBoundingClientRect();
    const onDivider = event.target === this.divider;
    const start = { x: event.clientX, y: event.clientY, left: this.x, top: this.y };
    this.frame.setPointerCapture(event.pointerId);
    if (!onDivider) this.frame.classList.add("panning");
    const move = (moved) => {
      if (onDivider) {
        this.split = Math.min(1, Math.max(0, (moved.clientX - box.left) / box.width));
        this.slider.value = Math.round(this.split * 1000);
      } else {
        this.x = start.left + moved.clientX - start.x;
        this.y = start.top + moved.clientY - start.y;
        this.fitted = false;
      }
      this.apply();
    };
    const release = () => {
      this.frame.classList.remove("panning");
      this.frame.removeEventListener("pointermove", move);
      this.frame.removeEventListener("pointerup", release);
      this.frame.removeEventListener("pointercancel", release);
    };
    this.frame.addEventListener("pointermove", move);
    this.frame.addEventListener("pointerup", release);
    this.frame.addEventListener("pointercancel", release);
  }

  apply() {
    const transform = `translate(${this.x}px, ${this.y}px) scale(${this.scale})`;
    for (const image of this.images) image.style.transform = transform;
    this.layers[1].style.clipPath = `inset(0 0 0 ${this.split * 100}%)`;
    this.divider.style.left = this.split * 100 + "%";
    this.frame.dataset.zoom = this.scale;
    this.frame.dataset.split = this.split;
    this.zoomText.textContent = (this.scale >= 1 ? Math.round(this.scale * 100) : (this.scale * 100).toFixed(1)) + "%";
  }
}

buildTable();
const items = document.getElementById("items");
page.entries.forEach((entry, index) => new Viewer(entry, index, items));
if (location.hash) {
  const target = document.getElementById(location.hash.slice(1));
  if (target) target.scrollIntoView();
}
</script>
</body>
</html>
"""
