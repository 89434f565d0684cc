"""Render `scenes` into the community .npy layout: `python -m mtlpareto.data.export_scenes OUT`.

A separate module so that running it does not re-register the `scenes` dataset kind.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from mtlpareto.data.scenes import VARIANTS, export_layout


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mtlpareto.data.export_scenes", description="Render scenes into the community .npy layout (train/ and val/).")
    parser.add_argument("out", type=Path)
    parser.add_argument("--variant", choices=VARIANTS, default="indoor")
    parser.add_argument("--n-train", type=int, default=800)
    parser.add_argument("--n-test", type=int, default=200)
    parser.add_argument("--size", type=int, nargs=2, metavar=("H", "W"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--noise", type=float, default=0.02)
    parser.add_argument("--no-instance", action="store_true")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    args = parser.parse_args(argv)
    counts = export_layout(args.out, args.variant, args.n_train, args.n_test, args.size, args.seed, args.noise, not args.no_instance, args.workers)
    print(f"wrote {counts} samples to {args.out}")


if __name__ == "__main__":
    main()
