"""`tcpplay drill FILE...`: run packetdrill scripts against tcpplay's stack on a virtual clock.

`tcpplay/cli.py` wires this in as a subcommand: `add_arguments(subparser)` then `run(args)`. The global
`--seed` of the top-level parser (if any, read as `args.seed`) seeds the SUT's ISNs and TS offsets.

Exit codes: 0 every script passed; 1 a script failed; 2 usage error, unreadable or unparsable file, a script
that cannot run as written (ERROR) or uses an unsupported construct (UNSUPPORTED).
"""

from __future__ import annotations

import argparse
import sys

from tcpplay.drill.report import EXIT_USAGE, FileResult, exit_code, render_json, render_text
from tcpplay.drill.runner import RunConfig, run_path

__all__ = ["add_arguments", "run"]


def _tolerance_usecs(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number of microseconds: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {value}")
    return value


def _tolerance_percent(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"must be between 0 and 100: {value}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add `drill`'s arguments to parser (the subcommand's parser)."""
    parser.description = (
        "Run packetdrill scripts (plain .pkt files or conformance-example files with '--- script ---' "
        "sections) against tcpplay's TCP stack on a virtual clock."
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="script files to run")
    parser.add_argument(
        "--tolerance_usecs",
        "--tolerance-usecs",
        dest="tolerance_usecs",
        type=_tolerance_usecs,
        default=4000,
        metavar="N",
        help="timing tolerance in microseconds (default 4000, as packetdrill)",
    )
    parser.add_argument(
        "--tolerance_percent",
        "--tolerance-percent",
        dest="tolerance_percent",
        type=_tolerance_percent,
        default=12.5,
        metavar="P",
        help="timing tolerance as a percentage of the gap since the previous event; the larger of the "
        "two tolerances applies (default 12.5, as packetdrill)",
    )
    parser.add_argument(
        "--verbose", "-v", action="store_true", help="print the whole trace of every script, passing too"
    )
    parser.add_argument(
        "--format", choices=("text", "json"), default="text", help="report format (default text)"
    )
    parser.add_argument(
        "--ui",
        action="store_true",
        help="watch the run in the app, one statement per step (space/enter next, backspace back); "
        "a failure is shown on the line that failed. Takes one FILE",
    )
    parser.add_argument(
        "--part", default=None, metavar="NAME", help="with --ui: the part of the file to watch (e.g. B)"
    )


def run(args: argparse.Namespace) -> int:
    """Run the files named in args; print the report on stdout; return the exit code."""
    if getattr(args, "pcap", None):
        print(
            "tcpplay: error: drill does not save a capture (--pcap); the report shows every segment, and "
            "`tcpplay drill --ui FILE` steps through them in the app, where E exports the capture",
            file=sys.stderr,
        )
        return EXIT_USAGE
    seed = getattr(args, "seed", None)
    config = RunConfig(
        tolerance_usecs=args.tolerance_usecs,
        tolerance_percent=args.tolerance_percent,
        seed=seed if isinstance(seed, int) else 1,
    )
    if getattr(args, "ui", False):
        return run_ui(args, config)
    results: list[FileResult] = []
    try:
        for name in args.files:
            results.append(run_path(name, config=config))
    except KeyboardInterrupt:
        return 130
    render = render_json if args.format == "json" else render_text
    try:
        sys.stdout.write(render(results, verbose=args.verbose))
        sys.stdout.flush()
    except BrokenPipeError:
        return EXIT_USAGE if not results else exit_code(results)
    return exit_code(results)


def run_ui(args: argparse.Namespace, config: RunConfig) -> int:
    """`tcpplay drill FILE --ui`: the run in the app. Exit code as headless: 0 only if the script passes."""
    from ..lab import LabError
    from .parser import DrillSyntaxError, parse_file
    from .player import DrillPlayer, pick_script

    if len(args.files) != 1:
        print("tcpplay: error: --ui watches one script file; name exactly one FILE", file=sys.stderr)
        return EXIT_USAGE
    name = args.files[0]
    try:
        drill = parse_file(name)
    except DrillSyntaxError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_USAGE
    except (OSError, UnicodeDecodeError) as exc:
        print(f"{name}: {getattr(exc, 'strerror', None) or exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        player = DrillPlayer(pick_script(drill, args.part), filename=name, config=config)
    except LabError as exc:
        print(f"tcpplay: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    from ..ui.app import run_app

    run_app(seed=config.seed, theme=getattr(args, "theme", None), player=player)
    return 0 if player.passed else EXIT_USAGE if player.result.status.value != "FAIL" else 1
