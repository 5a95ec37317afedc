"""`python -m tcpplay.drill FILE...`: the same as `tcpplay drill FILE...` (handy while developing)."""

from __future__ import annotations

import argparse
import sys

from tcpplay.drill.cli import add_arguments, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tcpplay.drill")
    parser.add_argument(
        "--seed", type=int, default=1, help="seed for the SUT's ISNs and TS offsets (default 1)"
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
