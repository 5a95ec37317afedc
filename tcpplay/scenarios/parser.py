"""Read `*.tcp` scenario files into `tcpplay.scenarios.model` objects.

The whole file is read before anything runs. Every problem found is reported, one per line, as
`file:line:col: message (expected ...)` in a `ScenarioSyntaxError`; nothing is returned half parsed.
The language itself is described in `tcpplay.scenarios` (the package docstring).
"""

from __future__ import annotations

import difflib
import errno as errno_module
import os
import re
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path

from stack import State
from stack.congestion import CONTROLLERS
from stack.settings import LIMITS, Settings
from stack.wire import ACK, CWR, ECE, FIN, PSH, RST, SYN, URG

from ..capture import FATES
from ..lab import SOCKOPTS
from ..links.memory import DROP_KINDS
from ..scriptfile import read_script
from .model import (
    DEFAULT_LANG,
    HOSTS,
    Abort,
    Accept,
    AutoAccept,
    AutoRead,
    Close,
    Command,
    Condition,
    Connect,
    Count,
    CountIn,
    Crash,
    DropNext,
    ExpectCall,
    ExpectCount,
    ExpectField,
    ExpectReceived,
    ExpectSegment,
    ExpectState,
    Impair,
    Inject,
    Listen,
    Partition,
    Pause,
    Reboot,
    Recv,
    Repeat,
    RunUntil,
    Scenario,
    SegmentPattern,
    SegmentSeen,
    Send,
    SetSockOpt,
    Show,
    Shutdown,
    StateIs,
    Step,
    StopListening,
    SynFlood,
    Sysctl,
    TimeSpec,
    Wait,
    first_sentence,
)

__all__ = ["ScenarioSyntaxError", "SyntaxIssue", "parse_file", "parse_text", "scenario_name"]


@dataclass(frozen=True, slots=True)
class SyntaxIssue:
    filename: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.filename}:{self.line}:{self.column}: {self.message}"


class ScenarioSyntaxError(Exception):
    """A file that cannot be run. `str()` lists every problem, one `file:line:col: message` per line."""

    def __init__(self, issues: list[SyntaxIssue]) -> None:
        super().__init__("\n".join(str(issue) for issue in issues))
        self.issues = issues


class _Problem(Exception):
    """One problem on the line being parsed (internal)."""

    def __init__(self, column: int, message: str) -> None:
        super().__init__(message)
        self.column = column
        self.message = message


# ----------------------------------------------------------------------------------------------------------
# vocabulary

STATE_NAMES = [s.value for s in State]
SETTING_NAMES = Settings().names()
SYSCTL_PREFIXES = ("net.ipv4.", "net.core.")
CALLS = ("connect", "accept", "send", "recv", "shutdown", "close", "listen", "bind", "setsockopt")
FLAG_LETTERS = {"F": FIN, "S": SYN, "R": RST, "P": PSH, ".": ACK, "U": URG, "E": ECE, "W": CWR}
IMPAIR_TIMES = ("delay", "jitter")
IMPAIR_PERCENTS = ("loss", "duplicate", "reorder", "corrupt")
HOST_VERBS = (
    "listen",
    "stop",
    "connect",
    "accept",
    "auto-accept",
    "auto-read",
    "send",
    "recv",
    "shutdown",
    "close",
    "abort",
    "setsockopt",
    "sysctl",
    "crash",
    "reboot",
)
COMMANDS = (
    "drop",
    "impair",
    "partition",
    "syn",
    "inject",
    "wait",
    "run",
    "show",
    "crash",
    "reboot",
    "pause",
    "repeat",
    "end",
    "expect",
)
UNIT_NAMES = {
    "ms": "ms",
    "msec": "ms",
    "s": "s",
    "sec": "s",
    "secs": "s",
    "second": "s",
    "seconds": "s",
    "min": "min",
    "mins": "min",
    "minute": "min",
    "minutes": "min",
    "h": "h",
    "hour": "h",
    "hours": "h",
}
# expect <host> <field>: (snapshot attribute, kind) with kind "int", "bool" or "time".
FIELDS: dict[str, str] = {
    "cwnd": "int",
    "ssthresh": "int",
    "mss": "int",
    "advmss": "int",
    "peer_mss": "int",
    "snd_wnd": "int",
    "rcv_wnd": "int",
    "snd_wscale": "int",
    "rcv_wscale": "int",
    "flight": "int",
    "backoff": "int",
    "retransmits": "int",
    "total_retrans": "int",
    "send_buffered": "int",
    "recv_buffered": "int",
    "unsent": "int",
    "probes_out": "int",
    "syn_queue": "int",
    "accept_queue": "int",
    "backlog": "int",
    "sack": "bool",
    "timestamps": "bool",
    "keepalive": "bool",
    "rto": "time",
    "srtt": "time",
    "rttvar": "time",
}
ERRNO_NAMES = sorted(set(errno_module.errorcode.values()))
DEFAULT_WITHIN = TimeSpec(Decimal(600), "s")

_KEY_LINE = re.compile(r"([A-Za-z][A-Za-z0-9_-]*)(?:\.([A-Za-z0-9_-]+))?\s*:(.*)", re.DOTALL)
_TEXT_KEYS = ("title", "description", "say", "step")
_LANG = re.compile(r"[a-z]{2,3}(?:-[A-Za-z0-9]{2,8})?")
_NUMBER = re.compile(r"[+-]?\d+(?:\.\d+)?")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
_OPS = (">=", "<=", "!=", "==", "=", ">", "<", "%")


def scenario_name(filename: str) -> str:
    """`catalog/03-three-segment-close.tcp` -> `three-segment-close`."""
    stem = Path(filename).name
    if stem.endswith(".tcp"):
        stem = stem[:-4]
    return re.sub(r"^\d+[-_]", "", stem)


def _quote(text: str) -> str:
    return f'"{text}"'


def _did_you_mean(word: str, choices: list[str] | tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    if not close:
        close = difflib.get_close_matches(word.lower(), [c.lower() for c in choices], n=1, cutoff=0.6)
        if close:
            close = [c for c in choices if c.lower() == close[0]]
    return f", did you mean {close[0]}?" if close else ""


def _one_of(choices: list[str] | tuple[str, ...]) -> str:
    items = list(choices)
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + " or " + items[-1]


def _is_cjk(ch: str) -> bool:
    code = ord(ch)
    return 0x2E80 <= code <= 0x9FFF or 0x3000 <= code <= 0x303F or 0xFF00 <= code <= 0xFFEF


def _join_text(first: str, more: str) -> str:
    if not first:
        return more
    if not more:
        return first
    if _is_cjk(first[-1]) or _is_cjk(more[0]):
        return first + more
    return first + " " + more


# ----------------------------------------------------------------------------------------------------------
# tokens


@dataclass(frozen=True, slots=True)
class _At:
    """Where a command comes from: its line number and text."""

    line: int
    text: str


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # "word", "number", "string", "flags", "op"
    text: str  # as written (for a string: its decoded value)
    column: int  # 1-based

    @property
    def low(self) -> str:
        return self.text.lower() if self.kind == "word" else self.text


_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\", "0": "\0"}
ESCAPES_TEXT = '\\n, \\r, \\t, \\", \\\\ or \\0'


def tokenize(text: str) -> list[Token]:
    """Split one command line into tokens; a `#` outside a string starts a comment."""
    tokens: list[Token] = []
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        col = i + 1
        if ch.isspace():
            i += 1
            continue
        if ch == "#":
            break
        if ch == '"':
            out = []
            j = i + 1
            while True:
                if j >= n:
                    raise _Problem(col, 'this string has no closing quote (expected a " before the end)')
                c = text[j]
                if c == '"':
                    break
                if c == "\\":
                    if j + 1 >= n or text[j + 1] not in _ESCAPES:
                        bad = text[j : j + 2]
                        raise _Problem(j + 1, f"unknown escape {bad!r} in a string (expected {ESCAPES_TEXT})")
                    out.append(_ESCAPES[text[j + 1]])
                    j += 2
                    continue
                out.append(c)
                j += 1
            tokens.append(Token("string", "".join(out), col))
            i = j + 1
            continue
        if ch == "[":
            j = text.find("]", i)
            if j == -1:
                raise _Problem(col, "these flags have no closing bracket (expected flags like [S.] or [F.])")
            tokens.append(Token("flags", text[i : j + 1], col))
            i = j + 1
            continue
        m = _NUMBER.match(text, i)
        if m and (ch.isdigit() or (ch in "+-" and i + 1 < n and text[i + 1].isdigit())):
            tokens.append(Token("number", m.group(), col))
            i = m.end()
            continue
        op = next((o for o in _OPS if text.startswith(o, i)), None)
        if op is not None:
            tokens.append(Token("op", op, col))
            i += len(op)
            continue
        m = _WORD.match(text, i)
        if m:
            word = m.group().rstrip(".")
            if word.endswith("-"):
                word = word.rstrip("-")
            tokens.append(Token("word", word, col))
            i += len(word)
            continue
        raise _Problem(col, f'unexpected character {ch!r} (expected words, numbers, "text" or [flags])')
    return tokens


class _Cursor:
    """Walks the tokens of one command line and raises _Problem with a column on bad input."""

    def __init__(self, tokens: list[Token], end_column: int) -> None:
        self.tokens = tokens
        self.i = 0
        self.end_column = end_column

    def peek(self, offset: int = 0) -> Token | None:
        j = self.i + offset
        return self.tokens[j] if j < len(self.tokens) else None

    def at(self, *words: str) -> bool:
        tok = self.peek()
        return tok is not None and tok.kind == "word" and tok.low in words

    def at_kind(self, kind: str) -> bool:
        tok = self.peek()
        return tok is not None and tok.kind == kind

    def at_end(self) -> bool:
        return self.i >= len(self.tokens)

    def column(self) -> int:
        tok = self.peek()
        return tok.column if tok is not None else self.end_column

    def take(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def fail(self, expected: str, message: str | None = None) -> _Problem:
        tok = self.peek()
        if message is None:
            message = "the line ends too early" if tok is None else f"unexpected {_quote(tok.text)}"
        return _Problem(self.column(), f"{message} (expected {expected})")

    def word(self, expected: str) -> Token:
        tok = self.peek()
        if tok is None or tok.kind != "word":
            raise self.fail(expected)
        return self.take()

    def keyword(self, *words: str) -> str:
        """One of `words` (case-insensitive)."""
        if not self.at(*words):
            raise self.fail(_one_of(words))
        return self.take().low

    def choice(self, what: str, choices: list[str] | tuple[str, ...], *, upper: bool = False) -> str:
        tok = self.peek()
        if tok is None or tok.kind != "word":
            raise self.fail(f"{what}: {_one_of(choices)}")
        value = tok.text.upper() if upper else tok.low
        lookup = {c.upper() if upper else c.lower(): c for c in choices}
        if value not in lookup:
            raise _Problem(
                tok.column,
                f"unknown {what} {_quote(tok.text)}{_did_you_mean(tok.text, choices)} "
                f"(expected {_one_of(choices)})",
            )
        self.take()
        return lookup[value]

    def number(self, what: str) -> Decimal:
        tok = self.peek()
        if tok is None or tok.kind != "number":
            raise self.fail(what)
        self.take()
        try:
            return Decimal(tok.text)
        except InvalidOperation:  # pragma: no cover - the token pattern only admits valid numbers
            raise _Problem(tok.column, f"bad number {_quote(tok.text)} (expected {what})") from None

    def integer(self, what: str, low: int = 0, high: int | None = None) -> int:
        tok = self.peek()
        value = self.number(what)
        assert tok is not None
        if value != value.to_integral_value():
            raise _Problem(tok.column, f"{tok.text} is not a whole number (expected {what})")
        number = int(value)
        if number < low or (high is not None and number > high):
            bound = f"from {low} to {high}" if high is not None else f"of at least {low}"
            raise _Problem(tok.column, f"{number} is out of range (expected {what}, {bound})")
        return number

    def time(self, what: str = "a time like 3 s or 200 ms") -> TimeSpec:
        tok = self.peek()
        value = self.number(what)
        assert tok is not None
        if value < 0:
            raise _Problem(tok.column, f"a time cannot be negative (expected {what})")
        unit_tok = self.peek()
        if unit_tok is None or unit_tok.kind != "word" or unit_tok.low not in UNIT_NAMES:
            raise self.fail("a unit after the number: s, ms, min or h", "this time has no unit")
        self.take()
        return TimeSpec(value, UNIT_NAMES[unit_tok.low])

    def percent(self, what: str) -> float:
        tok = self.peek()
        value = self.number(f"a percentage for {what}, like 10%")
        assert tok is not None
        if not self.at_op("%"):
            raise self.fail(f"a percentage for {what}, like 10%", "a percentage needs a % sign")
        self.take()
        if not 0 <= value <= 100:
            raise _Problem(tok.column, f"{tok.text}% is out of range (expected a percentage from 0% to 100%)")
        return float(value / 100)

    def at_op(self, *ops: str) -> bool:
        tok = self.peek()
        return tok is not None and tok.kind == "op" and tok.text in ops

    def end(self) -> None:
        if not self.at_end():
            raise self.fail("the end of the line")


# ----------------------------------------------------------------------------------------------------------
# command lines


def _host(cur: _Cursor, *, also: tuple[str, ...] = ()) -> str:
    return cur.choice("host", (*HOSTS, *also))


def _state(cur: _Cursor) -> State:
    return State[cur.choice("state", STATE_NAMES, upper=True)]


def _at_bound(cur: _Cursor) -> bool:
    """Is the cursor at `at least` or `at most` (not `at <time>`)?"""
    nxt = cur.peek(1)
    return cur.at("at") and nxt is not None and nxt.low in ("least", "most")


def _count(cur: _Cursor, what: str) -> Count:
    op = "="
    if _at_bound(cur):
        cur.take()
        op = ">=" if cur.take().low == "least" else "<="
    elif cur.at("no"):
        cur.take()
        return Count(op="=", n=0)
    return Count(op=op, n=cur.integer(what))


def _connections_in(cur: _Cursor) -> None:
    """`in`, optionally after `connection(s)`: `has 3 in TIME_WAIT`, `has no connections in CLOSE_WAIT`."""
    if cur.at("connection", "connections"):
        cur.take()
    cur.keyword("in")


def _flags(tok: Token) -> int:
    letters = tok.text[1:-1]
    if not letters:
        raise _Problem(tok.column, "empty flags [] (expected flags like [S], [S.], [.], [P.], [F.] or [R.])")
    flags = 0
    for offset, letter in enumerate(letters):
        bit = FLAG_LETTERS.get(letter)
        if bit is None:
            raise _Problem(
                tok.column + 1 + offset,
                f"unknown flag {letter!r} in {tok.text} (expected tcpdump letters: S F R P . U E W)",
            )
        flags |= bit
    return flags


def _segment_pattern(cur: _Cursor, src: str) -> SegmentPattern:
    """After `<host> sends`: flags or a kind, then any of the optional fields, in any order."""
    tok = cur.peek()
    kinds = [k for k in DROP_KINDS if k != "any"]
    pattern = SegmentPattern(src=src)
    if tok is not None and tok.kind == "flags":
        pattern = replace(pattern, flags=_flags(cur.take()), label=tok.text)
    elif tok is not None and tok.kind == "word" and tok.low in ("segment", "anything"):
        cur.take()
        pattern = replace(pattern, label="a segment")
    else:
        kind = cur.choice("segment kind", kinds)
        pattern = replace(pattern, kind=kind, label=kind)
    while cur.at_kind("word"):
        tok = cur.peek()
        assert tok is not None
        low = tok.low
        if low in ("seq", "ack"):
            cur.take()
            number = cur.number(f"a number after {low}")
            if number != number.to_integral_value():
                raise _Problem(tok.column, f"{low} takes a whole number (expected a number like 1)")
            pattern = replace(pattern, seq=int(number)) if low == "seq" else replace(pattern, ack=int(number))
        elif low in ("win", "mss", "wscale", "len", "length"):
            cur.take()
            value = cur.integer(f"a number after {low}")
            if low == "win":
                pattern = replace(pattern, window=value)
            elif low == "mss":
                pattern = replace(pattern, mss=value)
            elif low == "wscale":
                pattern = replace(pattern, wscale=value)
            else:
                pattern = replace(pattern, length=value)
        elif low == "sackok":
            cur.take()
            pattern = replace(pattern, sack_ok=True)
        elif low == "tag":
            cur.take()
            if not cur.at_kind("string"):
                raise cur.fail('a tag in quotes, like "retransmission" or "keep-alive"')
            pattern = replace(pattern, tag=cur.take().text)
        elif low == "to":
            cur.take()
            pattern = replace(pattern, dst=_host(cur))
        elif low in FATES:
            pattern = replace(pattern, fate=cur.take().low)
        elif low == "at" and not _at_bound(cur):
            cur.take()
            pattern = replace(pattern, at=cur.time())
        else:
            break
    return pattern


def _times(cur: _Cursor) -> Count | None:
    """`once`, `twice`, `never`, `N times`, `at least N times`, `at most N times`, or nothing."""
    if cur.at_end() or cur.at("in"):
        return None
    if cur.at("once"):
        cur.take()
        return Count(op="=", n=1)
    if cur.at("twice"):
        cur.take()
        return Count(op="=", n=2)
    if cur.at("never"):
        cur.take()
        return Count(op="=", n=0)
    count = _count(cur, "how many times, like 3 times, once, never or at least 2 times")
    if not cur.at("times", "time"):
        raise cur.fail("times after the number, as in 3 times")
    cur.take()
    return count


def _condition(cur: _Cursor) -> Condition:
    src = cur.choice("host", (*HOSTS, "spoofed"))
    verb = cur.keyword("is", "has", "sends", "sent")
    if src == "spoofed" and verb in ("is", "has"):
        raise _Problem(cur.column(), "spoofed hosts have no state (expected client or server before is/has)")
    if verb == "is":
        return StateIs(host=src, state=_state(cur))
    if verb == "has":
        count = _count(cur, "a number of connections, like 3 or at least 1")
        _connections_in(cur)
        return CountIn(host=src, count=count, state=_state(cur))
    return SegmentSeen(pattern=_segment_pattern(cur, src))


def _value_tokens(cur: _Cursor) -> str:
    parts = []
    while not cur.at_end():
        parts.append(cur.take().text)
    return " ".join(parts)


def parse_command(cur: _Cursor, line: int, text: str) -> Command:
    """One command line (not a repeat/end/say, which the file parser handles)."""
    loc = _At(line, text.strip())
    head = cur.word("a command")
    first = head.low
    if first in HOSTS or first == "both":
        return _host_command(cur, first, loc)
    if first == "drop":
        cur.keyword("next")
        count = 1
        if cur.at_kind("number"):
            count = cur.integer("how many segments to drop", 1, 10_000)
        kind, direction = "any", "any"
        while not cur.at_end():
            if cur.at("from") and direction == "any":
                cur.take()
                direction = _host(cur, also=("any",))
            elif cur.at("segment", "segments"):
                cur.take()
            elif kind == "any" and cur.at_kind("word") and not cur.at("from"):
                kind = cur.choice("segment kind", DROP_KINDS)
            else:
                raise cur.fail("a segment kind, from <host> or the end of the line")
        return DropNext(direction=direction, kind=kind, count=count, line=loc.line, text=loc.text)
    if first == "impair":
        direction = "any"
        if cur.at("from"):
            cur.take()
            direction = _host(cur, also=("both", "any"))
            direction = "any" if direction == "both" else direction
        values: list[tuple[str, float]] = []
        names = (*IMPAIR_TIMES, *IMPAIR_PERCENTS, "rate")
        while not cur.at_end() or not values:
            key = cur.choice("impairment", names)
            if key in IMPAIR_TIMES:
                values.append((key, cur.time(f"a time for {key}, like 50 ms").seconds))
            elif key == "rate":
                values.append((key, float(cur.integer("a rate in bytes per second, like 125000", 0))))
            else:
                values.append((key, cur.percent(key)))
        return Impair(direction=direction, values=tuple(values), line=loc.line, text=loc.text)
    if first == "partition":
        on = cur.keyword("on", "off") == "on"
        cur.end()
        return Partition(on=on, line=loc.line, text=loc.text)
    if first == "syn":
        cur.keyword("flood")
        count = cur.integer("how many SYNs, like 100", 1, 100_000)
        target, port = "server", 8080
        while not cur.at_end():
            if cur.at("to"):
                cur.take()
                target = _host(cur)
            elif cur.at("port"):
                cur.take()
                port = cur.integer("a port number", 1, 65535)
            else:
                raise cur.fail("to <host>, port <number> or the end of the line")
        return SynFlood(target=target, count=count, port=port, line=loc.line, text=loc.text)
    if first == "inject":
        flags_tok = cur.peek()
        if flags_tok is None or flags_tok.kind != "flags":
            raise cur.fail("the flags of the segment to inject, like [S] or [R.]")
        flags = _flags(cur.take())
        cur.keyword("from")
        host = _host(cur)
        seq, ack, window, payload = 0, 0, None, b""
        while not cur.at_end():
            tok = cur.peek()
            assert tok is not None
            if tok.kind == "string":
                payload = cur.take().text.encode()
            elif cur.at("seq", "ack"):
                key = cur.take().low
                number = int(cur.number(f"a number after {key} (relative, like -100000)"))
                seq, ack = (number, ack) if key == "seq" else (seq, number)
            elif cur.at("win"):
                cur.take()
                window = cur.integer("a window after win", 0, 65535)
            elif cur.at("len"):
                cur.take()
                payload = b"x" * cur.integer("a payload length after len", 0, 65000)
            else:
                raise cur.fail('seq N, ack N, win N, len N, "text" or the end of the line')
        return Inject(
            host=host,
            flags=flags,
            seq=seq,
            ack=ack,
            window=window,
            payload=payload,
            line=loc.line,
            text=loc.text,
        )
    if first == "wait":
        until = False
        if cur.at("until"):
            cur.take()
            until = True
        duration = cur.time()
        cur.end()
        return Wait(duration=duration, until=until, line=loc.line, text=loc.text)
    if first == "run":
        cur.keyword("until")
        condition = _condition(cur)
        within = DEFAULT_WITHIN
        if cur.at("within"):
            cur.take()
            within = cur.time()
        cur.end()
        return RunUntil(condition=condition, within=within, line=loc.line, text=loc.text)
    if first in ("crash", "reboot"):
        host = _host(cur)
        cur.end()
        if first == "crash":
            return Crash(host=host, line=loc.line, text=loc.text)
        return Reboot(host=host, line=loc.line, text=loc.text)
    if first == "show":
        host = _host(cur)
        shown: list[str] = []
        while not cur.at_end() or not shown:
            shown.append(cur.choice("field", list(FIELDS)))
        return Show(fields=tuple(shown), host=host, line=loc.line, text=loc.text)
    if first == "pause":
        cur.end()
        return Pause(line=loc.line, text=loc.text)
    if first == "expect":
        return _expect(cur, loc)
    raise _Problem(
        head.column,
        f"unknown command {_quote(head.text)}{_did_you_mean(head.low, (*HOSTS, *COMMANDS))} "
        f"(expected client, server, both, {_one_of(COMMANDS)})",
    )


def _host_command(cur: _Cursor, host: str, loc: _At) -> Command:
    verbs = ("sysctl",) if host == "both" else HOST_VERBS
    verb = cur.choice("action", verbs)
    if verb == "listen":
        port, backlog, reuse = 8080, 128, True
        while not cur.at_end():
            tok = cur.peek()
            assert tok is not None
            if tok.kind == "number":
                port = cur.integer("a port number", 1, 65535)
            elif cur.at("on", "port"):
                cur.take()
            elif cur.at("backlog"):
                cur.take()
                backlog = cur.integer("a backlog after backlog, like 128", 0, 65535)
            elif cur.at("without"):
                cur.take()
                cur.choice("option", ("SO_REUSEADDR",), upper=True)
                reuse = False
            else:
                raise cur.fail("a port, backlog N, without SO_REUSEADDR or the end of the line")
        return Listen(port=port, backlog=backlog, reuseaddr=reuse, host=host, line=loc.line, text=loc.text)
    if verb == "stop":
        cur.keyword("listening")
        cur.end()
        return StopListening(host=host, line=loc.line, text=loc.text)
    if verb == "connect":
        to = "server" if host == "client" else "client"
        port, bind_port = 8080, None
        while not cur.at_end():
            tok = cur.peek()
            assert tok is not None
            if tok.kind == "number":
                port = cur.integer("a port number", 1, 65535)
            elif cur.at("to"):
                cur.take()
                to = _host(cur)
            elif cur.at("port"):
                cur.take()
                port = cur.integer("a port number", 1, 65535)
            elif cur.at("from"):
                cur.take()
                cur.keyword("port")
                bind_port = cur.integer("a local port number", 1, 65535)
            else:
                raise cur.fail("to <host>, port N, from port N or the end of the line")
        if to == host:
            raise _Problem(cur.end_column, f"{host} cannot connect to itself (expected to {_other(host)})")
        return Connect(to=to, port=port, bind_port=bind_port, host=host, line=loc.line, text=loc.text)
    if verb in ("accept", "close", "abort", "crash", "reboot"):
        cur.end()
        cls = {"accept": Accept, "close": Close, "abort": Abort, "crash": Crash, "reboot": Reboot}[verb]
        return cls(host=host, line=loc.line, text=loc.text)
    if verb in ("auto-accept", "auto-read"):
        on = cur.keyword("on", "off") == "on"
        cur.end()
        cls2 = AutoAccept if verb == "auto-accept" else AutoRead
        return cls2(on=on, host=host, line=loc.line, text=loc.text)
    if verb == "send":
        tok = cur.peek()
        if tok is not None and tok.kind == "string":
            data = cur.take().text.encode()
        else:
            size = cur.integer('what to send: a number of bytes like 1000 bytes, or "text"', 1, 100_000_000)
            if cur.at("bytes", "byte"):
                cur.take()
            data = _payload(size)
        cur.end()
        if not data:
            column = tok.column if tok else cur.end_column
            raise _Problem(column, 'nothing to send (expected "text" or N bytes)')
        return Send(data=data, host=host, line=loc.line, text=loc.text)
    if verb == "recv":
        size = 65536
        if not cur.at_end():
            size = cur.integer("how many bytes to read at most, like 1000", 1, 100_000_000)
            if cur.at("bytes", "byte"):
                cur.take()
        cur.end()
        return Recv(size=size, host=host, line=loc.line, text=loc.text)
    if verb == "shutdown":
        how = "wr"
        if not cur.at_end():
            word = cur.choice("shutdown mode", ("wr", "rd", "rdwr", "SHUT_WR", "SHUT_RD", "SHUT_RDWR"))
            how = word.lower().removeprefix("shut_")
        cur.end()
        return Shutdown(how=how, host=host, line=loc.line, text=loc.text)
    if verb == "setsockopt":
        name = cur.choice("socket option", list(SOCKOPTS), upper=True)
        value: int | tuple[int, int]
        if name == "SO_LINGER":
            onoff = _int_or_switch(cur, "SO_LINGER's on/off, like 1 (then the seconds, like 0)")
            secs = cur.integer("SO_LINGER's seconds, like 0", 0, 65535)
            value = (onoff, secs)
        else:
            value = _int_or_switch(cur, f"a value for {name}")
        cur.end()
        return SetSockOpt(name=name, value=value, host=host, line=loc.line, text=loc.text)
    if verb == "sysctl":
        tok = cur.word("a sysctl name, like tcp_syncookies")
        name = tok.text
        for prefix in SYSCTL_PREFIXES:
            name = name.removeprefix(prefix)
        if name not in SETTING_NAMES:
            raise _Problem(
                tok.column,
                f"unknown sysctl {_quote(tok.text)}{_did_you_mean(name, SETTING_NAMES)} "
                "(expected a setting such as tcp_syncookies, tcp_tw_reuse or tcp_keepalive_time)",
            )
        if cur.at_op("="):
            cur.take()
        value_col = cur.column()
        raw = _value_tokens(cur)
        if not raw:
            raise _Problem(value_col, f"sysctl {name} needs a value (expected a value after {name} =)")
        try:
            Settings().checked(name, raw)
        except ValueError as exc:
            raise _Problem(value_col, _setting_problem(name, raw, exc)) from None
        return Sysctl(name=name, value=raw, host=host, line=loc.line, text=loc.text)
    raise AssertionError(verb)  # pragma: no cover - every verb is handled above


def _setting_problem(name: str, raw: str, exc: ValueError) -> str:
    """A bad sysctl value, said plainly: what was written and what the setting takes."""
    default = Settings().as_dict()[name]
    low, high = LIMITS.get(name, (0, None))
    span = f"from {low} to {high}" if high is not None else f"of at least {low}"
    if isinstance(default, tuple):
        wants = f"{len(default)} whole numbers {span}, like {' '.join(str(v) for v in default)}"
    elif isinstance(default, int):
        wants = f"a whole number {span}, like {default}"
    else:
        return f"unknown {name} {raw!r} (expected {_one_of(sorted(CONTROLLERS))})"
    if "low <= high" in str(exc):
        return f"bad range {raw!r} for {name} (expected the low port first, like {default[0]} {default[1]})"
    if "must be" in str(exc):
        return f"{raw} is out of range for {name} (expected {wants})"
    return f"bad value {raw!r} for {name} (expected {wants})"


def _other(host: str) -> str:
    return "server" if host == "client" else "client"


def _int_or_switch(cur: _Cursor, what: str) -> int:
    if cur.at("on", "yes", "true"):
        cur.take()
        return 1
    if cur.at("off", "no", "false"):
        cur.take()
        return 0
    return cur.integer(what, 0, 2**31 - 1)


def _payload(size: int) -> bytes:
    """N deterministic, readable bytes: the alphabet over and over."""
    pattern = b"abcdefghijklmnopqrstuvwxyz"
    reps = size // len(pattern) + 1
    return (pattern * reps)[:size]


def _expect(cur: _Cursor, loc: _At) -> Command:
    tok = cur.peek()
    call_first = tok is not None and tok.kind == "word" and tok.low in CALLS
    if call_first:
        return _expect_call(cur, None, loc)
    src = cur.choice("host", (*HOSTS, "spoofed"))
    what_tok = cur.peek()
    if what_tok is None or what_tok.kind != "word":
        raise cur.fail("state, is, has, sends, received, a call (connect, send...) or a field (cwnd, mss...)")
    what = what_tok.low
    if src == "spoofed" and what not in ("sends", "sent"):
        raise _Problem(what_tok.column, "spoofed hosts only send (expected sends after spoofed)")
    if what in ("state", "is"):
        cur.take()
        state = _state(cur)
        at = None
        if cur.at("at"):
            cur.take()
            at = cur.time()
        cur.end()
        return ExpectState(host=src, state=state, at=at, line=loc.line, text=loc.text)
    if what == "has":
        cur.take()
        count = _count(cur, "a number of connections, like 3 or at least 1")
        _connections_in(cur)
        state = _state(cur)
        cur.end()
        return ExpectCount(host=src, count=count, state=state, line=loc.line, text=loc.text)
    if what in ("sends", "sent"):
        cur.take()
        pattern = _segment_pattern(cur, src)
        times = _times(cur)
        this_step = False
        if cur.at("in"):
            cur.take()
            after = cur.peek(1)
            if not (cur.at("this") and after is not None and after.low == "step"):
                raise cur.fail("in this step")
            cur.take()
            cur.take()
            this_step = True
        cur.end()
        return ExpectSegment(pattern=pattern, times=times, this_step=this_step, line=loc.line, text=loc.text)
    if what in CALLS:
        return _expect_call(cur, src, loc)
    if what == "received":
        cur.take()
        data_tok = cur.peek()
        if data_tok is not None and data_tok.kind == "string":
            data = cur.take().text.encode()
            cur.end()
            return ExpectReceived(host=src, data=data, line=loc.line, text=loc.text)
        size = cur.integer('a number of bytes, like 1000 bytes, or "text"')
        if cur.at("bytes", "byte"):
            cur.take()
        cur.end()
        return ExpectReceived(host=src, size=size, line=loc.line, text=loc.text)
    if what in FIELDS:
        cur.take()
        op = "="
        if cur.at_op("=", "==", ">=", "<=", ">", "<", "!="):
            op = cur.take().text
            op = "=" if op == "==" else op
        kind = FIELDS[what]
        shown = ""
        if kind == "bool":
            value = _int_or_switch(cur, f"on or off for {what}")
            shown = "on" if value else "off"
        elif kind == "time":
            spec = cur.time(f"a time for {what}, like 200 ms")
            value, shown = spec.us, str(spec)
        else:
            value = cur.integer(f"a number for {what}")
            shown = str(value)
        cur.end()
        return ExpectField(
            host=src, field_name=what, op=op, value=value, shown=shown, line=loc.line, text=loc.text
        )
    choices = ["state", "is", "has", "sends", "received", *CALLS, *FIELDS]
    raise _Problem(
        what_tok.column,
        f"cannot expect {_quote(what_tok.text)}{_did_you_mean(what, choices)} "
        "(expected state, is, has, sends, received, a call (connect, send...) or a field (cwnd, mss...))",
    )


def _expect_call(cur: _Cursor, host: str | None, loc: _At) -> Command:
    call = cur.choice("call", CALLS)
    verdict = cur.keyword("error", "ok")
    name = None
    if verdict == "error":
        tok = cur.word("an errno name, like ECONNREFUSED")
        if tok.text.upper() not in ERRNO_NAMES:
            raise _Problem(
                tok.column,
                f"unknown errno {_quote(tok.text)}{_did_you_mean(tok.text.upper(), ERRNO_NAMES)} "
                "(expected an errno name such as ECONNREFUSED, ECONNRESET, ETIMEDOUT, EPIPE or EADDRINUSE)",
            )
        name = tok.text.upper()
    at = None
    if cur.at("at"):
        cur.take()
        at = cur.time()
    cur.end()
    return ExpectCall(host=host, call=call, errno_name=name, at=at, line=loc.line, text=loc.text)


# ----------------------------------------------------------------------------------------------------------
# the file


@dataclass
class _StepDraft:
    line: int
    narration: dict[str, str]
    title: dict[str, str]
    commands: list[Command]
    pause: bool = False
    last_key: str = "say"  # the last text key seen for this step, for translation order checks


@dataclass
class _RepeatDraft:
    line: int
    column: int
    count: int
    text: str
    body: list[Command]


def parse_file(path: str | os.PathLike[str]) -> Scenario:
    """Parse the file at `path` (UTF-8). OSError propagates; bad content raises ScenarioSyntaxError."""
    filename = os.fspath(path)
    data = read_script(path)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ScenarioSyntaxError(
            [SyntaxIssue(filename, line, column, "this is not UTF-8 text (expected a file saved as UTF-8)")]
        ) from None
    return parse_text(text, filename)


def parse_text(text: str, filename: str = "<string>") -> Scenario:
    """Parse a whole scenario given as text; `filename` appears in messages and names the scenario."""
    return _FileParser(filename).parse(text)


NO_NARRATION = "step: has no narration (expected a say: line right after it)"


class _FileParser:
    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.issues: list[SyntaxIssue] = []
        self.title: dict[str, str] = {}
        self.description: dict[str, str] = {}
        self.header_lines: dict[tuple[str, str], int] = {}
        self.prelude: list[Command] = []
        self.steps: list[_StepDraft] = []
        self.repeats: list[_RepeatDraft] = []
        self.pending_title: dict[str, str] | None = None
        self.pending_title_line = 0
        self.started = False  # a command or a step has been seen
        self.text_target: tuple[dict[str, str], str] | None = None  # where continuation lines go
        self.languages: set[str] = set()
        # Texts that must not end up empty (after continuation lines): (texts, lang, line, col, key).
        self.non_empty: list[tuple[dict[str, str], str, int, int, str]] = []

    def problem(self, line: int, column: int, message: str) -> None:
        self.issues.append(SyntaxIssue(self.filename, line, column, message))

    def parse(self, text: str) -> Scenario:
        lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        for number, raw in enumerate(lines, start=1):
            self.line(number, raw.rstrip())
        last = len(lines)
        for rep in reversed(self.repeats):
            self.problem(rep.line, rep.column, "this repeat has no end (expected a line with end after it)")
        if self.pending_title is not None:
            self.problem(self.pending_title_line, 1, NO_NARRATION)
        for texts, lang, line, column, key in self.non_empty:
            if not texts.get(lang):
                label = key if lang == DEFAULT_LANG else f"{key}.{lang}"
                self.problem(line, column, f"{label}: is empty (expected some words after {label}:)")
        misspelled = any(i.message.startswith("unknown heading") for i in self.issues)
        if not self.title and ("title", DEFAULT_LANG) not in self.header_lines and not misspelled:
            self.problem(1, 1, "the file has no title (expected a first line like title: The handshake)")
        if not self.steps:
            self.problem(last, 1, "the file has no steps (expected at least one say: line)")
        if self.issues:
            self.issues.sort(key=lambda i: (i.line, i.column))
            raise ScenarioSyntaxError(self.issues)
        steps = []
        for index, draft in enumerate(self.steps):
            commands = list(draft.commands)
            if index == 0:
                commands = self.prelude + commands
            titles = dict(draft.title)
            for lang, narration in draft.narration.items():
                titles.setdefault(lang, first_sentence(narration, 60))
            steps.append(
                Step(
                    line=draft.line,
                    narration=draft.narration,
                    title=titles,
                    commands=tuple(commands),
                    pause=draft.pause,
                )
            )
        languages = tuple(sorted(self.languages | {DEFAULT_LANG}, key=lambda x: (x != DEFAULT_LANG, x)))
        return Scenario(
            name=scenario_name(self.filename),
            filename=self.filename,
            title=self.title,
            description=self.description,
            steps=tuple(steps),
            languages=languages,
        )

    # ---------------------------------------------------------------------------------------------------

    def line(self, number: int, raw: str) -> None:
        stripped = raw.strip()
        if not stripped:
            self.text_target = None
            return
        if raw[0].isspace() and self.text_target is not None:
            texts, lang = self.text_target
            texts[lang] = _join_text(texts[lang], stripped)
            return
        self.text_target = None
        if stripped.startswith("#"):
            return
        indent = len(raw) - len(raw.lstrip())
        m = _KEY_LINE.fullmatch(stripped)
        if m and m.group(1).lower() in _TEXT_KEYS:
            self.text_line(number, indent + 1, m.group(1).lower(), m.group(2), m.group(3).strip())
            return
        if m:
            key = m.group(1)
            self.problem(
                number,
                indent + 1,
                f"unknown heading {_quote(key + ':')}{_did_you_mean(key.lower(), _TEXT_KEYS)} "
                "(expected title:, description:, step: or say:)",
            )
            return
        try:
            self.command_line(number, raw, tokenize(raw))
        except _Problem as problem:
            self.problem(number, problem.column, problem.message)

    def text_line(self, number: int, column: int, key: str, lang: str | None, value: str) -> None:
        if lang is not None:
            if not _LANG.fullmatch(lang.lower()):
                self.problem(
                    number,
                    column + len(key) + 1,
                    f"bad language {_quote(lang)} (expected a language code like zh, en or zh-tw)",
                )
                return
            lang = lang.lower()
        lang = lang or DEFAULT_LANG
        self.languages.add(lang)
        label = key if lang == DEFAULT_LANG else f"{key}.{lang}"
        if key in ("title", "description"):
            if self.started:
                self.problem(number, column, f"{label}: comes too late (expected it before any step)")
                return
            seen = self.header_lines.get((key, lang))
            if seen is not None:
                self.problem(number, column, f"{label}: is given twice (expected it once, as on line {seen})")
                return
            self.header_lines[(key, lang)] = number
            target = self.title if key == "title" else self.description
            target[lang] = value
            self.text_target = (target, lang)
            if key == "title":
                self.non_empty.append((target, lang, number, column, key))
            return
        if self.repeats:
            self.problem(number, column, f"{label}: cannot be inside a repeat (expected end before it)")
            return
        self.started = True
        if key == "step":
            if lang == DEFAULT_LANG:
                if self.pending_title is not None:
                    self.problem(self.pending_title_line, 1, NO_NARRATION)
                self.pending_title = {DEFAULT_LANG: value}
                self.pending_title_line = number
            elif self.pending_title is None or lang in self.pending_title:
                message = f"{label}: must come right after the step: it translates (expected step: first)"
                self.problem(number, column, message)
                return
            else:
                self.pending_title[lang] = value
            self.text_target = (self.pending_title, lang)
            self.non_empty.append((self.pending_title, lang, number, column, key))
            return
        # say
        if lang == DEFAULT_LANG:
            title = self.pending_title or {}
            self.pending_title = None
            draft = _StepDraft(line=number, narration={DEFAULT_LANG: value}, title=title, commands=[])
            self.steps.append(draft)
            self.text_target = (draft.narration, DEFAULT_LANG)
            self.non_empty.append((draft.narration, lang, number, column, key))
            return
        current = self.steps[-1] if self.steps else None
        if current is None or current.last_key != "say" or self.pending_title is not None:
            message = f"{label}: must come right after the say: line it translates (expected say: first)"
            self.problem(number, column, message)
            return
        if lang in current.narration:
            self.problem(number, column, f"{label}: is given twice for this step (expected it once)")
            return
        current.narration[lang] = value
        self.text_target = (current.narration, lang)
        self.non_empty.append((current.narration, lang, number, column, key))

    def command_line(self, number: int, raw: str, tokens: list[Token]) -> None:
        if not tokens:
            return
        if self.pending_title is not None:
            self.problem(self.pending_title_line, 1, NO_NARRATION)
            self.pending_title = None
        self.started = True
        if self.steps:
            self.steps[-1].last_key = "command"
        cur = _Cursor(tokens, len(raw) + 1)
        first = tokens[0]
        if first.kind == "word" and first.low == "repeat":
            cur.take()
            count = cur.integer("how many times, like 5", 1, 10_000)
            if cur.at("times", "time"):
                cur.take()
            cur.end()
            self.repeats.append(_RepeatDraft(number, first.column, count, raw.strip(), []))
            return
        if first.kind == "word" and first.low == "end":
            cur.take()
            cur.end()
            if not self.repeats:
                raise _Problem(first.column, "end without repeat (expected a repeat N line before it)")
            rep = self.repeats.pop()
            self.add(Repeat(line=rep.line, text=rep.text, count=rep.count, body=tuple(rep.body)))
            return
        command = parse_command(cur, number, raw)
        if isinstance(command, Pause):
            if self.repeats:
                raise _Problem(first.column, "pause cannot be inside a repeat (expected it after end)")
            if not self.steps:
                raise _Problem(first.column, "pause before the first step (expected a say: line before it)")
            self.steps[-1].pause = True
            return
        self.add(command)

    def add(self, command: Command) -> None:
        if self.repeats:
            self.repeats[-1].body.append(command)
        elif self.steps:
            self.steps[-1].commands.append(command)
        else:
            self.prelude.append(command)
