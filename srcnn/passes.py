"""Enlarging in passes: 3x and 4x as the 2x model first, then bicubic to the full size and a second
network trained on what that gives (the progressive idea of LapSRN, with the blog's network).

A model trained on such inputs names the model before it in its config.json ("first_pass", a path
relative to that file's folder, so a model folder travels with the one it names); the first pass's
own record says its scale. A model without a first pass is one pass: bicubic, then the network.

The first pass can be swapped for another model of its scale (`load_passes(..., first=...)`): the
router's x2 model for the kind of small image it reads, as at 2x. A second pass trained after the
clean model finishes what any of them gives, since each restores its kind of small image to what
the clean model would have made of a clean one (docs/scales.md measures it).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
from PIL import Image

from srcnn.checkpoints import CheckpointError, load_for_inference, read_run_record
from srcnn.config import ModelConfig, record_scale
from srcnn.network import super_resolve

MAX_PASSES = 4  # a chain longer than this is a loop of records naming each other


@dataclass
class Pass:
    weights: Path
    model: keras.Model
    config: ModelConfig
    scale: int  # the enlargement of the small image once this pass is done


def first_pass_of(weights: Path) -> Path | None:
    """The weights of the model that runs before this one, or None."""
    named = read_run_record(weights.parent).get("data", {}).get("first_pass")
    # Resolved first: the record names it relative to the folder's real place (a symlinked run folder).
    return None if not named else Path(os.path.normpath(weights.parent.resolve() / named))


def pass_chain(weights: Path, first: Path | None = None) -> list[tuple[Path, int]]:
    """[(weights, scale after it)], first pass first; with `first`, that model instead of the
    first pass the records name (it must enlarge as much)."""
    chain = []
    current: Path | None = weights
    while current is not None:
        if len(chain) == MAX_PASSES:
            raise CheckpointError(f"{weights}: its config.json names more than {MAX_PASSES} passes before it")
        chain.append((current, record_scale(read_run_record(current.parent))))
        current = first_pass_of(current)
    chain.reverse()
    if first is not None:
        if len(chain) < 2:
            raise CheckpointError(f"{weights}: one pass only, no first pass to replace by {first}")
        if "end_to_end" in read_run_record(weights.parent):  # docs/scales.md: 4 dB below bicubic
            raise CheckpointError(f"{weights}: trained together with its own first pass; {first} cannot replace it")
        first_scale = record_scale(read_run_record(first.parent))
        if first_scale != chain[0][1]:
            raise CheckpointError(
                f"{first}: a x{first_scale} model cannot replace the x{chain[0][1]} first pass of {weights}"
            )
        chain[0] = (first, first_scale)
    for (earlier, before), (later, after) in zip(chain, chain[1:], strict=False):
        if after <= before:
            raise CheckpointError(
                f"{later}: a x{after} model cannot follow {earlier}, which already enlarges x{before}"
            )
    return chain


def load_passes(weights: Path, first: Path | None = None) -> list[Pass]:
    """Every pass of a model, loaded, first first (`first`: see pass_chain)."""
    passes = []
    for path, scale in pass_chain(weights, first):
        model, config = load_for_inference(path)
        passes.append(Pass(path, model, config, scale))
    return passes


def enlarge(passes: list[Pass], small: Image.Image) -> np.ndarray:
    """The small RGB image enlarged by every pass (each: bicubic to its size, then its network), as
    one whole image: for benchmarks and prep. upscale.py tiles the same steps."""
    image = small
    for step in passes:
        size = (small.width * step.scale, small.height * step.scale)
        enlarged = super_resolve(step.model, np.asarray(image.resize(size, Image.Resampling.BICUBIC)))
        image = Image.fromarray(enlarged)
    return np.asarray(image)


@functools.cache
def _cached_passes(weights: str) -> list[Pass]:
    return load_passes(Path(weights))


def first_pass_input(weights: Path, small: Image.Image, size: tuple[int, int]) -> Image.Image:
    """What a model trained after `weights` sees: the small image through those passes, then
    bicubic to the full size (prep_images.py --first-pass). Loaded once per process."""
    enlarged = Image.fromarray(enlarge(_cached_passes(os.path.abspath(weights)), small))
    return enlarged.resize(size, Image.Resampling.BICUBIC)
