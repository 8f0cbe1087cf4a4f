"""Which number format training computes in, and whether XLA compiles it: chosen per machine.

Measured on the project's 2-core CPU (benchmarks/README.md): mixed bfloat16 trains about 1.9x
faster than float32 on a CPU with bfloat16 instructions, and XLA is slower there, so `auto`
picks bfloat16 on such CPUs, float16 on CUDA GPUs (tensor cores), and float32 otherwise.
"""

from __future__ import annotations

from pathlib import Path

PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
JIT_CHOICES = ("auto", "on", "off")
# CPU flags (Linux /proc/cpuinfo) of instructions that compute in bfloat16: AMX tiles on recent
# Intel Xeons, AVX512-BF16 on Intel Cooper Lake and later, AMD Zen 4 and later.
BFLOAT16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")


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
    """XLA on or off for --jit: `auto` follows Keras (on with a GPU, off on CPU-only machines)."""
    if requested not in JIT_CHOICES:
        raise ValueError(f"jit must be one of {JIT_CHOICES}, got {requested!r}")
    if requested == "auto":
        import tensorflow as tf

        return bool(tf.config.list_physical_devices("GPU"))
    return requested == "on"
