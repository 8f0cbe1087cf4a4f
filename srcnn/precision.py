"""Which number format training computes in, and whether XLA compiles it: chosen per machine.

Measured on the project's 2-core CPU (benchmarks/README.md): mixed bfloat16 trains about 1.9x
faster than float32 on a CPU with bfloat16 instructions, and XLA is slower there, so `auto`
picks bfloat16 on such CPUs, float16 on CUDA GPUs (tensor cores), and float32 otherwise.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
JIT_CHOICES = ("auto", "on", "off")
# CPU flags (Linux /proc/cpuinfo) of instructions that compute in bfloat16: AMX tiles on recent
# Intel Xeons, AVX512-BF16 on Intel Cooper Lake and later, AMD Zen 4 and later.
BFLOAT16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")


def start_tensorflow() -> None:
    """Import TensorFlow and look for GPUs once, with the native lines it prints before its logging
    starts sent nowhere: on a machine without CUDA they are a few lines about missing drivers and a
    failed cuInit, which TF_CPP_MIN_LOG_LEVEL does not silence, printed before every run. The
    scripts say themselves whether they use a GPU. A user who sets TF_CPP_MIN_LOG_LEVEL to 0 or 1
    sees them again; Python errors of the import still show."""
    flags = cpu_flags()
    cannot_run = bool(flags) and "avx" not in flags  # TensorFlow's wheels abort here: let it say why
    if "tensorflow" in sys.modules or cannot_run or os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2") not in ("2", "3"):
        import tensorflow as tf

        tf.config.list_physical_devices("GPU")
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as nowhere:
            os.dup2(nowhere.fileno(), 2)
        import tensorflow as tf

        tf.config.list_physical_devices("GPU")
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The CPU's feature flags as Linux lists them; empty where that file does not exist."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return set()


def gpu_supports_float16() -> bool:
    """A visible GPU with tensor cores (CUDA compute capability 7.0 or newer)."""
    import tensorflow as tf

    for gpu in tf.config.list_physical_devices("GPU"):
        capability = tf.config.experimental.get_device_details(gpu).get("compute_capability")
        if capability and tuple(capability) >= (7, 0):
            return True
    return False


def resolve_precision(requested: str, flags: set[str] | None = None) -> tuple[str, str]:
    """(the Keras dtype policy to train in, why), for a --precision choice."""
    if requested not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {requested!r}")
    if requested != "auto":
        return requested, "asked for"
    if gpu_supports_float16():
        return "mixed_float16", "auto: a CUDA GPU with tensor cores"
    found = sorted(set(BFLOAT16_CPU_FLAGS) & (cpu_flags() if flags is None else flags))
    if found:
        return "mixed_bfloat16", f"auto: a CPU with {', '.join(found)}"
    return "float32", "auto: no bfloat16 CPU instructions or float16 GPU found"


def resolve_jit(requested: str) -> bool:
    """XLA on or off for the jit setting: `auto` follows Keras (on with a GPU, off on CPU-only machines)."""
    if requested not in JIT_CHOICES:
        raise ValueError(f"jit must be one of {JIT_CHOICES}, got {requested!r}")
    if requested == "auto":
        import tensorflow as tf

        return bool(tf.config.list_physical_devices("GPU"))
    return requested == "on"
