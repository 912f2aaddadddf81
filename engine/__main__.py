"""`python -m engine COMMAND ...`: the tools without the browser, over the same engine functions."""
from __future__ import annotations

import argparse
import importlib
import sys

from engine.cli import COMMANDS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", required=True)
    argv = sys.argv[1:] if argv is None else argv
    # Only the named command's module is imported (with what it imports: torch, for most): a Ray
    # driver or an export starts in a fraction of a second. Anything else (--help, a typo) lists all.
    named = argv[0].replace("-", "_") if argv else None
    for name in [named] if named in COMMANDS else COMMANDS:
        importlib.import_module(f"engine.cli.{name}").register(subparsers)
    args = parser.parse_args(argv)
    try:
        args.run(args)
    except (ValueError, OSError) as exc:  # ImageError, ModelLoadError and bad parameters are ValueErrors
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
