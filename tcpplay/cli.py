"""`tcpplay`: the command line. Bad input ends in a one-line error and exit code 2, never a traceback.

tcpplay [--link memory|tun] [--peer kernel [--kernel-role server|client]] [--seed N] [--theme NAME]
        [--pcap FILE] [--headless]
tcpplay demo [NAME|FILE] [--list] [--headless] [--lang en|zh] [--format text|json] [--seed N] [--link tun]
tcpplay drill FILE... [--ui] [--tolerance_usecs N] [--verbose] [--format text|json]
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

EXIT_OK = 0
EXIT_FAIL = 1
EXIT_USAGE = 2


class CliError(Exception):
    """An input problem: printed as `tcpplay: error: ...`, exit code 2."""


def _add_app_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--link",
        choices=["memory", "tun"],
        default="memory",
        help="how the two stacks are connected: in memory (default, no privileges) or through the kernel "
        "over TUN devices in a private network namespace (needs root or CAP_NET_ADMIN)",
    )
    parser.add_argument(
        "--peer",
        choices=["stack", "kernel"],
        default="stack",
        help="the other endpoint: our stack (default) or a real Linux socket (implies --link tun)",
    )
    parser.add_argument(
        "--kernel-role",
        choices=["server", "client"],
        default="server",
        help="with --peer kernel: whether the Linux socket is the server (default) or the client",
    )
    parser.add_argument(
        "--seed", type=int, default=1, help="seed for ISNs, ports and impairments (default 1)"
    )
    parser.add_argument("--theme", default=None, help="colour theme (dark, light, high-contrast); remembered")
    parser.add_argument("--pcap", default=None, metavar="FILE", help="save the capture to FILE on exit")
    parser.add_argument(
        "--headless", action="store_true", help="print a tcpdump-style walkthrough instead of opening the app"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tcpplay",
        description="A terminal playground where you watch TCP work.",
        epilog="Subcommands: `tcpplay demo --help`, `tcpplay drill --help`.",
    )
    _add_app_options(parser)
    sub = parser.add_subparsers(dest="command", metavar="{demo,drill}")
    demo = sub.add_parser(
        "demo", help="play a lesson (handshake, TIME_WAIT, SYN flood...) in the app or headless"
    )
    drill = sub.add_parser("drill", help="run packetdrill scripts against tcpplay's stack")
    _lazy_arguments(demo, "tcpplay.scenarios.cli")
    _lazy_arguments(drill, "tcpplay.drill.cli")
    return parser


def _lazy_arguments(parser: argparse.ArgumentParser, module: str) -> None:
    import importlib

    mod = importlib.import_module(module)
    mod.add_arguments(parser)
    parser.set_defaults(run=mod.run)


def _run_app(args: argparse.Namespace) -> int:
    if args.headless:
        if args.link != "memory" or args.peer != "stack":
            raise CliError(
                "--headless prints the walkthrough on the in-memory link; for a run through the kernel "
                "use a lesson: tcpplay demo handshake --headless --link tun"
            )
        from .headless import walkthrough

        return walkthrough(sys.stdout, seed=args.seed, pcap=args.pcap)
    from .ui.app import run_app

    return run_app(
        seed=args.seed,
        theme=args.theme,
        pcap=args.pcap,
        link=args.link,
        peer=args.peer,
        kernel_role=args.kernel_role,
    )


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    runner: Callable[[argparse.Namespace], int] = getattr(args, "run", _run_app)
    from .lab import LabError

    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            # A terminal or pipe whose encoding lacks → or 三 gets "?" instead of a UnicodeEncodeError.
            reconfigure(errors="replace")
    try:
        code = runner(args)
        sys.stdout.flush()  # here, so a full disk is reported like any other error
        return code
    except (CliError, LabError) as exc:
        print(f"tcpplay: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except OSError as exc:  # writing the output failed (ENOSPC on /dev/full, EIO...)
        _discard_stdout()
        print(f"tcpplay: error: cannot write the output: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE


def _discard_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not fail a second time."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
