"""Turn a folder of photos into the blog's (low_res, high_res) PNG pairs, split train/val/test.

Layout written under the output folder:
    {train,val,test}/{hr,lr}/NAME.png   and   manifest.json
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

from PIL import Image

from srcnn import degradations
from srcnn.config import BACKGROUNDS, SPLITS, PrepConfig
from srcnn.files import write_text_atomic
from srcnn.images import IMAGE_SUFFIXES, ImageReadError, blog_high_res, load_rgb, save_png_atomic, whole_high_res

MANIFEST_NAME = "manifest.json"


@dataclass(frozen=True)
class Job:
    """One source image and where its pair goes."""

    source: str  # absolute path of the input file
    relative: str  # path under the input folder, with forward slashes
    name: str  # output file name (NAME.png), the same in hr/ and lr/
    split: str
    jpeg_quality: int | None = None  # the low-res side through a JPEG of this quality (beyond the blog)
    degradation: dict | None = None  # how the small image is made (degradations.py); None: PIL bicubic


def find_images(input_dir: Path, exclude: Path | list[Path | None] | None = None) -> list[Path]:
    """Every file with an image suffix under input_dir, recursively, sorted; symlinked folders are
    not followed, nor the `exclude` folders (where results are written)."""
    found = []
    excluded = {path.resolve() for path in (exclude if isinstance(exclude, list) else [exclude]) if path is not None}
    for folder, subfolders, files in os.walk(input_dir):
        if excluded:
            subfolders[:] = [d for d in subfolders if (Path(folder) / d).resolve() not in excluded]
        subfolders.sort()
        for file_name in files:
            if Path(file_name).suffix.lower() in IMAGE_SUFFIXES:
                found.append(Path(folder) / file_name)
    return sorted(found)


def readable_photos(folders: list[Path], excluded: set[str] = frozenset()) -> Iterator[tuple[Path, Image.Image]]:
    """(path, RGB photo) for every image of the folders whose name is not excluded; an unreadable one
    is said on stderr and left out (for the lab scripts in docs/ that read whole folders)."""
    for folder in folders:
        for path in find_images(folder):
            if path.name in excluded:
                continue
            try:
                photo = load_rgb(path)
            except ImageReadError as error:
                print(f"skipped {path}: {error}", file=sys.stderr)
                continue
            yield path, photo  # outside the try: the caller's own errors are not this photo's


def output_name(relative: str) -> str:
    """A flat, stable PNG name from the source's path: 'trip/IMG 1.JPG' -> 'trip__IMG 1_JPG.png'.

    The suffix stays in the name so 'a.jpg' and 'a.png' never collide.
    """
    stem, dot, suffix = relative.rpartition(".")
    return f"{stem.replace('/', '__')}_{suffix}.png" if dot else f"{relative.replace('/', '__')}.png"


def forced_split(relative: str, config: PrepConfig) -> str | None:
    """The split a file is given, not hashed: named in --val-names, --split, or a top-level
    train/, val/ or test/ folder; None when its split comes from the hash."""
    if Path(relative).name in config.val_names or relative in config.val_names:
        return "val"
    if config.split:
        return config.split
    top = relative.split("/", 1)[0]
    return top if "/" in relative and top in SPLITS else None


def assign_split(relative: str, config: PrepConfig) -> str:
    """Deterministic split from a hash of the file's relative path.

    A file keeps its split when other photos are added or removed. A split given by name, flag or
    folder (forced_split) is kept instead.
    """
    forced = forced_split(relative, config)
    if forced is not None:
        return forced
    position = hash_position(relative)
    # A named validation set is the whole validation set: no hashed photo joins it.
    val_fraction = 0.0 if config.val_names else config.val_fraction
    if position < config.test_fraction:
        return "test"
    if position < config.test_fraction + val_fraction:
        return "val"
    return "train"


def hash_position(relative: str) -> float:
    """Where a file's path hashes to, uniform in [0, 1): its place in the split, stable forever."""
    return int.from_bytes(hashlib.sha256(relative.encode("utf-8")).digest()[:8], "big") / 2**64


def small_folder_splits(relatives: list[str], config: PrepConfig) -> dict[str, str]:
    """Splits for the hashed photos, making sure that from three photos on val and test get one each.

    With few photos the hash often leaves val or test empty (25 photos at 10%/10% did: 22/0/3).
    The training photo whose hash lies nearest that split's range moves into it; every other photo
    keeps its hashed split."""
    splits = {relative: assign_split(relative, config) for relative in relatives}  # all of them: a split
    # given by a folder or a name list counts as filled too; only hashed photos are ever moved
    val_fraction = 0.0 if config.val_names else config.val_fraction  # named: val is the named photos only
    wanted = [split for split, fraction in (("val", val_fraction), ("test", config.test_fraction)) if fraction]
    if len(relatives) >= 3:
        for split in wanted:
            if split not in splits.values():
                training = sorted(
                    (hash_position(r), r) for r, s in splits.items() if s == "train" and forced_split(r, config) is None
                )
                if len(training) > 1:
                    splits[training[0][1]] = split
    return splits


def plan_jobs(input_dir: Path, output_dir: Path, config: PrepConfig) -> tuple[list[Job], list[str]]:
    """Jobs for every image under input_dir, and warnings for names that collide."""
    jobs, problems, taken = [], [], {}
    paths = find_images(input_dir, exclude=output_dir)
    relatives = [path.relative_to(input_dir).as_posix() for path in paths]
    splits = small_folder_splits(relatives, config)
    for path, relative in zip(paths, relatives, strict=True):
        split = splits[relative]
        top, _, rest = relative.partition("/")
        # A split given by a top-level folder is already in the output path; keep it out of the name.
        name = output_name(rest if top == split and rest else relative)
        if config.mode == "blog" and config.background != "white":
            name = f"{name.removesuffix('.png')}_{config.background}.png"
        if name in taken:
            problems.append(f"{path}: skipped, its output name {name} is already used by {taken[name]}")
            continue
        taken[name] = path
        suffix = variant_suffix(config)
        for copy in range(config.copies):
            quality = jpeg_quality_for(relative, copy, config.jpeg_quality) if config.jpeg_quality else None
            recipe = None
            if config.degradation != degradations.DEFAULT:
                recipe = degradations.recipe_for(config.degradation, degradations.seed_from(f"{relative}#{copy}"))
            copy_name = f"{name.removesuffix('.png')}_{suffix}{copy}.png" if suffix else name
            jobs.append(Job(os.path.abspath(path), relative, copy_name, split, quality, recipe))
    return jobs, problems


VARIANT_SUFFIXES = ("jpeg", "mix")


def variant_suffix(config: PrepConfig) -> str:
    """What a photo's pairs are numbered after: NAME_jpeg0.png for JPEG copies, NAME_mix0.png for
    draws from the degradation mix, plain NAME.png for one pair made one way."""
    if config.jpeg_quality:
        return "jpeg"
    return "mix" if degradations.is_mix(config.degradation) else ""


def jpeg_quality_for(relative: str, copy: int, quality_range: tuple[int, ...]) -> int:
    """A JPEG quality drawn uniformly from the range, seeded by the photo's path and the copy: the
    same photo gets the same qualities in every prep run, on every machine."""
    digest = hashlib.sha256(f"{relative}#{copy}".encode()).digest()
    low, high = quality_range
    return low + int.from_bytes(digest[:8], "big") % (high - low + 1)


def pair_paths(output_dir: Path, job: Job) -> tuple[Path, Path]:
    """(low_res path, high_res path) of a job's outputs."""
    return output_dir / job.split / "lr" / job.name, output_dir / job.split / "hr" / job.name


def remove_from_other_splits(output_dir: Path, job: Job) -> None:
    """Delete this pair's outputs from the other splits (left there when the fractions change)."""
    for split in SPLITS:
        if split != job.split:
            for kind in ("hr", "lr"):
                (output_dir / split / kind / job.name).unlink(missing_ok=True)


def remove_other_variants(output_dir: Path, jobs: list[Job]) -> None:
    """With changed settings, delete pairs of these photos that the new settings no longer make
    (NAME.png after --jpeg-quality, or NAME_jpeg7.png after fewer --jpeg-copies): stale pairs
    would otherwise be trained on beside the new ones."""
    planned = {job.name for job in jobs}
    stems = set()
    for job in jobs:
        stem = job.name.removesuffix(".png")
        for suffix in VARIANT_SUFFIXES:
            head, marker, number = stem.rpartition(f"_{suffix}")
            if marker and number.isdigit():
                stem = head
                break
        stems.add(stem)
    for split in SPLITS:
        for kind in ("hr", "lr"):
            folder = output_dir / split / kind
            for stem in stems:
                variants = [
                    path for suffix in VARIANT_SUFFIXES for path in folder.glob(f"{glob_escape(stem)}_{suffix}*.png")
                ]
                for path in [folder / f"{stem}.png", *variants]:
                    if path.name not in planned:
                        path.unlink(missing_ok=True)


def glob_escape(text: str) -> str:
    return "".join(f"[{character}]" if character in "*?[" else character for character in text)


def is_up_to_date(output_dir: Path, job: Job) -> bool:
    """True when both outputs exist and are newer than the source."""
    try:
        source_time = os.stat(job.source).st_mtime
        return all(os.stat(p).st_mtime >= source_time for p in pair_paths(output_dir, job))
    except OSError:
        return False


def prepare_one(job: Job, output_dir: Path, config: PrepConfig) -> tuple[Job, str | None]:
    """Write one pair; returns (job, None) on success or (job, reason) when the file is unusable."""
    try:
        image = load_rgb(job.source)
        if config.mode == "whole":
            high_res = whole_high_res(image, config.scale)
        else:
            high_res = blog_high_res(image, config.size, config.scale, BACKGROUNDS[config.background])
        recipe = job.degradation or degradations.SUITE[degradations.DEFAULT]
        if config.first_pass:
            from srcnn.precision import start_tensorflow

            start_tensorflow()  # only where a model runs first, without its start-up noise
            from srcnn.passes import first_pass_input

            small, _ = degradations.small_and_low_res(high_res, config.scale, recipe, job.jpeg_quality)
            low_res = first_pass_input(Path(config.first_pass), small, high_res.size)
        else:
            low_res = degradations.degrade(high_res, config.scale, recipe, job.jpeg_quality)
    except ImageReadError as error:
        return job, str(error)
    except MemoryError:
        return job, "not enough memory to decode it"
    low_res_path, high_res_path = pair_paths(output_dir, job)
    # High-res last: its presence with a fresh time stamp marks the pair complete.
    save_png_atomic(low_res, low_res_path)
    save_png_atomic(high_res, high_res_path)
    return job, None


def load_manifest(output_dir: Path) -> dict:
    """The manifest of an earlier run, or an empty one."""
    try:
        return json.loads((output_dir / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def prune_removed(output_dir: Path, input_dir: Path, jobs: list[Job]) -> int:
    """Delete the pairs of files that were under input_dir in an earlier run but are gone now.

    Only pairs the manifest traces to a source under input_dir are touched, so pairs made from
    other input folders into the same output folder stay. Returns how many pairs were removed.
    """
    current = {job.name for job in jobs}
    root = os.path.join(os.path.abspath(input_dir), "")
    removed = 0
    for entry in load_manifest(output_dir).get("pairs", []):
        source, name = str(entry.get("source", "")), str(entry.get("name", ""))
        if source.startswith(root) and name and name not in current and "/" not in name:
            for split in SPLITS:
                for kind in ("hr", "lr"):
                    (output_dir / split / kind / name).unlink(missing_ok=True)
            removed += 1
    return removed


def write_manifest(
    output_dir: Path, input_dir: Path, config: PrepConfig, done: list[Job], keep_previous: bool = True
) -> Path:
    """Record source -> outputs -> split for every pair written now or (kept) by an earlier run."""
    previous = load_manifest(output_dir).get("pairs", [])
    entries = {entry["name"]: entry for entry in previous if isinstance(entry, dict) and "name" in entry}
    if not keep_previous:  # After pruning: drop what no longer has its files.
        entries = {name: entry for name, entry in entries.items() if (output_dir / entry.get("hr", "-")).is_file()}
    for job in done:
        low_res_path, high_res_path = pair_paths(output_dir, job)
        entries[job.name] = {
            "name": job.name,
            "source": job.source,
            "split": job.split,
            "hr": high_res_path.relative_to(output_dir).as_posix(),
            "lr": low_res_path.relative_to(output_dir).as_posix(),
            "prep": job_recipe(config, job),
        }
    manifest = {
        "config": asdict(config),
        "input": str(input_dir.resolve()),
        "pairs": [entries[name] for name in sorted(entries)],
    }
    path = output_dir / MANIFEST_NAME
    write_text_atomic(path, json.dumps(manifest, indent=1) + "\n")
    return path


def job_recipe(config: PrepConfig, job: Job) -> dict:
    """How this pair is made, as its manifest entry records it."""
    return (
        pair_recipe(config)
        | ({"degradation": job.degradation} if job.degradation else {})
        | ({"jpeg_quality": job.jpeg_quality} if job.jpeg_quality else {})
    )


def pair_recipe(config: PrepConfig) -> dict:
    """How a pair was made, as recorded with it (the size matters only for the blog's squares)."""
    recipe = {"mode": config.mode, "scale": config.scale} | (
        {"first_pass": config.first_pass} if config.first_pass else {}
    )
    return recipe | {"size": config.size, "background": config.background} if config.mode == "blog" else recipe


def make_output_folders(output_dir: Path) -> None:
    for split in SPLITS:
        for kind in ("hr", "lr"):
            (output_dir / split / kind).mkdir(parents=True, exist_ok=True)


def run_jobs(
    work: Callable[[Job], tuple[Job, str | None]], jobs: list[Job], workers: int
) -> Iterator[tuple[Job, str | None]]:
    """work(job) for every job, as results come in: in this process for one worker, else in a pool.

    The pool *spawns* fresh interpreters rather than forking this one: the caller may be train.py
    --demo or a test that already runs TensorFlow's threads, and a fork copies a lock another
    thread holds, which can deadlock the child at random.
    """
    if workers <= 1 or len(jobs) <= 1:
        yield from map(work, jobs)
        return
    with multiprocessing.get_context("spawn").Pool(min(workers, len(jobs))) as pool:
        yield from pool.imap_unordered(work, jobs, chunksize=4)


@dataclass
class PrepSummary:
    written: int
    up_to_date: int
    skipped: int
    counts: dict  # split -> pairs now available
    manifest: Path | None


def prepare_folder(
    input_dir: Path,
    output_dir: Path,
    config: PrepConfig,
    workers: int = 1,
    force: bool = False,
    log: Callable[[str], None] | None = None,
    progress: bool = True,
    prune: bool = False,
) -> PrepSummary:
    """Make the pairs for every image under input_dir; skip unusable files with one line each, sent to
    `log` (default: printed above the progress bar)."""
    from tqdm import tqdm

    log = log or tqdm.write
    config.validate()
    if not input_dir.is_dir():
        raise ValueError(f"{input_dir}: no such folder")
    if input_dir.resolve() == output_dir.resolve():
        raise ValueError(f"{input_dir}: the output folder must differ from the input folder")
    make_output_folders(output_dir)

    jobs, problems = plan_jobs(input_dir, output_dir, config)
    for problem in problems:
        log(problem)
    # Pairs made with another size or scale are stale: make them all again.
    same_settings = load_manifest(output_dir).get("config", {}) == json.loads(json.dumps(asdict(config)))
    for job in jobs:
        remove_from_other_splits(output_dir, job)
    if not same_settings:
        remove_other_variants(output_dir, jobs)
    # Each pair against its own recorded recipe, not the last run's settings: a folder made by several
    # prep runs (white squares, then black ones, then JPEGs) is made again only where a recipe changed.
    recorded = {
        entry["name"]: entry.get("prep")
        for entry in load_manifest(output_dir).get("pairs", [])
        if isinstance(entry, dict) and "name" in entry
    }

    def made_as_now(job: Job) -> bool:
        return recorded.get(job.name) == json.loads(json.dumps(job_recipe(config, job)))

    todo = [job for job in jobs if force or not made_as_now(job) or not is_up_to_date(output_dir, job)]
    todo_names = {job.name for job in todo}
    usable = [job for job in jobs if job.name not in todo_names]
    up_to_date, skipped = len(usable), len(problems)

    work = partial(prepare_one, output_dir=output_dir, config=config)
    if config.first_pass:
        # Each worker would load TensorFlow and the model, and each uses every core (or the whole
        # GPU): one process runs the first pass faster than several competing ones.
        workers = 1
    with tqdm(total=len(todo), unit="img", desc="prep", disable=not progress) as bar:
        for job, reason in run_jobs(work, todo, workers):
            if reason is None:
                usable.append(job)
            else:
                skipped += 1
                log(f"skipped {job.source}: {reason}")
            bar.update()

    if prune:
        log(f"pruned {prune_removed(output_dir, input_dir, jobs)} pairs whose source is gone")
    manifest = write_manifest(output_dir, input_dir, config, usable, keep_previous=not prune) if usable else None
    counts = {split: sum(job.split == split for job in usable) for split in SPLITS}
    return PrepSummary(len(usable) - up_to_date, up_to_date, skipped, counts, manifest)
