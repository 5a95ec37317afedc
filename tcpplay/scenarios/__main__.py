"""`python -m tcpplay.scenarios`: the same as `tcpplay demo` (for working on lessons)."""

from __future__ import annotations

import argparse
import sys

from .cli import add_arguments, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tcpplay demo", description="Play a tcpplay lesson.")
    add_arguments(parser)
    try:
        return run(parser.parse_args(argv))
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
