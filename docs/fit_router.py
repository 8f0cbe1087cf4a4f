"""Fit the router that sends a lossless small photo to the clean, the unfiltered or the sharpened model
(srcnn/routing.py).

Usage (from the project's root):
    python docs/fit_router.py ../shared/data/T91 ../shared/data/BSD200 --exclude configs/bsd200-val.txt \
        --out checkpoints/pretrained-router

Every photo of the folders (less the excluded names: keep the benchmarks and the held-out images
out; a quarter again pasted on white squares, as product photos are) is made small by each way of
KINDS, strengths drawn as in training (degradations.py's mix). Two photos in three train the tile
classifier (up to TILES_PER_IMAGE tiles each way); the third photo of each three picks the rest:
the four models enlarge a 192x192 piece of it each way, which gives each model's mean gain over
bicubic on each kind (the router's expected-gain table), and for each candidate bias towards the
smooth kind (the clean model) the routed result is scored three ways: each kind to its own model;
the same but box-filtered images to the unfiltered model too; and the model of the largest expected
gain (scored with the table of the other half of the pieces, so a piece never picks its own
model). Kept: the smallest bias that holds PROTOCOL_KEPT of the clean
model's gain on PIL-bicubic inputs (the benchmark protocol), with the rule whose worst way gains the
most there.

--classifier-from FOLDER reuses the tile classifier of a router fitted before (same photos and
tiles: the same fitting split) and measures the rest again, e.g. after a model changed.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from srcnn import degradations  # noqa: E402
from srcnn.images import pad_to_square, whole_high_res  # noqa: E402
from srcnn.preparation import readable_photos  # noqa: E402
from srcnn.routing import Router, build_classifier, luma_tiles  # noqa: E402

# The kinds, the ways that make each (mix:NAME draws the strengths), and the shipped model for each.
KINDS = {
    "smooth": ("bicubic", "bilinear", "lanczos", "mix:blur", "mix:noise"),
    "box-filtered": ("box",),  # = OpenCV's area and linear at 2x
    "unfiltered": ("cv2-cubic", "cv2-nearest", "nearest"),
    "sharpened": ("mix:sharpen",),
}
MODELS = {"smooth": "clean", "box-filtered": "general", "unfiltered": "unfiltered", "sharpened": "sharpened"}
# The ways the third photo of each three is scored on, and their kinds.
SCORED = {
    "bicubic": "smooth",
    "bilinear": "smooth",
    "lanczos": "smooth",
    "box": "box-filtered",
    "cv2-cubic": "unfiltered",
    "cv2-nearest": "unfiltered",
    "nearest": "unfiltered",
    "blur": "smooth",
    "noise": "smooth",
    "sharpen": "sharpened",
}
TILES_PER_IMAGE = 32
EPOCHS = 40
BATCH_SIZE = 256
BIASES = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)  # added to the smooth kind's mean log-probability
# Of the clean model's gain on PIL-bicubic inputs (the benchmark protocol): the issue asks 90%; 93% on
# these 192-pixel pieces leaves a margin (the router fitted at 90.9% here kept 88% on BSD20's whole photos).
PROTOCOL_KEPT = 0.93
HELD_OUT_EVERY = 3  # every 3rd photo (with its copy on a square) picks the bias, the others train the classifier
# The side of the piece of each held-out photo the models enlarge, by scale: a 96x96 small image at 2x
# and 3x; at 4x 80x80, as the 321-pixel side of BSD200's photos allows.
PIECE = {2: 192, 3: 288, 4: 320}


def training_tiles(
    photos: list, per_image: int = TILES_PER_IMAGE, stream: str = "router"
) -> tuple[np.ndarray, np.ndarray]:
    """Up to `per_image` tiles of each photo made small each way of KINDS, and their kinds' indices;
    the strengths drawn from `stream` and the photo's place in `photos`."""
    tiles, labels = [], []
    for index, photo in enumerate(photos):
        for label, ways in enumerate(KINDS.values()):
            for way in ways:
                recipe = degradations.recipe_for(way, degradations.seed_from(f"{stream} {index} {way}"))
                found = luma_tiles(np.asarray(degradations.downscale(photo, 2, recipe)), per_image)
                tiles.append(found)
                labels += [label] * len(found)
    return np.concatenate(tiles), np.array(labels)


def turned(tiles, seed):
    """Each tile of a (batch, TILE, TILE, 1) batch in one of its eight flips and quarter turns, drawn
    per tile: none of the kinds depends on the orientation (the nearest neighbours' half-pixel shifts
    land on the other diagonal, still unfiltered), and the classifier sees eight times the variety."""
    import tensorflow as tf

    draws = tf.random.stateless_uniform((3, tf.shape(tiles)[0], 1, 1, 1), seed=seed) < 0.5
    tiles = tf.where(draws[0], tf.transpose(tiles, [0, 2, 1, 3]), tiles)
    tiles = tf.where(draws[1], tf.reverse(tiles, [1]), tiles)
    return tf.where(draws[2], tf.reverse(tiles, [2]), tiles)


def train_classifier(tiles: np.ndarray, labels: np.ndarray, epochs: int = EPOCHS):
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    classifier = build_classifier(len(KINDS))
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    steps = epochs * -(-len(tiles) // BATCH_SIZE)
    classifier.compile(
        keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(2e-3, steps)), loss, metrics=["accuracy"]
    )
    counts = np.bincount(labels, minlength=len(KINDS))
    balance = (len(labels) / (len(KINDS) * counts)).astype(np.float32)  # each kind counts alike
    batches = (
        tf.data.Dataset.from_tensor_slices((tiles, labels, balance[labels]))
        .shuffle(len(tiles), seed=0, reshuffle_each_iteration=True)
        .batch(BATCH_SIZE)
    )
    seeds = tf.data.Dataset.random(seed=0, rerandomize_each_iteration=True)  # new draws each epoch
    batches = (
        tf.data.Dataset.zip(batches, seeds)
        .map(lambda batch, seed: (turned(batch[0], tf.stack([seed, 0])),) + batch[1:])
        .prefetch(tf.data.AUTOTUNE)
    )
    classifier.fit(batches, epochs=epochs, verbose=2)
    return classifier


def tile_accuracy(classifier, photos: list) -> float:
    """The share of the photos' tiles (16 a photo and way) whose kind the classifier reads right."""
    tiles, labels = training_tiles(photos, 16, "held out")
    return float(np.mean(np.argmax(classifier.predict(tiles, batch_size=1024, verbose=0), axis=1) == labels))


def gains(photos: list, names: list[str], scale: int = 2) -> dict[str, dict]:
    """{way: {"small": the small images, model: its Y-PSNR gain over bicubic per photo}} (shaved by the
    scale), on a PIECE x PIECE piece from the middle of each photo large enough, for each shipped model
    named; at 3x and 4x each x2 model's passes as upscale.py runs them (checkpoints.shipped_passes)."""
    from srcnn.checkpoints import shipped_passes
    from srcnn.metrics import benchmark_metrics
    from srcnn.passes import enlarge, load_passes

    passes = {name: load_passes(*shipped_passes(name, scale)) for name in names}
    side = PIECE[scale]
    pieces = []
    for photo in photos:
        width, height = photo.size
        if min(width, height) >= side:
            left, top = (width - side) // 2, (height - side) // 2
            pieces.append(photo.crop((left, top, left + side, top + side)))
    measured = {}
    for way in SCORED:
        rows = {name: [] for name in passes} | {"small": []}
        for index, piece in enumerate(pieces):
            recipe = degradations.recipe_for(way, seed=index)
            small, low_res_image = degradations.small_and_low_res(piece, scale, recipe)
            low_res, high_res = np.asarray(low_res_image), np.asarray(piece)
            bicubic = benchmark_metrics(high_res, low_res, scale)["psnr_y"]
            for name, chain in passes.items():
                rows[name].append(benchmark_metrics(high_res, enlarge(chain, small), scale)["psnr_y"] - bicubic)
            rows["small"].append(np.asarray(small))
        measured[way] = {key: (np.array(value) if key != "small" else value) for key, value in rows.items()}
    return measured


def towards_clean(bias: float) -> tuple[float, ...]:
    """The router's biases: `bias` on the smooth kind (the clean model), 0 on the others."""
    return (bias,) + (0.0,) * (len(KINDS) - 1)


def gain_table(measured: dict, models: tuple[str, ...], pieces: slice = slice(None)) -> tuple[tuple[float, ...], ...]:
    """gain[k][m]: models[m]'s mean gain on the pieces of each kind of KINDS (each way of a kind
    counts alike), over the pieces in `pieces`."""
    return tuple(
        tuple(
            float(np.mean([measured[way][model][pieces].mean() for way, of in SCORED.items() if of == kind]))
            for model in models
        )
        for kind in KINDS
    )


def pick_rule(measured: dict, router: Router, scale: int = 2) -> tuple[float, tuple[str, ...], tuple]:
    """(bias, each kind's model, gain table or ()): the smallest bias towards the clean model that
    keeps PROTOCOL_KEPT of its gain on the protocol, under the rule whose worst way gains more. At
    3x and 4x only the bias: each kind keeps the model it has at 2x."""
    print("mean gain (share below bicubic) by way: each model alone, then routed at each bias")
    print(f"{'':20s}" + "".join(f"{way:>15s}" for way in measured))
    for name in router.models:
        cells = "".join(f"{rows[name].mean():+8.2f} ({(rows[name] < 0).mean():4.0%})" for rows in measured.values())
        print(f"{name + ' alone':20s}{cells}")
    readings = {way: [router.reading(small, scale) for small in rows["small"]] for way, rows in measured.items()}
    count = len(measured["bicubic"]["clean"])
    halves = (slice(0, None, 2), slice(1, None, 2))
    # Each half of the pieces is routed with the gain table of the other half.
    tables = (gain_table(measured, router.models, halves[1]), gain_table(measured, router.models, halves[0]))
    box_to_unfiltered = tuple("unfiltered" if kind == "box-filtered" else model for kind, model in zip(
        router.kinds, router.models, strict=True))  # fmt: skip
    rules = {  # name: (each kind's model, the gain tables of the two halves or None)
        "model": (router.models, None),
        "model, box to unfiltered": (box_to_unfiltered, None),
        "gain": (router.models, tables),
    }
    if scale != 2:
        rules = {"model": (router.models, None)}
    kept_rules = {}
    for rule, (models, gain) in rules.items():
        judges = [Router(router.kinds, models, router.bias, gain=gain[half] if gain else ()) for half in (0, 1)]
        chosen = None
        for bias in BIASES:
            offset = np.array(towards_clean(bias))
            routed = {}
            for way, rows in measured.items():
                picks = [0 if reading is None else judges[index % 2].pick(reading + offset)
                         for index, reading in enumerate(readings[way])]  # fmt: skip
                routed[way] = np.array([rows[models[pick]][i] for i, pick in enumerate(picks)])
            cells = "".join(f"{gain.mean():+8.2f} ({(gain < 0).mean():4.0%})" for gain in routed.values())
            kept = routed["bicubic"].mean() / measured["bicubic"]["clean"].mean()
            worst = min(gain.mean() for gain in routed.values())
            print(f"{rule.replace('model, box to unfiltered', 'box-unf') + ', bias ' + str(bias):20s}{cells}"
                  f"  protocol kept {kept:.1%}")  # fmt: skip
            if chosen is None and kept >= PROTOCOL_KEPT:
                chosen = (worst, bias)
        if chosen is None:
            chosen = (-np.inf, BIASES[-1])
            print(f"{rule}: no bias keeps {PROTOCOL_KEPT:.0%} of the protocol's gain; the largest is kept")
        kept_rules[rule] = chosen
    rule = max(kept_rules, key=lambda name: kept_rules[name][0])
    worst, bias = kept_rules[rule]
    models, gain = rules[rule]
    print(f"kept: {rule}, bias {bias} (worst way {worst:+.2f} dB; {count} pieces a way)")
    return bias, models, (gain_table(measured, models) if gain else ())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--exclude", type=Path, help="a file of image names (one per line) to leave out")
    parser.add_argument("--out", type=Path, required=True, help="the folder for router.json and classifier.keras")
    parser.add_argument("--tiles-per-image", type=int, default=TILES_PER_IMAGE, help="tiles of each small image")
    parser.add_argument("--epochs", type=int, default=EPOCHS, help="the classifier's training epochs")
    parser.add_argument("--classifier-from", type=Path, help="a router folder whose tile classifier to reuse")
    parser.add_argument(
        "--scale",
        type=int,
        choices=(2, 3, 4),
        default=2,
        help="3 or 4: fit only the biases for small images enlarged that much (each x2 model, then the shipped"
        " second pass), added to the router of --classifier-from and saved to --out",
    )
    args = parser.parse_args(argv)
    if args.scale != 2 and not args.classifier_from:
        parser.error("--scale 3 or 4 adds to a fitted router: name it with --classifier-from")
    from srcnn.precision import start_tensorflow

    start_tensorflow()  # quietly
    from srcnn.files import read_names

    excluded = set(read_names(args.exclude)) if args.exclude else set()
    sources = []  # each photo, with its copy on a white square if it has one: they split together
    for path, photo in readable_photos(args.folders, excluded):
        if min(photo.size) < 32:
            print(f"skipped {path}: smaller than 32 pixels", file=sys.stderr)
            continue
        sources.append([whole_high_res(photo)])
        if len(sources) % 4 == 0:  # a quarter again on white squares, as product photos are
            sources[-1].append(whole_high_res(pad_to_square(photo)))
    fitting = [photo for index, versions in enumerate(sources) if index % HELD_OUT_EVERY for photo in versions]
    held_out = [photo for versions in sources[::HELD_OUT_EVERY] for photo in versions]
    if args.scale != 2:  # the router as fitted, with biases for this scale
        router = Router.load(args.classifier_from)
        if router.gain:  # its rule at 2x; pick_rule fits a scale's bias for each kind's own model only
            parser.error(f"--classifier-from {args.classifier_from}: a router with an expected-gain table")
        router.scale_bias[str(args.scale)] = towards_clean(0.0)  # read without a bias; pick_rule adds each
        measured = gains(held_out, sorted(set(router.models)), args.scale)
        bias, _, _ = pick_rule(measured, router, args.scale)
        router.scale_bias[str(args.scale)] = towards_clean(bias)
        note = f"; at {args.scale}x bias {bias}, on {len(measured['bicubic']['clean'])} pieces of the others"
        router.fitted_on = re.sub(rf"; at {args.scale}x bias [^;]*", "", router.fitted_on) + note
        router.save(args.out)
        print(f"router: {args.out} ({router.fitted_on})")
        return 0
    router = Router(tuple(KINDS), tuple(MODELS[kind] for kind in KINDS), towards_clean(0.0))
    if args.classifier_from:
        before = Router.load(args.classifier_from)
        if before.kinds != router.kinds:
            parser.error(f"--classifier-from {args.classifier_from}: its kinds {before.kinds} are not {router.kinds}")
        router.classifier = before.classifier
    else:
        tiles, labels = training_tiles(fitting, args.tiles_per_image)
        print(f"{len(tiles)} tiles of {len(fitting)} photos: " + ", ".join(
            f"{kind} {count}" for kind, count in zip(KINDS, np.bincount(labels), strict=True)))  # fmt: skip
        router.classifier = train_classifier(tiles, labels, args.epochs)
        print(f"tiles read right: {tile_accuracy(router.classifier, held_out):.1%} of the other photos'")
    measured = gains(held_out, list(dict.fromkeys(router.models)))
    bias, router.models, router.gain = pick_rule(measured, router)
    router.bias = towards_clean(bias)
    trained_on = f"{len(fitting)} photos of {', '.join(f.name for f in args.folders)}"
    router.fitted_on = (
        f"{f'the classifier of {args.classifier_from}' if args.classifier_from else trained_on} (classifier),"
        f" {len(held_out)} others (bias {bias} towards the clean model"
        f"{', expected-gain table' if router.gain else ''}; models {', '.join(router.models)})"
    )
    router.save(args.out)
    print(f"router: {args.out} ({router.fitted_on})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
