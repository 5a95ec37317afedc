"""The parsed form of a scenario file: a Scenario is a title, a description and a list of Steps; a Step is
narration (per language) plus the commands it runs. Every command knows the line it came from.

Nothing here runs anything; `interpreter.py` gives these objects their meaning. Times are integer
microseconds of stack time (the lab's unit), counts and sizes are plain ints.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from stack import State

SEC = 1_000_000

HOSTS = ("client", "server")
"""The two hosts of every lesson."""

DEFAULT_LANG = "en"


def pick(texts: dict[str, str], lang: str) -> str:
    """The text in `lang`, else in English, else in any language, else ""."""
    if lang in texts:
        return texts[lang]
    base = lang.split("-")[0]
    if base in texts:
        return texts[base]
    if DEFAULT_LANG in texts:
        return texts[DEFAULT_LANG]
    return next(iter(texts.values()), "")


# ----------------------------------------------------------------------------------------------------------
# time, as written

TIME_UNITS = {"ms": 1_000, "s": SEC, "min": 60 * SEC, "h": 3600 * SEC}


@dataclass(frozen=True, slots=True)
class TimeSpec:
    """A time as the author wrote it (`63 s`, `1.5 s`, `200 ms`), kept exact.

    `matches(us)` compares at the precision written: `at 63 s` accepts 62.5 s up to (not including) 63.5 s,
    `at 63.01 s` accepts 63.005 s up to 63.015 s, `at 200 ms` accepts 199.5 ms up to 200.5 ms.
    """

    value: Decimal
    unit: str  # "s", "ms", "min" or "h"

    @property
    def us(self) -> int:
        return int((self.value * TIME_UNITS[self.unit]).to_integral_value(ROUND_HALF_UP))

    @property
    def seconds(self) -> float:
        return self.us / SEC

    def matches(self, us: int) -> bool:
        exponent = self.value.as_tuple().exponent
        quantum = Decimal(1).scaleb(exponent if isinstance(exponent, int) else 0)
        actual = (Decimal(us) / Decimal(TIME_UNITS[self.unit])).quantize(quantum, rounding=ROUND_HALF_UP)
        return actual == self.value

    def __str__(self) -> str:
        return f"{self.value} {self.unit}"


def format_seconds(us: int) -> str:
    """A stack time for messages: `63 s`, `0.03 s`, `127.01 s` (no trailing zeros)."""
    text = f"{us / SEC:.6f}".rstrip("0").rstrip(".")
    return f"{text} s"


# ----------------------------------------------------------------------------------------------------------
# commands


@dataclass(frozen=True, kw_only=True)
class Command:
    """One line of a scenario (or a repeat block). `text` is the line as written, for messages."""

    line: int
    text: str


@dataclass(frozen=True, kw_only=True)
class Listen(Command):
    host: str
    port: int = 8080
    backlog: int = 128
    reuseaddr: bool = True


@dataclass(frozen=True, kw_only=True)
class StopListening(Command):
    host: str


@dataclass(frozen=True, kw_only=True)
class Connect(Command):
    host: str
    to: str
    port: int = 8080
    bind_port: int | None = None


@dataclass(frozen=True, kw_only=True)
class Accept(Command):
    host: str


@dataclass(frozen=True, kw_only=True)
class AutoAccept(Command):
    host: str
    on: bool


@dataclass(frozen=True, kw_only=True)
class AutoRead(Command):
    host: str
    on: bool


@dataclass(frozen=True, kw_only=True)
class Send(Command):
    host: str
    data: bytes


@dataclass(frozen=True, kw_only=True)
class Recv(Command):
    host: str
    size: int = 65536


@dataclass(frozen=True, kw_only=True)
class Shutdown(Command):
    host: str
    how: str = "wr"


@dataclass(frozen=True, kw_only=True)
class Close(Command):
    host: str


@dataclass(frozen=True, kw_only=True)
class Abort(Command):
    host: str


@dataclass(frozen=True, kw_only=True)
class SetSockOpt(Command):
    host: str
    name: str
    value: int | tuple[int, int]


@dataclass(frozen=True, kw_only=True)
class Sysctl(Command):
    host: str  # a host or "both"
    name: str
    value: str


@dataclass(frozen=True, kw_only=True)
class Crash(Command):
    host: str


@dataclass(frozen=True, kw_only=True)
class Reboot(Command):
    host: str


@dataclass(frozen=True, kw_only=True)
class DropNext(Command):
    direction: str  # a host or "any"
    kind: str = "any"
    count: int = 1


@dataclass(frozen=True, kw_only=True)
class Impair(Command):
    direction: str  # a host or "any"
    values: tuple[tuple[str, float], ...]


@dataclass(frozen=True, kw_only=True)
class Partition(Command):
    on: bool


@dataclass(frozen=True, kw_only=True)
class SynFlood(Command):
    target: str
    count: int
    port: int = 8080


@dataclass(frozen=True, kw_only=True)
class Inject(Command):
    host: str
    flags: int
    seq: int = 0
    ack: int = 0
    window: int | None = None
    payload: bytes = b""


@dataclass(frozen=True, kw_only=True)
class Wait(Command):
    duration: TimeSpec
    until: bool = False  # `wait until 10 s`: up to that time since the lesson began


@dataclass(frozen=True, kw_only=True)
class Show(Command):
    """Print fields of the host's connection into the trace (`show client cwnd ssthresh`)."""

    host: str
    fields: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class Pause(Command):
    pass


@dataclass(frozen=True, kw_only=True)
class Repeat(Command):
    count: int
    body: tuple[Command, ...]


# ----------------------------------------------------------------------------------------------------------
# conditions (for `run until` and `expect`)


@dataclass(frozen=True, kw_only=True)
class Count:
    """A comparison of a whole number: `3`, `at least 3`, `at most 0`."""

    op: str  # "=", ">=", "<="
    n: int

    def test(self, value: int) -> bool:
        if self.op == ">=":
            return value >= self.n
        if self.op == "<=":
            return value <= self.n
        return value == self.n

    def __str__(self) -> str:
        return {"=": f"{self.n}", ">=": f"at least {self.n}", "<=": f"at most {self.n}"}[self.op]


@dataclass(frozen=True, kw_only=True)
class SegmentPattern:
    """What a segment must look like. None means "any". seq and ack are relative, as the trace prints them."""

    src: str  # "client", "server" or "spoofed"
    dst: str | None = None
    flags: int | None = None  # exact flag set, from `[S.]`
    kind: str | None = None  # a drop kind ("SYN", "FIN", "data"...), from a word
    seq: int | None = None
    ack: int | None = None
    length: int | None = None
    window: int | None = None
    mss: int | None = None
    wscale: int | None = None
    sack_ok: bool | None = None
    tag: str | None = None
    fate: str | None = None
    at: TimeSpec | None = None
    label: str = ""  # the flags or kind as written, for messages


@dataclass(frozen=True, kw_only=True)
class StateIs:
    host: str
    state: State


@dataclass(frozen=True, kw_only=True)
class CountIn:
    host: str
    count: Count
    state: State


@dataclass(frozen=True, kw_only=True)
class SegmentSeen:
    pattern: SegmentPattern


Condition = StateIs | CountIn | SegmentSeen


@dataclass(frozen=True, kw_only=True)
class RunUntil(Command):
    condition: Condition
    within: TimeSpec


# ----------------------------------------------------------------------------------------------------------
# expectations


@dataclass(frozen=True, kw_only=True)
class ExpectState(Command):
    host: str
    state: State
    at: TimeSpec | None = None


@dataclass(frozen=True, kw_only=True)
class ExpectCount(Command):
    host: str
    count: Count
    state: State


@dataclass(frozen=True, kw_only=True)
class ExpectSegment(Command):
    pattern: SegmentPattern
    times: Count | None = None  # None = at least once
    this_step: bool = False  # only segments sent since the step began (default: since the lesson began)


@dataclass(frozen=True, kw_only=True)
class ExpectCall(Command):
    host: str | None  # None = whichever host made that call last
    call: str
    errno_name: str | None  # None = the call must have succeeded
    at: TimeSpec | None = None


@dataclass(frozen=True, kw_only=True)
class ExpectField(Command):
    host: str
    field_name: str
    op: str
    value: int  # microseconds for time fields
    shown: str  # the value as written


@dataclass(frozen=True, kw_only=True)
class ExpectReceived(Command):
    host: str
    size: int | None = None
    data: bytes | None = None


Expectation = ExpectState | ExpectCount | ExpectSegment | ExpectCall | ExpectField | ExpectReceived


# ----------------------------------------------------------------------------------------------------------
# the whole file


@dataclass(frozen=True, kw_only=True)
class Step:
    """What the viewer steps through: a narration and the commands that follow it up to the next one."""

    line: int
    narration: dict[str, str]
    title: dict[str, str]
    commands: tuple[Command, ...]
    pause: bool = False


@dataclass(frozen=True, kw_only=True)
class Scenario:
    name: str  # the file name without directory, numeric prefix and ".tcp"
    filename: str  # as given to the parser, used in messages
    title: dict[str, str]
    description: dict[str, str]
    steps: tuple[Step, ...]
    languages: tuple[str, ...] = field(default=(DEFAULT_LANG,))

    def title_in(self, lang: str) -> str:
        return pick(self.title, lang)

    def description_in(self, lang: str) -> str:
        return pick(self.description, lang)

    def summary(self, lang: str = DEFAULT_LANG) -> str:
        """The first sentence of the description (one line for `--list`)."""
        return first_sentence(self.description_in(lang)) or self.title_in(lang)

    @property
    def basename(self) -> str:
        return self.filename.replace("\\", "/").rsplit("/", 1)[-1]


def first_sentence(text: str, limit: int = 0) -> str:
    """Text up to the end of its first sentence (". ", "。", "！", "？"); cut to `limit` characters if > 0."""
    text = " ".join(text.split())
    cut = len(text)
    for mark in (". ", "! ", "? ", "。", "！", "？", "；"):
        pos = text.find(mark)
        if pos != -1:
            cut = min(cut, pos + len(mark.rstrip()))
    sentence = text[:cut].strip()
    if limit and len(sentence) > limit:
        sentence = sentence[: limit - 1].rstrip() + "…"
    return sentence
