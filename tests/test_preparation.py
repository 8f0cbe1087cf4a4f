"""prep_images' folder handling: splits, names, idempotence, skipping bad files."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
from conftest import gradient_image
from PIL import Image

from srcnn.config import PrepConfig
from srcnn.preparation import assign_split, output_name, prepare_folder


def snapshot(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def test_split_is_deterministic_and_near_the_fractions():
    config = PrepConfig()
    names = [f"folder/photo_{index}.jpg" for index in range(2000)]
    splits = [assign_split(name, config) for name in names]
    assert splits == [assign_split(name, config) for name in names]
    assert 0.07 < splits.count("val") / len(names) < 0.13
    assert 0.07 < splits.count("test") / len(names) < 0.13


def test_existing_split_folders_are_kept():
    config = PrepConfig()
    assert assign_split("test/a.png", config) == "test"
    assert assign_split("val/deep/b.png", config) == "val"
    assert assign_split("train/c.png", config) == "train"


def test_output_names_are_flat_and_do_not_collide():
    assert output_name("trip/IMG 1.JPG") == "trip__IMG 1_JPG.png"
    assert output_name("a.jpg") != output_name("a.png")


def test_prepare_writes_pairs_manifest_and_is_idempotent(photo_folder, tmp_path):
    output = tmp_path / "data"
    before = snapshot(photo_folder)
    config = PrepConfig(size=32)
    summary = prepare_folder(photo_folder, output, config, workers=1, progress=False)
    assert summary.written == 6 and summary.skipped == 0
    assert sum(summary.counts.values()) == 6
    high_res = sorted(output.glob("*/hr/*.png"))
    assert len(high_res) == 6
    for path in high_res:
        low_res = path.parent.parent / "lr" / path.name
        assert Image.open(path).size == Image.open(low_res).size == (32, 32)
    assert (output / "manifest.json").is_file()
    assert snapshot(photo_folder) == before  # the input folder is never touched

    times = {path: path.stat().st_mtime_ns for path in output.rglob("*.png")}
    again = prepare_folder(photo_folder, output, config, workers=1, progress=False)
    assert again.written == 0 and again.up_to_date == 6
    assert times == {path: path.stat().st_mtime_ns for path in output.rglob("*.png")}


def test_new_photos_do_not_move_old_ones(photo_folder, tmp_path):
    output = tmp_path / "data"
    prepare_folder(photo_folder, output, PrepConfig(size=16), progress=False)
    first = {path.name: path.parent.parent.name for path in output.glob("*/hr/*.png")}
    for index in range(10):
        Image.new("RGB", (20, 20), (index, 0, 0)).save(photo_folder / f"new_{index}.png")
    prepare_folder(photo_folder, output, PrepConfig(size=16), progress=False)
    second = {path.name: path.parent.parent.name for path in output.glob("*/hr/*.png")}
    moved = {name: (first[name], second[name]) for name in first if second[name] != first[name]}
    # Only a photo that a small folder lent to val or test goes back to training once the folder
    # has its own; every hashed split stays.
    assert len(moved) <= 2 and all(after == "train" for _, after in moved.values()), moved


def test_changed_settings_rebuild_the_pairs(photo_folder, tmp_path):
    output = tmp_path / "data"
    prepare_folder(photo_folder, output, PrepConfig(size=16), progress=False)
    summary = prepare_folder(photo_folder, output, PrepConfig(size=24), progress=False)
    assert summary.written == 6
    assert {Image.open(p).size for p in output.glob("*/*/*.png")} == {(24, 24)}


def test_unreadable_files_are_skipped(photo_folder, tmp_path):
    (photo_folder / "notes.png").write_text("not a picture")
    (photo_folder / "empty.jpg").write_bytes(b"")
    messages = []
    summary = prepare_folder(photo_folder, tmp_path / "data", PrepConfig(size=16), log=messages.append, progress=False)
    assert summary.skipped == 2 and summary.written == 6
    assert sorted(message.split(": ", 1)[0] for message in messages) == [
        f"skipped {photo_folder / 'empty.jpg'}",
        f"skipped {photo_folder / 'notes.png'}",
    ]
    assert all("not an image" in message or "cannot" in message for message in messages), messages


def test_workers_are_spawned_not_forked(photo_folder, tmp_path, monkeypatch):
    """A fork of a process running TensorFlow's threads can deadlock; prep's pool must spawn."""
    import multiprocessing

    methods = []
    real_get_context = multiprocessing.get_context
    monkeypatch.setattr(
        multiprocessing, "get_context", lambda method=None: methods.append(method) or real_get_context(method)
    )
    summary = prepare_folder(photo_folder, tmp_path / "data", PrepConfig(size=16), workers=2, progress=False)
    assert summary.written == 6 and methods == ["spawn"]
    prepare_folder(photo_folder, tmp_path / "again", PrepConfig(size=16), workers=1, progress=False)
    assert methods == ["spawn"]  # one worker: no pool at all


def test_output_inside_input_is_not_rescanned(photo_folder):
    output = photo_folder / "prepared"
    prepare_folder(photo_folder, output, PrepConfig(size=16), progress=False)
    again = prepare_folder(photo_folder, output, PrepConfig(size=16), progress=False)
    assert again.up_to_date == 6 and again.written == 0


def test_prep_script_exit_status(photo_folder, tmp_path, capsys):
    import prep_images

    assert prep_images.main(["--input", str(photo_folder), "--output", str(tmp_path / "a"), "--size", "16"]) == 0
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "junk.png").write_text("junk")
    assert prep_images.main(["--input", str(empty), "--output", str(tmp_path / "b")]) == 1
    assert prep_images.main(["--input", str(tmp_path / "missing"), "--output", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert "no usable images" in err and "no such folder" in err


def test_pairs_are_white_padded(tmp_path):
    photos = tmp_path / "in"
    photos.mkdir()
    Image.new("RGB", (40, 20), (0, 0, 0)).save(photos / "wide.png")
    output = tmp_path / "out"
    prepare_folder(photos, output, PrepConfig(size=32, val_fraction=0, test_fraction=0), progress=False)
    high_res = np.asarray(Image.open(output / "train" / "hr" / "wide_png.png"))
    assert (high_res[:6] == 255).all() and (high_res[-6:] == 255).all()  # white bands
    assert (high_res[12:20] == 0).all()  # the black photo in the middle
    assert os.listdir(photos) == ["wide.png"]


def test_whole_mode_and_forced_split(photo_folder, tmp_path):
    output = tmp_path / "data"
    config = PrepConfig(mode="whole", split="val")
    summary = prepare_folder(photo_folder, output, config, progress=False)
    assert summary.counts == {"train": 0, "val": 6, "test": 0}
    sizes = {Image.open(path).size for path in output.glob("val/hr/*.png")}
    assert (40, 30) in sizes and (30, 44) in sizes and (34, 30) in sizes  # own sizes, even


def test_removed_photos_keep_their_pairs_unless_pruned(photo_folder, tmp_path):
    output = tmp_path / "data"
    other = tmp_path / "other"
    other.mkdir()
    Image.new("RGB", (20, 20), (1, 2, 3)).save(other / "elsewhere.png")
    prepare_folder(other, output, PrepConfig(size=16, split="val"), progress=False)
    prepare_folder(photo_folder, output, PrepConfig(size=16), progress=False)
    (photo_folder / "photo 0.jpg").unlink()
    prepare_folder(photo_folder, output, PrepConfig(size=16), progress=False)
    names = {path.name for path in output.glob("*/hr/*.png")}
    assert "photo 0_jpg.png" in names  # kept by default
    prepare_folder(photo_folder, output, PrepConfig(size=16), progress=False, prune=True)
    names = {path.name for path in output.glob("*/*/*.png")}
    assert "photo 0_jpg.png" not in names and "elsewhere_png.png" in names
    assert len(names) == 6  # five photos left, plus the other folder's one


def test_jpeg_pairs_are_seeded_by_the_photo_and_recorded(photo_folder, tmp_path):
    import json

    config = PrepConfig(size=24, jpeg_quality=(30, 95), copies=3)
    first = prepare_folder(photo_folder, tmp_path / "a", config, progress=False)
    prepare_folder(photo_folder, tmp_path / "b", config, progress=False)
    assert first.written == 18  # six photos, three JPEG versions each
    low_res = sorted((tmp_path / "a").glob("*/lr/*_jpeg*.png"))
    assert len(low_res) == 18
    for path in low_res:  # the same qualities and bytes in a second run: seeded, not random
        assert path.read_bytes() == (tmp_path / "b" / path.relative_to(tmp_path / "a")).read_bytes()
    pairs = json.loads((tmp_path / "a" / "manifest.json").read_text())["pairs"]
    qualities = [pair["prep"]["jpeg_quality"] for pair in pairs]
    assert all(30 <= quality <= 95 for quality in qualities) and len(set(qualities)) > 3
    plain = prepare_folder(photo_folder, tmp_path / "c", PrepConfig(size=24), progress=False)
    name = low_res[0].name.replace("_jpeg0", "").replace("_jpeg1", "").replace("_jpeg2", "")
    clean = next((tmp_path / "c").glob(f"*/lr/{name}"))
    assert plain.written == 6 and clean.read_bytes() != low_res[0].read_bytes()  # the JPEG did change it


def test_a_small_folder_gets_a_validation_and_a_test_photo():
    from collections import Counter

    from srcnn.preparation import small_folder_splits

    config = PrepConfig()
    for count in (3, 5, 25):
        names = [f"IMG_{index:04d}.jpg" for index in range(count)]
        counts = Counter(small_folder_splits(names, config).values())
        assert counts["val"] >= 1 and counts["test"] >= 1 and counts["train"] >= 1, (count, counts)
        hashed = {name: assign_split(name, config) for name in names}
        moved = [name for name, split in small_folder_splits(names, config).items() if split != hashed[name]]
        assert len(moved) <= 2  # everything else keeps its hashed split
    given = ["val/held out.png", "test/kept.png", "a.png", "b.png", "c.png", "d.png"]  # split folders fill them
    assert Counter(small_folder_splits(given, config).values()) == {"train": 4, "val": 1, "test": 1}
    big = [f"IMG_{index:04d}.jpg" for index in range(400)]
    assert small_folder_splits(big, config) == {name: assign_split(name, config) for name in big}


def test_named_validation_photos_are_the_whole_validation_set(photo_folder, tmp_path):
    config = PrepConfig(size=16, val_names=("photo 4.png",))  # the default fractions otherwise
    prepare_folder(photo_folder, tmp_path / "data", config, progress=False)
    assert [path.name for path in (tmp_path / "data" / "val" / "hr").iterdir()] == ["photo 4_png.png"]


def test_new_jpeg_settings_replace_the_old_pairs(photo_folder, tmp_path):
    output = tmp_path / "data"
    prepare_folder(photo_folder, output, PrepConfig(size=16), progress=False)
    prepare_folder(photo_folder, output, PrepConfig(size=16, jpeg_quality=(70, 95), copies=3), progress=False)
    assert len(list(output.glob("*/lr/*.png"))) == 18 and not [
        p for p in output.glob("*/lr/*.png") if "_jpeg" not in p.name
    ]
    prepare_folder(photo_folder, output, PrepConfig(size=16, jpeg_quality=(70, 95), copies=2), progress=False)
    assert sorted({path.name.rsplit("_jpeg", 1)[1] for path in output.glob("*/hr/*.png")}) == ["0.png", "1.png"]
    prepare_folder(photo_folder, output, PrepConfig(size=16, degradation="mix", copies=2), progress=False)
    assert sorted({path.name.rsplit("_", 1)[1] for path in output.glob("*/hr/*.png")}) == ["mix0.png", "mix1.png"]


def test_black_squares_for_black_to_stay_black(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.new("RGB", (40, 20), (120, 60, 30)).save(folder / "wide.png")
    prepare_folder(folder, tmp_path / "data", PrepConfig(size=16, split="train", background="black"), progress=False)
    high_res = np.asarray(Image.open(tmp_path / "data" / "train" / "hr" / "wide_png_black.png"))
    assert (high_res[:2] == 0).all() and (high_res[-2:] == 0).all()  # bands above and below are black


def test_a_folder_made_by_several_runs_is_up_to_date_when_they_run_again(photo_folder, tmp_path):
    """The README's recipes prepare one folder in several runs (white squares, then black ones):
    run again, each keeps its pairs, judged by the recipe recorded with each pair."""
    from srcnn.config import PrepConfig
    from srcnn.preparation import prepare_folder

    data = tmp_path / "data"
    runs = [PrepConfig(size=24, split="train"), PrepConfig(size=24, split="train", background="black")]
    first = [prepare_folder(photo_folder, data, config, progress=False) for config in runs]
    assert [summary.written for summary in first] == [6, 6]
    again = [prepare_folder(photo_folder, data, config, progress=False) for config in runs]
    assert [(summary.written, summary.up_to_date) for summary in again] == [(0, 6), (0, 6)]
    changed = prepare_folder(
        photo_folder, data, PrepConfig(size=24, split="train", background="black", scale=4), progress=False
    )
    assert changed.written == 6  # a changed recipe makes its pairs again


def test_readable_photos_leave_out_unreadable_and_excluded_files_and_say_so(tmp_path, capsys):
    from srcnn.preparation import readable_photos

    gradient_image(8, 6).save(tmp_path / "a.png")
    gradient_image(8, 6, seed=1).save(tmp_path / "b.png")
    (tmp_path / "broken.png").write_bytes(b"not a png")
    found = list(readable_photos([tmp_path], excluded={"b.png"}))
    assert [(path.name, photo.size, photo.mode) for path, photo in found] == [("a.png", (8, 6), "RGB")]
    assert capsys.readouterr().err.startswith(f"skipped {tmp_path / 'broken.png'}: ")
