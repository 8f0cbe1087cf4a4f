"""Every setting in one place: the network, training and preparation configs, each a frozen dataclass.

Each default carries its source: the blog's words, or `# Assumed:` where the blog is silent.
Settings with a `help` in their field metadata become train.py flags (`--batch-size` for
`batch_size`), so the flag list cannot drift from the config.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from srcnn import degradations
from srcnn.precision import JIT_CHOICES, PRECISIONS

SCRATCH_LEARNING_RATE, FINE_TUNE_LEARNING_RATE = 1e-3, 1e-4
INITIALIZATIONS = ("pretrained", "near-identity", "identity", "glorot")
SCHEDULES = ("constant", "cosine")
LOSSES = ("mse", "l1")
SELECTIONS = ("rgb", "y")
TURNS = ("all", "diagonal")  # the orientations `augment` draws from (dataset._random_changes)
SPLITS = ("train", "val", "test")
PREP_MODES = ("blog", "whole")
BACKGROUNDS = {"white": (255, 255, 255), "black": (0, 0, 0)}
STRATEGIES = ("auto", "default", "mirrored", "multiworker")  # tf.distribute, see distribution.py
# upscale.py: output tile side in pixels (before the halo), chosen by measurement (benchmarks/README.md).
DEFAULT_TILE = 512
# The shipped models by name (checkpoints.SHIPPED_WEIGHTS; "jpeg": the JPEG model for the quality),
# here, away from Keras, for the scripts' --model choices.
SHIPPED_NAMES = ("clean", "general", "unfiltered", "sharpened", "jpeg", "jpeg-low", "jpeg-high")
# upscale.py's --runtime, see runtimes.py
RUNTIMES = ("auto", "keras", "keras-bfloat16", "onnxruntime", "onnxruntime-int8", "litert", "litert-int8")


def setting(default, help: str, choices: tuple[str, ...] | None = None):
    """A config field that train.py offers as a flag, with its help text and allowed values: the
    everyday settings. The others (research settings, the model's shape) are --config keys only
    (docs/training.md, "Settings")."""
    return field(default=default, metadata={"help": help, "choices": choices})


def config_choice(default: str, choices: tuple[str, ...]):
    """A --config key (no flag) that takes one of `choices`, checked by validate()."""
    return field(default=default, metadata={"choices": choices})


def record_scale(record: dict) -> int:
    """The scale a model was trained for, from its run record: recorded as such, else read from the
    recipes of its training pairs (runs recorded before the scale was), else 2."""
    data = record.get("data", {})
    if "scale" in data:
        return int(data["scale"])
    scales = {prep.get("scale", 2) for prep in data.get("train", {}).get("prep", []) if isinstance(prep, dict)}
    return int(scales.pop()) if len(scales) == 1 else 2


def first_pass_scale(weights: Path) -> int:
    """The enlargement of the model whose weights these are, from the config.json beside them (2
    without one): a JSON read, no TensorFlow."""
    try:
        record = json.loads((weights.parent / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return 2
    return record_scale(record) if isinstance(record, dict) else 2


def read_settings_file(path: Path) -> dict:
    """A --config file's settings. Its "val_images" may name a file of names instead of listing
    them (e.g. "bsd200-val.txt", beside the config): one list for every config that validates on it."""
    from srcnn.files import one_line, read_names

    try:
        values = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(values.get("val_images"), str):
            values["val_images"] = read_names(path.parent / values["val_images"])
    except (OSError, ValueError, AttributeError) as error:
        raise ValueError(f"{path}: cannot read the settings ({one_line(error)})") from None
    return values


# The JSON types each kind of setting takes (a whole number is a fine float; true is not a number).
JSON_TYPES = {"int": (int,), "float": (int, float), "str": (str,), "bool": (bool,), "tuple[str, ...]": (list, tuple)}


def config_from_dict(cls: type, values: dict, what: str):
    """A config dataclass from a dict (JSON), refusing keys it does not know instead of ignoring them,
    and values of the wrong type (a file's "two" for a number) with one line."""
    known = {item.name: item.type for item in fields(cls)}
    unknown = set(values) - set(known)
    if unknown:
        raise ValueError(f"unknown {what}: {sorted(unknown)} (known: {sorted(known)})")
    for name, value in values.items():
        allowed = JSON_TYPES.get(known[name])
        if allowed and (not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed)):
            raise ValueError(f"{name} takes {'a list of names' if list in allowed else known[name]}, got {value!r}")
    return cls(**values)


@dataclass(frozen=True)
class ModelConfig:
    layers: int = 7  # blog: a seven-layer DeconvNet
    # Assumed: the blog's "32 filters in each layer" is read as 32 in every layer but the last,
    # which must give the 3 colour channels: six layers of 32 and one of 3 (48,003 weights).
    filters: int = 32  # of every layer but the last
    # Assumed: the blog does not give a kernel size. 3x3 keeps the net small and cheap
    # (about 1.6 GFLOP per 128x128 forward pass) while seven layers still see a 15x15 window,
    # a little more than the SRCNN paper's 9-1-5 network (13x13).
    kernel_size: int = 3
    # Assumed: the blog names Leaky ReLUs but no slope; 0.2 is the default of TF's
    # tf.nn.leaky_relu, which the blog's TensorFlow code would have used (Keras' own is 0.3).
    leaky_slope: float = 0.2
    channels: int = 3  # blog: RGB in, RGB out

    def validate(self) -> None:
        if self.layers < 2 or self.filters < 1 or self.channels < 1:
            raise ValueError(f"invalid model config {self}")
        if self.kernel_size < 1 or self.kernel_size % 2 == 0:
            # An even kernel with 'same' padding shifts the image by half a pixel.
            raise ValueError(f"kernel_size must be odd, got {self.kernel_size}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> ModelConfig:
        return config_from_dict(cls, values, "model config keys")

    @property
    def receptive_field(self) -> int:
        """Side of the input window that one output pixel depends on."""
        return self.layers * (self.kernel_size - 1) + 1


@dataclass(frozen=True)
class TrainConfig:
    # Assumed: the blog trained "about 10 hours" on a GTX 1060 and gives no count.
    epochs: int = setting(100, "total epochs")
    # Assumed: not in the blog. Per replica with several devices (see README, --strategy).
    batch_size: int = setting(16, "images per step (per replica)")
    # Assumed: Adam's step size; the blog names no optimizer. 0 picks one by the start: 1e-3 from
    # scratch (beat 3e-4 on the demo), 1e-4 from trained weights (1e-3 first threw the shipped
    # model 4 dB back on 20 product photos; 1e-4 improved it every epoch; docs/results.md, "Your photos").
    learning_rate: float = setting(0.0, "Adam step size; 0: 1e-4 from trained weights, else 1e-3")
    seed: int = 0  # seeds weights, shuffling, crops, turns and negatives
    # Assumed: the blog does not say how the weights start. "pretrained" (default) fine-tunes the
    # shipped clean model, already better than bicubic, so a short run on a few own photos starts
    # and ends above it (docs/results.md, "Your photos"); a network of another shape starts "near-identity"
    # instead. From scratch: "near-identity" starts from tanh(input)
    # (network.initialize_near_identity); "identity" from the input itself, white and black exact
    # (network.initialize_identity); "glorot" is Keras' default.
    init: str = setting("pretrained", "weight start: the shipped model, or from scratch", INITIALIZATIONS)
    # Fine-tuning (beyond the blog): start from a trained model's weights instead of `init`, with a
    # fresh optimizer: a best.weights.h5 beside its config.json, or "pretrained" (the shipped model).
    start_from: str = setting("", "weights to start from instead of --init: a .weights.h5 or 'pretrained'")
    # "constant", or "cosine": per-epoch cosine decay from learning_rate to min_learning_rate.
    schedule: str = config_choice("constant", SCHEDULES)
    # Blog: "Our loss function is about as simple as possible, its just the mean-squared error".
    # "l1" (beyond the blog, for fine-tuning): its pull on a pixel does not fade as the error
    # shrinks, where the MSE's does; near tanh's ends both are damped, the MSE's far more.
    loss: str = config_choice("mse", LOSSES)
    # Beyond the blog: leave each crop's outer N pixels out of the loss. Within (receptive field - 1)
    # / 2 = 7 pixels of a crop's edge the network sees its zero padding (mid-grey in [-1, 1]), which
    # in a whole photo only its outermost pixels do; on 64x64 crops that is 39% of the pixels, and
    # fitting them costs the inside. The SRCNN paper scored only the inner pixels for this reason.
    loss_border: int = 0
    # Beyond the blog: the pixel loss cannot hold pure white or black exactly through tanh (see
    # network.PixelLoss); a colour value whose target is 0 or 255 also pays while tanh's input is
    # short of this margin. 0 = the blog's loss alone (and what runs recorded without it resume with).
    # Assumed 5 (4 before): with invert_chance 0.25, on 25 product photos on white, 5 kept white and
    # black at >= 99.9% in each of three seeds, 4 let black on black photos slip to 99.65% in one.
    pure_margin: float = 5.0
    # Beyond the blog: the standard score (Y-PSNR) reads only luma, where the MSE counts the three
    # colours alike; this share of the loss is taken on luma instead (0: the blog's loss).
    luma_weight: float = 0.0
    # Which validation PSNR picks best.weights.h5: "rgb" (all three colours, the default), or "y",
    # the luma the benchmarks score; a run with luma_weight trades colour for luma and is fairly
    # judged on luma (beyond the blog).
    select_on: str = config_choice("rgb", SELECTIONS)
    min_learning_rate: float = 1e-5  # where the cosine schedule ends
    # 0 trains on the prepared pairs as they are (the blog's 128x128 squares); N > 0 trains on
    # random N x N crops of them, `repeat` crops per pair per epoch (beyond the blog).
    patch_size: int = setting(0, "train on random N x N crops of the pairs (0: whole pairs)")
    repeat: int = 1  # crops per pair per epoch
    augment: bool = False  # random flips and quarter turns of the crops (beyond the blog)
    # Which orientations augment draws: "all" eight, or the four that keep each diagonal a diagonal
    # (as is, half turn, the two mirrors across a diagonal). Nearest-neighbour small images sit
    # half a pixel off centre along the main diagonal, OpenCV's one way, PIL's the other; any
    # other flip or quarter turn moves that shift onto the other diagonal, which no small image
    # has, so with "all" a network must hedge over four directions where two occur
    # (docs/degradations.md, "Nearest neighbour").
    turns: str = config_choice("all", TURNS)
    # Beyond the blog: the negative of a training pair is a training pair too (dataset._random_changes);
    # it brings pure black to photos on white, and back, so with the pure margin a fine-tune on a
    # folder of white-background photos keeps black exact as well. Assumed 0.25, measured on 25
    # product photos on white over three seeds (docs/results.md, "Your photos"), with a margin of 4: 0 let
    # black on black photos drift to 98.2% in one, 0.1 to 99.0%, and 0.5 let white slip to 99.77%;
    # with 5 and 0.25 every pure pixel held in all three.
    invert_chance: float = 0.25  # share of training pairs turned into their negatives (0-1)
    # Beyond the blog, the network unchanged: train each layer as a sum of linear branches that
    # collapse exactly into its one 3x3 kernel (srcnn/reparam.py); every saved model is the plain one.
    reparam: bool = False
    # Beyond the blog: the number format and XLA (srcnn/precision.py); "auto" picks per machine.
    precision: str = setting(
        "auto",
        "number format: auto = mixed_bfloat16 on CPUs with bfloat16 instructions, mixed_float16 on"
        " CUDA GPUs, else float32",
        PRECISIONS,
    )
    jit: str = config_choice("auto", JIT_CHOICES)  # XLA: auto = on with a GPU, off on a CPU
    # The validation images a run must be given, by their source file names (a --config key): train.py
    # refuses a val split that holds others, or one that shares an image with the training split.
    val_images: tuple[str, ...] = ()

    def validate(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.repeat < 1 or self.patch_size < 0 or self.loss_border < 0:
            raise ValueError("epochs, batch size and repeat must be at least 1, patch size and loss border at least 0")
        if not self.pure_margin >= 0:  # also refuses NaN
            raise ValueError(f"the pure margin must be 0 (off) or more, got {self.pure_margin}")
        if not 0 <= self.invert_chance <= 1:
            raise ValueError(f"the invert chance must be within 0-1, got {self.invert_chance}")
        if not 0 <= self.luma_weight <= 1:
            raise ValueError(f"the luma weight must be within 0-1, got {self.luma_weight}")
        if self.patch_size and 2 * self.loss_border >= self.patch_size:
            raise ValueError(f"loss border {self.loss_border} leaves nothing of a {self.patch_size}-pixel crop")
        if not self.learning_rate >= 0 or not self.min_learning_rate > 0:
            raise ValueError(
                f"learning rates must be positive (0: pick by the start), got {self.learning_rate},"
                f" {self.min_learning_rate}"
            )
        for item in fields(self):
            choices = item.metadata.get("choices")
            if choices and getattr(self, item.name) not in choices:
                raise ValueError(f"{item.name} must be one of {choices}, got {getattr(self, item.name)!r}")
        if self.turns != "all" and not self.augment:
            raise ValueError(f"turns {self.turns!r} needs augment (the orientations it draws from)")
        if self.augment and not self.patch_size:
            # Quarter turns need square images; patches are square, prepared pairs may not be.
            raise ValueError("augment needs a patch size (--patch-size)")

    @property
    def starts_trained(self) -> bool:
        """True when training starts from a trained model's weights rather than from scratch."""
        return self.init == "pretrained" or bool(self.start_from)

    def with_learning_rate(self) -> TrainConfig:
        """This config with learning_rate 0 (pick by the start) made concrete."""
        if self.learning_rate:
            return self
        return replace(self, learning_rate=FINE_TUNE_LEARNING_RATE if self.starts_trained else SCRATCH_LEARNING_RATE)

    def learning_rate_at(self, epoch: int) -> float:
        """The learning rate for a 0-based epoch under the schedule."""
        if self.schedule == "constant":
            return self.learning_rate
        progress = min(epoch / max(self.epochs - 1, 1), 1.0)
        return self.min_learning_rate + 0.5 * (self.learning_rate - self.min_learning_rate) * (
            1 + math.cos(math.pi * progress)
        )

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        return config_from_dict(cls, values, "training settings")


@dataclass(frozen=True)
class PrepConfig:
    size: int = 128  # blog: "I decided a size of 128x128 for my network"
    scale: int = 2  # blog: "scale the low-resolution images down by a factor of 2"
    val_fraction: float = 0.1  # Assumed: the blog does not describe a split.
    test_fraction: float = 0.1  # Assumed: as above.
    # "blog": pad onto a white square and resize to size x size. "whole": keep the photo's own size
    # (cropped to a multiple of scale), as SR benchmarks do and as random crops for training need.
    mode: str = "blog"
    split: str = ""  # put every photo into this split instead of the hashed one
    # Input files (by name, or path under the input folder) that go to the val split whatever else
    # says: a validation set named in a file, kept out of training (prep_images.py --val-names).
    val_names: tuple[str, ...] = ()
    # Beyond the blog: (lowest, highest) JPEG quality of the low-res side, drawn per pair from a
    # seed made of the photo's path (so prep is repeatable), and how many such pairs per photo.
    jpeg_quality: tuple[int, ...] = ()
    # Beyond the blog: how the small image is made (srcnn/degradations.py): the blog's PIL bicubic, one
    # named way ("cv2-cubic", "blur:1.2"), or "mix", drawn per pair from a seed made of the photo's
    # path and the copy. Pairs per photo (each its own JPEG quality or draw from the mix): copies.
    degradation: str = "bicubic"
    copies: int = 1
    # The square's colour in "blog" mode: the blog's white, or black (beyond the blog), so that a
    # model also learns to keep pure black black. Black pairs are named NAME_black.png.
    background: str = "white"
    # Beyond the blog: the weights of a model that enlarges the small image first (absolute path);
    # the low-res side is its result, then bicubic to the full size: the input of a model that runs
    # second (x3 and x4 after the x2 model, srcnn/passes.py).
    first_pass: str = ""

    def validate(self) -> None:
        if self.size < 2 or self.scale < 2:
            raise ValueError(f"size ({self.size}) and scale ({self.scale}) must both be at least 2")
        if self.first_pass:
            if not Path(self.first_pass).is_file():
                raise ValueError(f"{self.first_pass}: no such weights file (--first-pass)")
            first_scale = first_pass_scale(Path(self.first_pass))
            if first_scale >= self.scale:
                raise ValueError(
                    f"{self.first_pass} already enlarges x{first_scale}: a pass after it needs a larger --scale"
                )
        if self.mode == "blog" and self.size % self.scale:
            raise ValueError(f"size {self.size} is not a multiple of scale {self.scale}")
        if not (0 <= self.val_fraction and 0 <= self.test_fraction):
            raise ValueError("split fractions cannot be negative")
        if self.val_fraction + self.test_fraction >= 1:
            raise ValueError("val and test fractions must leave some images for training")
        if self.background not in BACKGROUNDS:
            raise ValueError(f"background must be one of {BACKGROUNDS}, got {self.background!r}")
        if self.mode not in PREP_MODES:
            raise ValueError(f"mode must be one of {PREP_MODES}, got {self.mode!r}")
        if self.split and self.split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {self.split!r}")
        if self.jpeg_quality and not (
            len(self.jpeg_quality) == 2 and 1 <= self.jpeg_quality[0] <= self.jpeg_quality[1] <= 100
        ):
            raise ValueError(f"JPEG quality must be a range LOW-HIGH within 1-100, got {self.jpeg_quality}")
        if degradations.is_mix(self.degradation):
            degradations.mix_ways(self.degradation)
        else:
            degradations.parse(self.degradation)
        if self.copies < 1 or (self.copies > 1 and not self.jpeg_quality and not degradations.is_mix(self.degradation)):
            raise ValueError("copies must be at least 1, and more than 1 needs a JPEG quality range or the mix")
