"""Parse drill scripts (packetdrill notation plus tcpplay's extensions) into `tcpplay.drill.ast` nodes.

Two file shapes are accepted:

* a conformance-example file: `KEY: text` header fields, then one or more scripts between
  `--- script [name] ---` and `--- end ---`, then more `KEY: text` sections;
* a plain packetdrill `.pkt` file: the whole file is one script named "main".

A file is read as an example file when it has a script marker or its first non-blank line looks like a
header field (`TITLE: ...`); packetdrill itself could never parse such a line, so no `.pkt` is misread.

How a script is read. Comments (`//` to the end of the line, `/* ... */` over lines) are removed first, but
not inside strings, backtick commands and `%{ python }%` blocks. A line whose first non-blank text is `//=`
is a state assertion, not a comment (`//==...` stays a decorative comment). A statement is one line, or
more when a bracket `(`, `[` or `{` (or a string, command or python block) is still open at the end of the
line; packetdrill's grammar ignores line breaks, and multi-line struct arguments exist in its test suite.

Errors. The first error raises `DrillSyntaxError` (`file:line:col: message`); nothing is returned half
parsed. Rules packetdrill checks while parsing are checked here too, because every scenario was validated
with packetdrill: ranges of numbers, `start:end(len)` consistency, `*` and time windows only on outbound
packets, `<...>` only on outbound packets, backwards time ranges. Any other input, however malformed, either
parses or raises `DrillSyntaxError` (the test suite fuzzes this).

Unsupported constructs (python blocks, non-sysctl shell commands, TCP_INFO, TCP Fast Open, MD5, ECN/TOS
marks, UDP/ICMP/encapsulated packets, sendmsg/recvmsg, poll/epoll/ioctl, unknown TCP options, ...) become
`Unsupported` nodes. Their statement is not parsed further, so their own syntax is not checked.
"""

from __future__ import annotations

import os
import re
from bisect import bisect_right
from dataclasses import dataclass
from typing import Literal

from tcpplay.drill.ast import (
    TCP_FLAGS,
    TCP_STATES,
    Array,
    BitOr,
    Call,
    Direction,
    DrillFile,
    EllipsisExpr,
    Expr,
    HeaderField,
    IntLit,
    Name,
    OptionName,
    OptionSpec,
    Packet,
    Role,
    Script,
    StateAssert,
    Statement,
    StringLit,
    Struct,
    StructField,
    Syscall,
    Sysctl,
    SysctlSetting,
    TcpState,
    TimeSpec,
    Unsupported,
)

from ..scriptfile import read_script

__all__ = ["DrillSyntaxError", "parse_bytes", "parse_file", "parse_text"]


class DrillSyntaxError(Exception):
    """A script that cannot be parsed. `str()` gives `file.pkt:12:7: message` (line and column 1-based;
    a tab counts as one column)."""

    def __init__(self, filename: str, line: int, column: int, message: str) -> None:
        super().__init__(filename, line, column, message)
        self.filename = filename
        self.line = line
        self.column = column
        self.message = message

    def __str__(self) -> str:
        return f"{self.filename}:{self.line}:{self.column}: {self.message}"


def parse_file(path: str | os.PathLike[str]) -> DrillFile:
    """Parse the file at `path` (UTF-8). OSError propagates; bad content raises DrillSyntaxError."""
    return parse_bytes(read_script(path), os.fspath(path))


def parse_bytes(data: bytes, filename: str) -> DrillFile:
    """Parse a file's bytes (UTF-8, a byte-order mark allowed); bad content raises DrillSyntaxError."""
    try:
        text = data.decode("utf-8-sig")  # a leading byte-order mark is not part of the script
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise DrillSyntaxError(filename, line, column, "the file is not valid UTF-8") from None
    return parse_text(text, filename)


def parse_text(text: str, filename: str = "<string>") -> DrillFile:
    """Parse a whole file given as text; `filename` is only used in error messages and `DrillFile`."""
    lines = text.replace("\r\n", "\n").split("\n")
    if not _is_example_format(lines):
        statements = _parse_script_body(filename, lines, first_line=1)
        script = Script(name="main", first_line=1, statements=statements)
        return DrillFile(filename=filename, title=None, id=None, fields=(), scripts=(script,))
    return _parse_example_file(filename, lines)


# ------------------------------------------------------------------------------------------ constants

_MAX_U8 = 0xFF
_MAX_U16 = 0xFFFF
_MAX_U32 = 0xFFFF_FFFF
_MAX_SECONDS = 1e9  # about 31 years: far beyond any script, small enough for exact microseconds
_MAX_DIGITS = 20  # longer digit strings are out of range anyway (and int() limits huge strings)
_MAX_NESTING = 32  # nested [ { ( in arguments; deeper input is an error, not a RecursionError

_WS = " \t\r\n\f\v"

_HEADER_KEY = re.compile(r"([A-Z][A-Z0-9_-]*(?: [A-Z][A-Z0-9_-]*)*)(.*)", re.ASCII | re.DOTALL)

_TOKEN = re.compile(r"[A-Za-z0-9_]+|\.\.\.|.", re.ASCII | re.DOTALL)
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)
_NO_WORD_AFTER = r"(?![A-Za-z0-9_])"
_SECONDS = re.compile(r"(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)" + _NO_WORD_AFTER, re.ASCII)
_UINT = re.compile(r"[0-9]+" + _NO_WORD_AFTER, re.ASCII)
_INT_LITERAL = re.compile(r"(?:-?0[xX][0-9a-fA-F]+|-?[0-9]+)" + _NO_WORD_AFTER, re.ASCII)
_PORTS = re.compile(r"([0-9]+)\s*>\s*([0-9]+)", re.ASCII)
_FLAGS = re.compile(r"[A-Za-z]+\.?|\.|-", re.ASCII)
_SEQUENCE = re.compile(r"([0-9]+)\s*:\s*([0-9]+)\s*\(\s*([0-9]+)\s*\)", re.ASCII)
_SACK_BLOCK = re.compile(r"([0-9]+)\s*:\s*([0-9]+)", re.ASCII)
_STRUCT_KEY = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*=(?!=)", re.ASCII)
_PD_OPTION = re.compile(r"--[A-Za-z0-9_]+(?:=\S*)?", re.ASCII)
_WORDS_AND_STRINGS = re.compile(r'"(?:\\.|[^"\\])*"?|[A-Za-z_][A-Za-z0-9_]*', re.ASCII | re.DOTALL)
_SYSCTL_NAME = re.compile(r"[A-Za-z0-9_-]+(?:[./][A-Za-z0-9_-]+)*", re.ASCII)
_SYSCTL_FLAGS = re.compile(r"-[qwe]+", re.ASCII)

_SYSCTL_COMMANDS = frozenset({"sysctl", "/sbin/sysctl", "/usr/sbin/sysctl"})
_SHELL_SPECIAL = frozenset(";&|<>$()\n*?[]{}~#")

_ROLES: tuple[Role, ...] = ("SUT", "PEER")

# Words that, right after the direction, start a packet type other than a plain TCP segment.
_OTHER_PACKETS = {
    "udp": "UDP packet",
    "icmp": "ICMP packet",
    "ipv4": "encapsulated packet (ipv4 header)",
    "ipv6": "encapsulated packet (ipv6 header)",
    "gre": "GRE-encapsulated packet",
    "GREv0": "GRE-encapsulated packet",
    "mpls": "MPLS-encapsulated packet",
}

# Options written without values.
_BARE_OPTIONS: dict[str, OptionName] = {"nop": "nop", "eol": "eol", "sackOK": "sackOK"}

_ECN_MARKS = frozenset({"ect0", "ect1", "ect01", "ce", "noecn"})

_OPTION_DESCRIPTIONS = {
    "FO": "TCP Fast Open option 'FO'",
    "FOEXP": "TCP Fast Open option 'FOEXP'",
    "md5": "TCP MD5 signature option 'md5'",
    "exp": "experimental TCP option 'exp'",
    "mpcapable": "MPTCP option 'mpcapable'",
}

# System calls that need structures tcpplay does not model (msghdr, epoll/poll sets, ioctl requests).
_UNSUPPORTED_SYSCALLS = frozenset(
    {
        "sendmsg",
        "recvmsg",
        "sendmmsg",
        "recvmmsg",
        "epoll_create",
        "epoll_create1",
        "epoll_ctl",
        "epoll_wait",
        "epoll_pwait",
        "poll",
        "ppoll",
        "ioctl",
    }
)

# Constants that name features tcpplay does not model; a system call mentioning one is Unsupported.
_UNSUPPORTED_CONSTANTS = frozenset(
    {
        "TCP_INFO",
        "TCP_CC_INFO",
        "TCP_FASTOPEN",
        "TCP_FASTOPEN_CONNECT",
        "TCP_FASTOPEN_KEY",
        "TCP_FASTOPEN_NO_COOKIE",
        "MSG_FASTOPEN",
        "TCP_MD5SIG",
        "TCP_MD5SIG_EXT",
        "TCP_CONGESTION",
        "SO_ZEROCOPY",
        "MSG_ZEROCOPY",
        "TCP_ZEROCOPY_RECEIVE",
        "TCP_REPAIR",
        "TCP_REPAIR_QUEUE",
        "TCP_REPAIR_OPTIONS",
        "TCP_REPAIR_WINDOW",
        "TCP_QUEUE_SEQ",
        "TCP_ULP",
        "TCP_SAVE_SYN",
        "TCP_SAVED_SYN",
        "SO_TIMESTAMPING",
        "MSG_ERRQUEUE",
    }
)


# ------------------------------------------------------------------------------ file-level structure


def _is_example_format(lines: list[str]) -> bool:
    """True for a conformance-example file: script markers, or a header field on the first real line."""
    if any(_marker(line) is not None for line in lines):
        return True
    first = next((line for line in lines if line.strip()), "")
    return _header_field(first) is not None


def _marker(line: str) -> tuple[Literal["script", "end"], str] | None:
    """`--- script [name] ---` -> ("script", name or "main"); `--- end ---` -> ("end", ""); else None."""
    text = line.rstrip()
    if len(text) < 6 or not (text.startswith("---") and text.endswith("---")):
        return None
    words = text[3:-3].split()
    if words == ["end"]:
        return "end", ""
    if words and words[0] == "script":
        return "script", " ".join(words[1:]) or "main"
    return None


def _header_field(line: str) -> tuple[str, str, str] | None:
    """`KEY [qualifier]: text` at column 0 -> (key, qualifier, text); the qualifier starts with [ or (."""
    head, colon, text = line.partition(":")
    found = _HEADER_KEY.fullmatch(head)
    if not colon or found is None:
        return None
    qualifier = found.group(2).strip()
    if qualifier and qualifier[0] not in "[(":
        return None
    return found.group(1), qualifier, text.strip()


def _parse_example_file(filename: str, lines: list[str]) -> DrillFile:
    """Split the file at its markers, parse every script body, and collect the text around them as fields."""
    scripts: list[Script] = []
    outside: list[tuple[int, str]] = []
    open_script: tuple[str, int] | None = None  # (name, marker line)
    body: list[str] = []
    for lineno, line in enumerate(lines, start=1):
        marker = _marker(line)
        if marker is not None and marker[0] == "end":
            if open_script is None:
                raise DrillSyntaxError(filename, lineno, 1, "'--- end ---' without an open '--- script ---'")
            name, marker_line = open_script
            statements = _parse_script_body(filename, body, first_line=marker_line + 1)
            scripts.append(Script(name=name, first_line=marker_line + 1, statements=statements))
            open_script, body = None, []
        elif marker is not None:
            if open_script is not None:
                started = open_script[1]
                message = (
                    f"'--- script ---' inside the script started at line {started} (missing '--- end ---')"
                )
                raise DrillSyntaxError(filename, lineno, 1, message)
            open_script = (marker[1], lineno)
        elif open_script is not None:
            body.append(line)
        else:
            outside.append((lineno, line))
    if open_script is not None:
        raise DrillSyntaxError(filename, open_script[1], 1, "script has no '--- end ---' line")
    fields = _header_fields(outside)
    title = next((f.text for f in fields if f.key == "TITLE"), None)
    ident = next((f.text for f in fields if f.key == "ID"), None)
    return DrillFile(filename=filename, title=title, id=ident, fields=fields, scripts=tuple(scripts))


def _header_fields(lines: list[tuple[int, str]]) -> tuple[HeaderField, ...]:
    """`KEY [qualifier]: text` lines start a field; any other line continues the field above it."""
    fields: list[HeaderField] = []
    for lineno, line in lines:
        field = _header_field(line)
        if field is not None:
            key, qualifier, text = field
            fields.append(HeaderField(key=key, qualifier=qualifier, text=text, line=lineno))
        elif fields and line.strip():
            last = fields[-1]
            text = f"{last.text}\n{line.strip()}" if last.text else line.strip()
            fields[-1] = HeaderField(key=last.key, qualifier=last.qualifier, text=text, line=last.line)
    return tuple(fields)


# ---------------------------------------------------------------------------------- script bodies


class _Source:
    """One script body: its text and the mapping from text offsets to file lines and columns."""

    def __init__(self, filename: str, lines: list[str], first_line: int) -> None:
        self.filename = filename
        self.text = "\n".join(lines)
        self.first_line = first_line
        self.line_starts = [0]
        for index, char in enumerate(self.text):
            if char == "\n":
                self.line_starts.append(index + 1)

    def position(self, offset: int) -> tuple[int, int]:
        index = bisect_right(self.line_starts, offset) - 1
        return self.first_line + index, offset - self.line_starts[index] + 1

    def error(self, offset: int, message: str) -> DrillSyntaxError:
        line, column = self.position(offset)
        return DrillSyntaxError(self.filename, line, column, message)

    def source_text(self, start: int, end: int) -> str:
        """The original text of the lines that [start, end) touches, without surrounding blanks."""
        first = bisect_right(self.line_starts, start) - 1
        last = bisect_right(self.line_starts, max(start, end - 1)) - 1
        stop = self.line_starts[last + 1] - 1 if last + 1 < len(self.line_starts) else len(self.text)
        return self.text[self.line_starts[first] : stop].strip()


@dataclass(frozen=True, slots=True)
class _Chunk:
    """A statement's extent in the body text: a normal statement or a `//=` state assertion line."""

    kind: Literal["statement", "assert"]
    start: int
    end: int


def _parse_script_body(filename: str, lines: list[str], first_line: int) -> tuple[Statement, ...]:
    source = _Source(filename, lines, first_line)
    cleaned, chunks = _split_statements(source)
    statements: list[Statement] = []
    for chunk in chunks:
        if chunk.kind == "assert":
            statements.append(_parse_state_assert(source, chunk))
        else:
            statements.append(_StatementParser(source, cleaned, chunk).parse())
    return tuple(statements)


def _split_statements(source: _Source) -> tuple[str, list[_Chunk]]:
    """Blank out comments and cut the body into statements; returns the cleaned text and the chunks.

    Comment characters become spaces (newlines are kept) so offsets, and thus columns, stay valid.
    """
    text = source.text
    cleaned = list(text)
    chunks: list[_Chunk] = []
    depth = 0
    start: int | None = None  # offset of the first character of the open statement
    i = 0
    while i < len(text):
        char = text[i]
        if char == "\n":
            if start is not None and depth == 0:
                chunks.append(_Chunk("statement", start, i))
                start = None
            i += 1
        elif text.startswith("/*", i):
            close = text.find("*/", i + 2)
            if close < 0:
                raise source.error(i, "unterminated comment: '/*' without '*/'")
            _blank(cleaned, i, close + 2)
            i = close + 2
        elif text.startswith("//", i):
            line_end = _line_end(text, i)
            if text.startswith("//=", i) and not text.startswith("//==", i):
                _check_assert_position(source, start, depth, i)
                chunks.append(_Chunk("assert", i, line_end))
            _blank(cleaned, i, line_end)
            i = line_end
        elif char in _WS:
            i += 1
        else:
            if start is None:
                start = i
            i, depth = _skip_token(source, i, depth)
    if start is not None:
        chunks.append(_Chunk("statement", start, len(text)))
    return "".join(cleaned), chunks


def _skip_token(source: _Source, i: int, depth: int) -> tuple[int, int]:
    """Step over one character, or a whole string / command / python block (which may span lines)."""
    text = source.text
    char = text[i]
    if char == '"':
        return _skip_quoted(source, i, '"', "string"), depth
    if char == "`":
        return _skip_quoted(source, i, "`", "command"), depth
    if text.startswith("%{", i):
        close = text.find("}%", i + 2)
        if close < 0:
            raise source.error(i, "unterminated python block: '%{' without '}%'")
        return close + 2, depth
    if char in "([{":
        depth += 1
    elif char in ")]}":
        depth = max(0, depth - 1)
    return i + 1, depth


def _skip_quoted(source: _Source, i: int, quote: str, what: str) -> int:
    """Offset just past the closing quote of the quoted text starting at i."""
    text = source.text
    end = _line_end(text, i) if quote == '"' else len(text)  # strings stay on one line, commands may not
    close = _find_closing(text, i, end)
    if close < 0:
        raise source.error(i, f"unterminated {what}: missing closing {quote}")
    return close + 1


def _find_closing(text: str, i: int, end: int) -> int:
    """Offset of the quote closing the one at text[i] (backslash escapes honoured); -1 if none before end."""
    quote = text[i]
    j = i + 1
    while j < end:
        if text[j] == "\\":
            j += 2
        elif text[j] == quote:
            return j
        else:
            j += 1
    return -1


def _check_assert_position(source: _Source, start: int | None, depth: int, i: int) -> None:
    if start is None:
        return
    if depth > 0:
        raise source.error(i, "state assertion '//=' inside an unfinished statement (unclosed bracket?)")
    raise source.error(i, "state assertion '//=' must start its own line")


def _line_end(text: str, i: int) -> int:
    end = text.find("\n", i)
    return len(text) if end < 0 else end


def _blank(chars: list[str], start: int, end: int) -> None:
    for k in range(start, end):
        if chars[k] != "\n":
            chars[k] = " "


# ------------------------------------------------------------------------------------------ cursor


class _UnsupportedConstruct(Exception):
    """Raised inside a statement parser to turn the whole statement into an `Unsupported` node."""

    def __init__(self, construct: str) -> None:
        super().__init__(construct)
        self.construct = construct


class _Cursor:
    """A position in one statement's text, with helpers that report errors at file line:column."""

    def __init__(self, source: _Source, text: str, start: int, end: int) -> None:
        self.source = source
        self.text = text
        self.pos = start
        self.end = end

    def skip_ws(self) -> None:
        while self.pos < self.end and self.text[self.pos] in _WS:
            self.pos += 1

    def at_end(self) -> bool:
        self.skip_ws()
        return self.pos >= self.end

    def peek_char(self) -> str:
        """The character at the cursor, "" at the end (blanks are not skipped)."""
        return self.text[self.pos] if self.pos < self.end else ""

    def startswith(self, prefix: str) -> bool:
        return self.text.startswith(prefix, self.pos, self.end)

    def take(self, prefix: str) -> bool:
        """Skip blanks; consume `prefix` if it comes next."""
        self.skip_ws()
        if self.startswith(prefix):
            self.pos += len(prefix)
            return True
        return False

    def match(self, pattern: re.Pattern[str]) -> re.Match[str] | None:
        """Skip blanks; consume and return a match of `pattern` at the cursor, or None."""
        self.skip_ws()
        found = pattern.match(self.text, self.pos, self.end)
        if found is not None:
            self.pos = found.end()
        return found

    def peek_word(self) -> str:
        """The identifier at the cursor (after blanks), without consuming it; "" when there is none."""
        self.skip_ws()
        found = _IDENT.match(self.text, self.pos, self.end)
        return found.group() if found else ""

    def got(self) -> str:
        """How the next token reads in an error message: `'x'` or `end of line`."""
        self.skip_ws()
        if self.pos >= self.end:
            return "end of line"
        found = _TOKEN.match(self.text, self.pos, self.end)
        token = found.group() if found else self.text[self.pos]
        if len(token) > 30:
            token = token[:27] + "..."
        return f"'{token}'" if token.isprintable() else repr(token)

    def error(self, message: str, at: int | None = None) -> DrillSyntaxError:
        return self.source.error(self.pos if at is None else at, message)

    def expected(self, what: str) -> DrillSyntaxError:
        """`expected <what>, got <next token>`, reported at the next token."""
        got = self.got()
        return self.error(f"expected {what}, got {got}")

    def expect(self, prefix: str, what: str) -> None:
        if not self.take(prefix):
            raise self.expected(what)


def _check_uint(cursor: _Cursor, digits: str, at: int, what: str, maximum: int) -> int:
    if len(digits) > _MAX_DIGITS or int(digits) > maximum:
        shown = digits if len(digits) <= _MAX_DIGITS else digits[:_MAX_DIGITS] + "..."
        raise cursor.error(f"{what} out of range (max {maximum}): {shown}", at)
    return int(digits)


# ------------------------------------------------------------------------------ statement parser


class _StatementParser:
    """Parses one statement chunk: `[time] action`, where action is a packet, a system call or a command."""

    def __init__(self, source: _Source, cleaned: str, chunk: _Chunk) -> None:
        self.cur = _Cursor(source, cleaned, chunk.start, chunk.end)
        self.line = source.position(chunk.start)[0]
        self.text = source.source_text(chunk.start, chunk.end)

    def parse(self) -> Statement:
        try:
            return self._statement()
        except _UnsupportedConstruct as unsupported:
            return Unsupported(line=self.line, source=self.text, construct=unsupported.construct)

    def _statement(self) -> Statement:
        cur = self.cur
        cur.skip_ws()
        if cur.startswith("`"):
            return self._command(None)
        if cur.startswith("%{"):
            raise _UnsupportedConstruct("python block")
        if cur.startswith("---"):
            raise cur.error("malformed section marker (write '--- script [name] ---' or '--- end ---')")
        if cur.startswith("--"):
            option = cur.match(_PD_OPTION)
            if option is None:
                raise cur.expected("a packetdrill option '--name=value'")
            raise _UnsupportedConstruct(f"packetdrill option {option.group()}")
        time_at = cur.pos
        time = self._time()
        end_time, ellipsis_at = self._blocking_end(time)
        if cur.peek_char() not in _WS:
            raise cur.expected("a space after the time")
        statement = self._action(time, end_time)
        self._check_time_use(statement, time, time_at, ellipsis_at)
        return statement

    def _action(self, time: TimeSpec, end_time: float | None) -> Statement:
        cur = self.cur
        cur.skip_ws()
        if cur.startswith("<") or cur.startswith(">"):
            return self._packet(time)
        if cur.startswith("`"):
            return self._command(time)
        if cur.startswith("%{"):
            raise _UnsupportedConstruct("python block")
        if cur.peek_word():
            return self._syscall(time, end_time)
        raise cur.expected("a packet ('<' or '>'), a system call or a command after the time")

    def _check_time_use(self, statement: Statement, time: TimeSpec, time_at: int, ellipsis_at: int) -> None:
        """packetdrill's rules on where `...`, `*` and time windows may be used."""
        cur = self.cur
        if ellipsis_at >= 0 and not isinstance(statement, Syscall):
            raise cur.error("'...' (blocking end time) is only allowed on system calls", ellipsis_at)
        outbound = isinstance(statement, Packet) and statement.outbound
        if time.kind == "any" and not outbound:
            raise cur.error("'*' (any time) is only allowed on outbound packets", time_at)
        if time.is_range and not outbound:
            raise cur.error("a time range is only allowed on outbound packets", time_at)

    # ----------------------------------------------------------------------------------- times

    def _time(self) -> TimeSpec:
        cur = self.cur
        if cur.take("*"):
            return TimeSpec(kind="any")
        relative = cur.startswith("+")
        if relative:
            cur.pos += 1
            value = self._seconds("a number after '+'")
        else:
            value = self._seconds("a time ('0', '+0.1' or '*')")
        kind: Literal["abs", "rel"] = "rel" if relative else "abs"
        range_at = cur.pos
        if not cur.take("~"):
            cur.pos = range_at  # keep the blanks after the time: the caller checks there is one
            return TimeSpec(kind=kind, value=value)
        cur.skip_ws()
        if relative and not cur.take("+"):
            raise cur.expected("'+' after '~' (a relative window is written '+a~+b')")
        if not relative and cur.startswith("+"):
            raise cur.expected("an absolute time after '~' (write 'a~b' or '+a~+b')")
        end = self._seconds("a time after '~'")
        spec = TimeSpec(kind=kind, value=value, range_end=end)
        if end < value:
            raise cur.error(f"time range is backwards: {spec}", range_at)
        return spec

    def _seconds(self, what: str) -> float:
        cur = self.cur
        at = cur.pos
        found = cur.match(_SECONDS)
        if found is None:
            raise cur.expected(what)
        value = float(found.group())
        if value > _MAX_SECONDS:
            raise cur.error(
                f"time out of range (max {_MAX_SECONDS:.0f} s): {_shorten(found.group(), 24)}", at
            )
        return value

    def _blocking_end(self, time: TimeSpec) -> tuple[float | None, int]:
        """The `...END` of a blocking call, if written; returns (end seconds, offset of '...' or -1)."""
        cur = self.cur
        after_time = cur.pos
        cur.skip_ws()
        at = cur.pos
        if not cur.take("..."):
            cur.pos = after_time
            return None, -1
        if time.kind == "any" or time.is_range:
            raise cur.error("'...' cannot follow '*' or a time range", at)
        cur.skip_ws()
        if cur.startswith("+"):
            raise cur.expected("an end time without '+' after '...' (it has the same base as the start)")
        end = self._seconds("an end time after '...'")
        if end < time.value:
            raise cur.error(f"blocking end time {end:g} is before the start time {time.value:g}", at)
        return end, at

    # --------------------------------------------------------------------------------- packets

    def _packet(self, time: TimeSpec) -> Packet:
        cur = self.cur
        direction: Direction = "<" if cur.text[cur.pos] == "<" else ">"
        cur.pos += 1
        self._reject_other_packet_kinds()
        src_port, dst_port = self._port_override()
        flags = self._flags()
        start, end, length = self._sequence()
        ack = self._keyword_uint("ack", "ack number", _MAX_U32)
        win = self._keyword_uint("win", "window", _MAX_U16)
        urg = self._keyword_uint("urg", "urgent pointer", _MAX_U16)
        options: tuple[OptionSpec, ...] | None = ()
        has_options = cur.take("<")
        if has_options:
            options = self._options(direction)
        if cur.take("{"):
            raise _UnsupportedConstruct("packet fuzzing {...}")
        if not cur.at_end():
            if has_options:
                raise cur.error(f"unexpected {cur.got()} after the TCP options")
            got = cur.got()
            order = "'ack N', 'win N', 'urg N', '<options>'"
            raise cur.error(f"unexpected {got} in packet line (expected, in this order: {order})")
        return Packet(
            line=self.line,
            source=self.text,
            time=time,
            direction=direction,
            src_port=src_port,
            dst_port=dst_port,
            flags=flags,
            start=start,
            end=end,
            length=length,
            ack=ack,
            win=win,
            urg=urg,
            options=options,
        )

    def _reject_other_packet_kinds(self) -> None:
        """IP-level marks (`[ect0]`, `(tos 0x4)`) and non-TCP packets (`udp`, `icmp`, ...) are unsupported."""
        cur = self.cur
        cur.skip_ws()
        if cur.startswith("[") or cur.startswith("("):
            close = "]" if cur.startswith("[") else ")"
            stop = cur.text.find(close, cur.pos, cur.end)
            inner = " ".join(cur.text[cur.pos + 1 : stop if stop >= 0 else cur.end].split())
            mark = f"{cur.text[cur.pos]}{inner}{close}"
            kind = "ECN mark" if inner in _ECN_MARKS else "IP header field"
            raise _UnsupportedConstruct(f"{kind} {mark}")
        word = cur.peek_word()
        if word in _OTHER_PACKETS:
            raise _UnsupportedConstruct(_OTHER_PACKETS[word])

    def _port_override(self) -> tuple[int | None, int | None]:
        cur = self.cur
        cur.skip_ws()
        if not _is_digit(cur.peek_char()):
            return None, None
        at = cur.pos
        found = cur.match(_PORTS)
        if found is None:
            raise cur.expected("TCP flags or a port override 'SRC>DST'")
        src = _check_uint(cur, found.group(1), at, "source port", _MAX_U16)
        dst = _check_uint(cur, found.group(2), found.start(2), "destination port", _MAX_U16)
        return src, dst

    def _flags(self) -> str:
        cur = self.cur
        found = cur.match(_FLAGS)
        if found is None:
            raise cur.expected("TCP flags ('S', 'S.', '.', 'F.', 'R', '-', ...)")
        flags = found.group()
        at = found.start()
        for index, letter in enumerate(flags):
            if flags != "-" and letter not in TCP_FLAGS:
                raise cur.error(
                    f"unknown TCP flag '{letter}' (flags are F S R P . E W U, or '-' for none)", at + index
                )
            if flags.index(letter) != index:
                raise cur.error(f"TCP flag '{letter}' written twice", at + index)
        if cur.peek_char() not in _WS:
            raise cur.expected("a space after the TCP flags")
        return flags

    def _sequence(self) -> tuple[int, int, int]:
        cur = self.cur
        found = cur.match(_SEQUENCE)
        if found is None:
            raise cur.expected("a sequence range 'start:end(length)'")
        start = _check_uint(cur, found.group(1), found.start(1), "sequence number", _MAX_U32)
        end = _check_uint(cur, found.group(2), found.start(2), "sequence number", _MAX_U32)
        length = _check_uint(cur, found.group(3), found.start(3), "payload length", _MAX_U16)
        if end - start != length:
            message = f"inconsistent sequence range {start}:{end}({length}): end - start is {end - start}"
            raise cur.error(message, found.start())
        return start, end, length

    def _keyword_uint(self, keyword: str, what: str, maximum: int) -> int | None:
        """`keyword N` if the next word is `keyword`, else None."""
        cur = self.cur
        if cur.peek_word() != keyword:
            return None
        cur.pos += len(keyword)
        return self._uint(f"a number after '{keyword}'", what, maximum)

    def _uint(self, expected: str, what: str, maximum: int) -> int:
        cur = self.cur
        found = cur.match(_UINT)
        if found is None:
            raise cur.expected(expected)
        return _check_uint(cur, found.group(), found.start(), what, maximum)

    # --------------------------------------------------------------------------------- options

    def _options(self, direction: Direction) -> tuple[OptionSpec, ...] | None:
        """After '<': `...>` (not checked) or `option, option, ...>`."""
        cur = self.cur
        at = cur.pos - 1
        if cur.take("..."):
            cur.expect(">", "'>' after '<...'")
            if direction == "<":
                raise cur.error("'<...>' (options not checked) is only allowed on outbound packets", at)
            return None
        options: list[OptionSpec] = []
        while True:
            options.append(self._option())
            if cur.take(">"):
                return tuple(options)
            if not cur.take(","):
                raise cur.expected("',' or '>' in the TCP options")

    def _option(self) -> OptionSpec:
        cur = self.cur
        found = cur.match(_IDENT)
        if found is None:
            raise cur.expected("a TCP option name")
        name = found.group()
        if name in _BARE_OPTIONS:
            return OptionSpec(_BARE_OPTIONS[name])
        if name == "mss":
            return OptionSpec("mss", (self._uint("a number after 'mss'", "mss value", _MAX_U16),))
        if name == "wscale":
            return OptionSpec("wscale", (self._uint("a number after 'wscale'", "wscale value", _MAX_U8),))
        if name == "sack":
            return OptionSpec("sack", self._sack_blocks())
        if name == "TS":
            return OptionSpec("TS", self._timestamps())
        raise _UnsupportedConstruct(_OPTION_DESCRIPTIONS.get(name, f"TCP option '{name}'"))

    def _sack_blocks(self) -> tuple[int, ...]:
        cur = self.cur
        edges: list[int] = []
        while (found := cur.match(_SACK_BLOCK)) is not None:
            edges.append(_check_uint(cur, found.group(1), found.start(1), "SACK block edge", _MAX_U32))
            edges.append(_check_uint(cur, found.group(2), found.start(2), "SACK block edge", _MAX_U32))
        if not edges:
            raise cur.expected("a SACK block 'left:right' after 'sack'")
        return tuple(edges)

    def _timestamps(self) -> tuple[int, int]:
        cur = self.cur
        if cur.peek_word() != "val":
            raise cur.expected("'val' after 'TS'")
        cur.pos += 3
        val = self._uint("a number after 'val'", "TS val", _MAX_U32)
        if cur.peek_word() != "ecr":
            raise cur.expected("'ecr' after the TS val")
        cur.pos += 3
        ecr = self._uint("a number after 'ecr'", "TS ecr", _MAX_U32)
        return val, ecr

    # ---------------------------------------------------------------------------- system calls

    def _syscall(self, time: TimeSpec, end_time: float | None) -> Syscall:
        cur = self.cur
        found = cur.match(_IDENT)
        assert found is not None  # _action saw a word
        name = found.group()
        if name in _UNSUPPORTED_SYSCALLS:
            raise _UnsupportedConstruct(f"system call {name}()")
        cur.expect("(", f"'(' after the system call name '{name}'")
        self._reject_unsupported_constants()
        args = self._arguments(0, f"{name}()")
        cur.expect("=", f"'=' after {name}(...)")
        ret = self._return_value()
        errno = cur.match(_IDENT)
        note = self._note()
        if not cur.at_end():
            raise cur.error(f"unexpected {cur.got()} after the system call")
        return Syscall(
            line=self.line,
            source=self.text,
            time=time,
            end_time=end_time,
            name=name,
            args=args,
            ret=ret,
            errno=errno.group() if errno else None,
            errno_text=note,
        )

    def _reject_unsupported_constants(self) -> None:
        """A system call that names an unmodelled feature (TCP_INFO, MSG_FASTOPEN, ...) is Unsupported,
        whatever the shape of its (often feature-specific) arguments."""
        cur = self.cur
        for found in _WORDS_AND_STRINGS.finditer(cur.text, cur.pos, cur.end):
            if found.group() in _UNSUPPORTED_CONSTANTS:
                raise _UnsupportedConstruct(found.group())

    def _return_value(self) -> int | None:
        cur = self.cur
        if cur.take("..."):
            return None
        found = cur.match(_INT_LITERAL)
        if found is None:
            raise cur.expected("a return value (an integer or '...') after '='")
        return self._int_value(found)

    def _int_value(self, found: re.Match[str]) -> int:
        literal = found.group()
        digits = literal.lstrip("-")
        if len(digits) > _MAX_DIGITS:
            raise self.cur.error(f"integer out of range: {literal[:_MAX_DIGITS]}...", found.start())
        return int(literal, 0) if digits[:2] in ("0x", "0X") else int(literal)

    def _note(self) -> str | None:
        """The `(strerror text)` after a return value: everything up to the matching ')'."""
        cur = self.cur
        if not cur.take("("):
            return None
        at = cur.pos
        depth = 1
        while cur.pos < cur.end:
            char = cur.text[cur.pos]
            depth += {"(": 1, ")": -1}.get(char, 0)
            cur.pos += 1
            if depth == 0:
                return " ".join(cur.text[at : cur.pos - 1].split())
        raise cur.expected("')' to close the note")

    # ------------------------------------------------------------------------------ expressions

    def _arguments(self, depth: int, context: str) -> tuple[Expr, ...]:
        """After '(': `expr, expr, ...)`, possibly empty."""
        cur = self.cur
        if cur.take(")"):
            return ()
        args: list[Expr] = []
        while True:
            args.append(self._expr(depth))
            if cur.take(")"):
                return tuple(args)
            if not cur.take(","):
                raise cur.expected(f"',' or ')' after an argument of {context}")

    def _expr(self, depth: int) -> Expr:
        """`term | term | ...`."""
        cur = self.cur
        if depth > _MAX_NESTING:
            raise cur.error("arguments nested too deeply")
        operands = [self._term(depth)]
        while cur.take("|"):
            operands.append(self._term(depth))
        return operands[0] if len(operands) == 1 else BitOr(tuple(operands))

    def _term(self, depth: int) -> Expr:
        cur = self.cur
        cur.skip_ws()
        if cur.take("..."):
            return EllipsisExpr()
        if cur.startswith('"'):
            return self._string()
        if cur.take("["):
            return Array(self._array_items(depth + 1))
        if cur.take("{"):
            return Struct(self._struct_fields(depth + 1))
        number = cur.match(_INT_LITERAL)
        if number is not None:
            return IntLit(self._int_value(number))
        word = cur.match(_IDENT)
        if word is not None:
            if cur.take("("):
                return Call(word.group(), self._arguments(depth + 1, f"{word.group()}()"))
            return Name(word.group())
        raise cur.expected("an argument (a number, a name, '...', a string, '[...]' or '{...}')")

    def _array_items(self, depth: int) -> tuple[Expr, ...]:
        cur = self.cur
        if cur.take("]"):
            return ()
        items: list[Expr] = []
        while True:
            items.append(self._expr(depth))
            if cur.take("]"):
                return tuple(items)
            if not cur.take(","):
                raise cur.expected("',' or ']' in the array")

    def _struct_fields(self, depth: int) -> tuple[StructField, ...]:
        cur = self.cur
        if cur.take("}"):
            return ()
        fields: list[StructField] = []
        while True:
            key = cur.match(_STRUCT_KEY)
            fields.append(StructField(key.group(1) if key else None, self._expr(depth)))
            if cur.take("}"):
                return tuple(fields)
            if not cur.take(","):
                raise cur.expected("',' or '}' in the struct")

    def _string(self) -> StringLit:
        """One or more adjacent `"..."` literals (the splitter guarantees each is terminated)."""
        cur = self.cur
        parts: list[str] = []
        while cur.startswith('"'):
            close = _find_closing(cur.text, cur.pos, cur.end)
            if close < 0:
                raise cur.error('unterminated string: missing closing "')
            parts.append(_unescape(cur.text[cur.pos + 1 : close]))
            cur.pos = close + 1
            cur.skip_ws()
        return StringLit("".join(parts))

    # --------------------------------------------------------------------------------- commands

    def _command(self, time: TimeSpec | None) -> Sysctl:
        """A backtick command: `sysctl name=value ...` becomes a Sysctl node, anything else Unsupported."""
        cur = self.cur
        open_at = cur.pos
        close = _find_closing(cur.text, open_at, cur.end)
        if close < 0:
            raise cur.error("unterminated command: missing closing `")
        cur.pos = close + 1
        if not cur.at_end():
            raise cur.error(f"unexpected {cur.got()} after the command")
        words = _shell_words(cur, open_at + 1, close)
        summary = " ".join(cur.text[open_at + 1 : close].split())
        if not words or words[0][0] not in _SYSCTL_COMMANDS:
            raise _UnsupportedConstruct(f"shell command `{_shorten(summary)}`")
        settings = tuple(
            self._sysctl_setting(word, at) for word, at in words[1:] if not _is_sysctl_flag(word)
        )
        if not settings:
            raise cur.error("sysctl command without any 'name=value' setting", open_at)
        return Sysctl(line=self.line, source=self.text, time=time, settings=settings)

    def _sysctl_setting(self, word: str, at: int) -> SysctlSetting:
        if word.startswith("-"):
            raise _UnsupportedConstruct(f"sysctl option {word}")
        name, equals, value = word.partition("=")
        if not equals:
            raise _UnsupportedConstruct(f"sysctl read of {name} (no '=')")
        if not _SYSCTL_NAME.fullmatch(name):
            raise self.cur.error(f"invalid sysctl name '{_shorten(name)}'", at)
        namespace, _, short = name.replace("/", ".").rpartition(".")
        return SysctlSetting(namespace, short, value)


def _is_digit(char: str) -> bool:
    return char != "" and char in "0123456789"


def _unescape(raw: str) -> str:
    simple = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "\\": "\\", '"': '"'}
    out: list[str] = []
    i = 0
    while i < len(raw):
        if raw[i] == "\\" and i + 1 < len(raw) and raw[i + 1] in simple:
            out.append(simple[raw[i + 1]])
            i += 2
        else:
            out.append(raw[i])
            i += 1
    return "".join(out)


def _shorten(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _is_sysctl_flag(word: str) -> bool:
    return _SYSCTL_FLAGS.fullmatch(word) is not None


def _shell_words(cur: _Cursor, start: int, end: int) -> list[tuple[str, int]]:
    """Split a command into words like a POSIX shell does for simple commands: quotes removed, backslash
    escapes applied. Anything beyond a simple command (`;`, pipes, `$`, globs, ...) is Unsupported."""
    text = cur.text
    words: list[tuple[str, int]] = []
    word: list[str] | None = None
    word_at = start
    i = start
    while i < end:
        char = text[i]
        if char in " \t" or text.startswith("\\\n", i):
            if word is not None:
                words.append(("".join(word), word_at))
                word = None
            i += 2 if char == "\\" else 1
            continue
        if word is None:
            word, word_at = [], i
        if char in "\"'":
            close = _closing_quote(text, i, end)
            if close < 0:
                raise cur.error(f"unterminated quote {char} in the command", i)
            inner = text[i + 1 : close]
            word.append(inner if char == "'" else re.sub(r'\\([\\"$`])', r"\1", inner))
            i = close + 1
        elif char == "\\":
            word.append(text[i + 1 : i + 2])
            i += 2
        elif char in _SHELL_SPECIAL:
            summary = " ".join(text[start:end].split())
            raise _UnsupportedConstruct(f"shell command `{_shorten(summary)}`")
        else:
            word.append(char)
            i += 1
    if word is not None:
        words.append(("".join(word), word_at))
    return words


def _closing_quote(text: str, i: int, end: int) -> int:
    quote = text[i]
    j = i + 1
    while j < end:
        if quote == '"' and text[j] == "\\":
            j += 2
        elif text[j] == quote:
            return j
        else:
            j += 1
    return -1


# ----------------------------------------------------------------------------- state assertions


def _parse_state_assert(source: _Source, chunk: _Chunk) -> StateAssert:
    """`//= [+DELAY] ROLE: STATE [// comment]`."""
    cur = _Cursor(source, source.text, chunk.start + 3, chunk.end)
    delay = 0.0
    if cur.take("+"):
        found = cur.match(_SECONDS)
        if found is None:
            raise cur.expected("a delay in seconds after '+'")
        delay = float(found.group())
        if delay > _MAX_SECONDS:
            shown = _shorten(found.group(), 24)
            raise cur.error(f"delay out of range (max {_MAX_SECONDS:.0f} s): {shown}", found.start())
    elif _is_digit(cur.peek_char()):
        raise cur.expected("'+' before the delay (write '//= +34 SUT: STATE')")
    role = _assert_role(cur)
    cur.expect(":", f"':' after '{role}'")
    state = _assert_state(cur, role)
    if not cur.at_end() and not cur.startswith("//"):
        raise cur.error(f"unexpected {cur.got()} after the state assertion")
    line = source.position(chunk.start)[0]
    text = source.source_text(chunk.start, chunk.end)
    return StateAssert(line=line, source=text, role=role, state=state, delay=delay)


def _assert_role(cur: _Cursor) -> Role:
    word = cur.peek_word()
    for role in _ROLES:
        if word == role:
            cur.pos += len(role)
            return role
    raise cur.expected("'SUT:' or 'PEER:' in the state assertion")


def _assert_state(cur: _Cursor, role: Role) -> TcpState:
    word = cur.peek_word()
    if not word:
        raise cur.expected(f"a TCP state after '{role}:'")
    for state in TCP_STATES:
        if word == state:
            cur.pos += len(state)
            return state
    known = ", ".join(TCP_STATES)
    raise cur.error(f"unknown TCP state '{_shorten(word, 30)}' (one of {known})")
