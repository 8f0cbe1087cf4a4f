"""The blog's network: print its summary and parameter count.

Usage: python model.py [--kernel-size 3] [--filters 32] [--layers 7]
"""

from __future__ import annotations

import argparse
import sys

from srcnn.config import ModelConfig
from srcnn.network import build_model

DEFAULTS = ModelConfig()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", type=int, default=DEFAULTS.layers, help="default: 7 (blog)")
    parser.add_argument("--filters", type=int, default=DEFAULTS.filters, help="default: 32 (blog)")
    parser.add_argument("--kernel-size", type=int, default=DEFAULTS.kernel_size, help="default: 3 (assumed)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config = ModelConfig(layers=args.layers, filters=args.filters, kernel_size=args.kernel_size)
    try:
        model = build_model(config)
    except ValueError as error:
        print(f"model.py: error: {error}", file=sys.stderr)
        return 2
    model.summary()
    print(f"parameters: {model.count_params():,}")
    print(f"receptive field: {config.receptive_field}x{config.receptive_field} pixels")
    return 0


if __name__ == "__main__":
    sys.exit(main())
