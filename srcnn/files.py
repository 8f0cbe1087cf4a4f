"""Crash-safe file writing (a kill at any moment leaves either the old file or the new one), and
errors reported in one line."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def write_atomic(path: str | os.PathLike, write: Callable[[Path], object]) -> None:
    """Call write(temporary) for a temporary sibling of `path`, then rename it into place.

    The temporary name keeps the final suffixes, since Keras and Pillow choose formats by them.
    """
    path = Path(path)
    temporary = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    try:
        write(temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    write_atomic(path, lambda temporary: temporary.write_text(text, encoding="utf-8"))


def one_line(error: BaseException) -> str:
    """The first line of an exception's message: errors are reported to users in one line."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def read_names(path: Path) -> tuple[str, ...]:
    """The names listed in a file, one per line; blank lines and # comments are skipped."""
    lines = (line.split("#", 1)[0].strip() for line in path.read_text(encoding="utf-8").splitlines())
    return tuple(line for line in lines if line)
