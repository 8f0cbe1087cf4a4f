"""Measurements that need a fresh process of their own; benchmarks/run.py starts each one as

    python -m benchmarks.probes prep PHOTOS OUTPUT WORKERS
    python -m benchmarks.probes peak-rss -- COMMAND...

and reads the one JSON line it prints. This module must not import TensorFlow, nor benchmarks.run
(which does): prep_images.py runs without TensorFlow, the prep pool's spawned workers import this
module again as their __main__, and a process that holds TensorFlow's threads is not what users run.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

from srcnn.config import PrepConfig
from srcnn.preparation import prepare_folder


def prep_rate(photos: Path, output: Path, workers: int) -> float:
    """Pairs per second that prepare_folder (what prep_images.py runs) makes of `photos` with `workers` processes.

    `force` makes every pair even where an earlier run filled `output` (one core: both runs use 1 worker).
    """
    start = time.perf_counter()
    summary = prepare_folder(
        photos, output, PrepConfig(), workers=workers, force=True, progress=False, log=lambda line: None
    )
    return summary.written / (time.perf_counter() - start)


def peak_rss_kib(command: list[str]) -> tuple[int, int, str]:
    """Runs `command` as this process's only child: its exit status, its peak resident memory and its stderr.

    RUSAGE_CHILDREN covers the children this process has waited for, here that one command alone.
    Linux reports the peak in KiB.
    """
    completed = subprocess.run(command, capture_output=True, text=True)
    return completed.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, completed.stderr


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    probes = parser.add_subparsers(dest="probe", required=True)
    prep = probes.add_parser("prep", help="prepare_folder's pairs per second")
    prep.add_argument("photos", type=Path, help="folder of photos")
    prep.add_argument("output", type=Path, help="where the pairs go")
    prep.add_argument("workers", type=int, help="worker processes")
    peak = probes.add_parser("peak-rss", help="peak resident memory of one command")
    peak.add_argument("command", nargs="+", help="the command and its arguments, after --")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Prints one JSON line; exits with the measured command's status (peak-rss) or 0 (prep)."""
    args = parse_args(argv)
    if args.probe == "prep":
        print(json.dumps({"images_per_s": prep_rate(args.photos, args.output, args.workers)}))
        return 0
    returncode, peak, stderr = peak_rss_kib(args.command)
    sys.stderr.write(stderr)
    print(json.dumps({"peak_rss_kib": peak}))
    return returncode


# The guard matters: the prep pool's spawned workers import this module again, and must not run main.
if __name__ == "__main__":
    sys.exit(main())
