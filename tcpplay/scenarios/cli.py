"""`tcpplay demo`: list the lessons, play one in the app, or run it headless (text or JSON) as a test.

    tcpplay demo [--list] [--lang en|zh]
    tcpplay demo NAME|FILE [--headless] [--lang en|zh] [--format text|json] [--seed N] [--link memory|tun]

--link tun plays the lesson through the Linux kernel: each of our two stacks on a TUN device in a private
network namespace, the kernel routing between them. The lesson keeps its virtual clock (no kernel timer is
involved), so the output is the memory link's but for what the kernel changes (TTL 63). Needs root.

Exit codes: 0 all checks passed (or the list was printed), 1 a check failed (or the app is missing),
2 bad input (unknown lesson, syntax error in a file) or a link that cannot be made here (no privileges).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import TextIO

from ..headless import JsonPrinter, TracePrinter
from ..lab import LabError
from .interpreter import CheckResult
from .model import Scenario
from .player import Player

EXIT_OK = 0
EXIT_FAIL = 1
EXIT_USAGE = 2


HELP_DESCRIPTION = "Play a tcpplay lesson in the app, or headless as a printed trace and a test."
HELP_EPILOG = """examples:
  tcpplay demo --list                          the lessons
  tcpplay demo handshake                       play one in the app (space: next step)
  tcpplay demo keepalive --headless            print it; exit 0 if every check passes
  sudo tcpplay demo lost-syn --headless --link tun
                                               the same lesson through the Linux kernel (still virtual
                                               time: 127 s of SYN retries run in a moment)

exit codes: 0 every check passed, 1 a check failed, 2 bad input or a link that cannot be made here
(--link tun without root: the message says what is missing)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `tcpplay demo` (and its help text)."""
    parser.description = parser.description or HELP_DESCRIPTION
    parser.epilog = HELP_EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("name", nargs="?", metavar="NAME|FILE", help="a lesson (see --list) or a .tcp file")
    parser.add_argument("--list", action="store_true", help="list the built-in lessons")
    parser.add_argument(
        "--headless",
        action="store_true",
        default=argparse.SUPPRESS,  # so `tcpplay --headless demo NAME` works too
        help="print the lesson (text or JSON) instead of opening the app",
    )
    parser.add_argument("--lang", default="en", choices=["en", "zh"], help="narration language (default en)")
    parser.add_argument(
        "--format", default="text", choices=["text", "json"], help="headless output format (default text)"
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=argparse.SUPPRESS,  # so `tcpplay --seed 5 demo NAME` works too
        help="seed for ISNs, ports, loss (default 1)",
    )
    parser.add_argument(
        "--theme", default=argparse.SUPPRESS, help="colour theme of the app (dark, light, high-contrast)"
    )
    parser.add_argument(
        "--pcap",
        default=argparse.SUPPRESS,
        metavar="FILE",
        help="save the lesson's capture to FILE (at the end, or on exit from the app)",
    )
    parser.add_argument(
        "--link",
        choices=["memory", "tun"],
        default=argparse.SUPPRESS,  # so `tcpplay --link tun demo NAME` works too
        help="memory (default): the wire is simulated; tun: the packets go through the Linux kernel, which "
        "routes them between two TUN devices in a private network namespace (removed at the end). The "
        "lesson keeps its virtual clock and its checks; only what the kernel changes differs (TTL 63). "
        "Needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN) and /dev/net/tun",
    )


def run(args: argparse.Namespace) -> int:
    """Run `tcpplay demo` with parsed arguments; returns the exit code."""
    from . import ScenarioSyntaxError, UnknownScenario, catalog, load

    out = sys.stdout
    if args.list or not args.name:
        try:
            lessons = catalog()
        except ScenarioSyntaxError as exc:  # pragma: no cover - the catalog is tested
            print(f"tcpplay: error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        print_list(lessons, args.lang, out)
        if not args.list:
            print("\nPlay one with: tcpplay demo NAME  (or: tcpplay demo NAME --headless)", file=out)
        return EXIT_OK
    try:
        scenario = load(args.name)
    except UnknownScenario as exc:
        print(f"tcpplay: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ScenarioSyntaxError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"tcpplay: error: cannot read {args.name}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    link = getattr(args, "link", None) or "memory"
    seed = getattr(args, "seed", 1)  # the demo's options, or the top-level ones written before "demo"
    pcap = getattr(args, "pcap", None)
    if getattr(args, "peer", None) == "kernel":
        print(
            "tcpplay: error: a lesson runs between two of our stacks on a virtual clock; the kernel peer "
            "is for the playground (tcpplay --peer kernel). Use --link tun to play a lesson through the "
            "kernel",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if getattr(args, "headless", False):
        return run_headless(
            scenario, lang=args.lang, fmt=args.format, seed=seed, out=out, link=link, pcap=pcap
        )
    try:
        from ..ui.app import run_app
    except ImportError as exc:
        print(
            f"tcpplay: the app cannot start here ({exc}); run the lesson with --headless instead",
            file=sys.stderr,
        )
        return EXIT_FAIL
    player = _player(scenario, lang=args.lang, seed=seed, link=link)
    if player is None:
        return EXIT_USAGE
    try:
        result = run_app(player=player, theme=getattr(args, "theme", None), pcap=pcap)
    finally:
        player.close()  # the app closes the lab it shows; this closes whatever the player holds besides
    return int(result or 0)


def _player(scenario: Scenario, *, lang: str, seed: int, link: str) -> Player | None:
    """A Player on `link`, or None after printing why the link cannot be made (no privileges...)."""
    try:
        player = Player(scenario, lang=lang, seed=seed, link=link)
    except LabError as exc:
        print(f"tcpplay: error: {exc}", file=sys.stderr)
        return None
    if link == "tun":
        print(f"tcpplay: link {player.lab.describe_link()}", file=sys.stderr)
    return player


def print_list(lessons: list[Scenario], lang: str, out: TextIO) -> None:
    """One lesson per line: name, title, one-line summary."""
    width = max((len(s.name) for s in lessons), default=0)
    for s in lessons:
        print(f"{s.name:<{width}}  {s.title_in(lang)}", file=out)
        print(f"{'':<{width}}  {s.summary(lang)}", file=out)


def run_headless(
    scenario: Scenario,
    *,
    lang: str = "en",
    fmt: str = "text",
    seed: int = 1,
    out: TextIO | None = None,
    link: str = "memory",
    pcap: str | None = None,
) -> int:
    """Play the whole lesson printing its trace; 0 if every check passed, else 1 (2 if `link` cannot be
    made here: the reason goes to stderr). A tun link's namespace is removed however the run ends. With
    `pcap`, the lesson's capture is saved there at the end (a LabError if it cannot be written)."""
    player = _player(scenario, lang=lang, seed=seed, link=link)
    if player is None:
        return EXIT_USAGE
    with player:
        code = _play_headless(player, scenario, lang=lang, fmt=fmt, seed=seed, out=out or sys.stdout)
        if pcap is not None:
            player.lab.export_pcap(pcap)
        return code


def _play_headless(player: Player, scenario: Scenario, *, lang: str, fmt: str, seed: int, out: TextIO) -> int:
    def write(line: str) -> None:
        print(line, file=out)

    printer: Callable[..., None]
    if fmt == "json":
        write(
            json.dumps(
                {
                    "type": "scenario",
                    "name": scenario.name,
                    "title": player.title,
                    "description": player.description,
                    "lang": lang,
                    "seed": seed,
                    "steps": len(player.steps),
                },
                ensure_ascii=False,
            )
        )
        printer = JsonPrinter(write)
    else:
        write(f"== {player.title} ==")
        if player.description:
            write(player.description)
        printer = TracePrinter(player.lab, write)
    player.lab.subscribe(printer)
    results = player.run_to_end()
    if fmt == "json":
        for r in results:
            write(json.dumps(_result_json(r), ensure_ascii=False))
        write(json.dumps({"type": "summary", **_summary(results)}, ensure_ascii=False))
    else:
        write("")
        write(f"== checks: {scenario.basename} ==")
        for r in results:
            write(r.describe(scenario.basename))
        summary = _summary(results)
        verdict = "PASS" if summary["failed"] == 0 else "FAIL"
        write(f"{verdict}: {summary['passed']} passed, {summary['failed']} failed")
    return EXIT_OK if all(r.passed for r in results) else EXIT_FAIL


def _result_json(r: CheckResult) -> dict[str, object]:
    return {
        "type": "check",
        "verdict": r.verdict,
        "line": r.line,
        "text": r.text,
        "message": r.message,
        "time_us": r.time,
        "step": r.step,
    }


def _summary(results: list[CheckResult]) -> dict[str, int]:
    passed = sum(1 for r in results if r.passed)
    return {"passed": passed, "failed": len(results) - passed}
