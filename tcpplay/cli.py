"""`tcpplay`: the command line. Bad input ends in a one-line error and exit code 2, never a traceback."""

from __future__ import annotations

import argparse
import sys

EXIT_OK = 0
EXIT_FAIL = 1
EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tcpplay",
        description="A terminal playground where you watch TCP work.",
    )
    parser.add_argument(
        "--seed", type=int, default=1, help="seed for ISNs, ports and link impairments (default 1)"
    )
    parser.add_argument(
        "--headless", action="store_true", help="print a tcpdump-style walkthrough instead of opening the app"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from .headless import walkthrough

    try:
        return walkthrough(sys.stdout, seed=args.seed)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
