"""The BSD socket API over a Host: what Python's `socket.socket` does after `setblocking(False)`.

Same method names, the constants of Python's own `socket` module, and the OSError subclasses a Linux
socket raises (BlockingIOError for EAGAIN/EINPROGRESS, ConnectionRefusedError, ConnectionResetError,
TimeoutError for ETIMEDOUT, BrokenPipeError...). A call happens at the host's current time, the `now`
of its latest receive() or poll().
"""

from __future__ import annotations

import errno
import os
import socket as _pysocket
import struct
from typing import TYPE_CHECKING, Any

from .connection import Connection, SocketOptions
from .listener import Listener
from .state import State
from .wire import ip_to_bytes

if TYPE_CHECKING:
    from .host import Host

SOCK_MIN_RCVBUF = 2304  # Linux SOCK_MIN_RCVBUF (2048 + sizeof(struct sk_buff), rounded)
SOCK_MIN_SNDBUF = 4608
MAX_TCP_KEEPIDLE = 32767
MAX_TCP_KEEPINTVL = 32767
MAX_TCP_KEEPCNT = 127


def _error(code: int, detail: str = "") -> OSError:
    # OSError(errno, text) returns the matching subclass (BlockingIOError, ConnectionResetError, ...).
    text = os.strerror(code) + (f" ({detail})" if detail else "")
    return OSError(code, text)


def _address(address: Any) -> tuple[str, int]:
    if not isinstance(address, tuple) or len(address) != 2:
        raise TypeError("AF_INET address must be a tuple (host, port)")
    host, port = address
    if not isinstance(host, str):
        raise TypeError(f"host must be a str, not {type(host).__name__}")
    if host in ("", "0.0.0.0"):
        host = "0.0.0.0"
    else:
        try:
            ip_to_bytes(host)
        except ValueError:
            raise _error(errno.EINVAL, f"{host!r} is not an IPv4 address") from None
    if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
        raise OverflowError("port must be 0-65535.")
    return host, port


class Socket:
    """A non-blocking TCP socket of a stack.Host."""

    family = _pysocket.AF_INET
    type = _pysocket.SOCK_STREAM
    proto = _pysocket.IPPROTO_TCP

    def __init__(self, host: Host, conn: Connection | None = None) -> None:
        self.host = host
        self.opts = conn.opts if conn is not None else SocketOptions()
        self.conn: Connection | None = conn
        self.listener: Listener | None = None
        self.local: tuple[str, int] | None = (conn.laddr, conn.lport) if conn is not None else None
        self.closed = False
        self._connect_reported = conn is not None
        if conn is not None:
            conn.sock = self

    def __repr__(self) -> str:
        return f"<stack.Socket {self.host.name} local={self.local} state={self.state}>"

    # ----------------------------------------------------------------------------------------------------

    @property
    def state(self) -> State:
        """The connection's RFC 9293 state (LISTEN for a listener, CLOSED when there is none)."""
        if self.listener is not None:
            return State.LISTEN
        if self.conn is not None:
            return self.conn.state
        return State.CLOSED

    def snapshot(self) -> Any:
        if self.listener is not None:
            return self.listener.snapshot()
        if self.conn is not None:
            return self.conn.snapshot()
        return None

    def _check_open(self) -> None:
        if self.closed:
            raise _error(errno.EBADF, "socket is closed")

    @property
    def _now(self) -> int:
        return self.host.now

    def setblocking(self, flag: bool) -> None:
        if flag:
            raise ValueError("stack sockets are sans-IO and always non-blocking; use setblocking(False)")

    def settimeout(self, value: float | None) -> None:
        if value != 0.0:
            raise ValueError("stack sockets are always non-blocking; only settimeout(0.0) is accepted")

    def gettimeout(self) -> float:
        return 0.0

    def fileno(self) -> int:
        return -1

    # ----------------------------------------------------------------------------------------------------

    def bind(self, address: tuple[str, int]) -> None:
        self._check_open()
        addr, port = _address(address)
        if self.local is not None:
            raise _error(errno.EINVAL, "socket is already bound")
        if addr not in ("0.0.0.0", self.host.address):
            raise _error(errno.EADDRNOTAVAIL, f"{addr} is not an address of this host")
        if port == 0:
            port = self.host.bind_ephemeral(addr, self.opts.reuseaddr)
        elif self.host.bind_conflict(addr, port, self.opts.reuseaddr):
            raise _error(errno.EADDRINUSE, f"{addr}:{port}")
        self.local = (addr, port)
        self.host.bound.setdefault(port, []).append(self)

    def listen(self, backlog: int = 128) -> None:
        self._check_open()
        if self.conn is not None:
            raise _error(errno.EINVAL, "socket is connected")
        if self.listener is not None:
            self.listener.set_backlog(backlog)  # Linux lets listen() change the backlog
            return
        if self.local is None:
            self.bind(("0.0.0.0", 0))
        assert self.local is not None
        self.host.release_port(self)
        listener = Listener(self.host, self, self.local[0], self.local[1], backlog, self.opts)
        self.host.listeners[self.local] = listener
        self.listener = listener
        self.host.emit_socket(self._now, listener.id, "listening", f"backlog {listener.backlog}")

    def accept(self) -> tuple[Socket, tuple[str, int]]:
        self._check_open()
        if self.listener is None:
            raise _error(errno.EINVAL, "socket is not listening")
        if not self.listener.accept_queue:
            raise _error(errno.EAGAIN, "no connection to accept")
        conn = self.listener.accept_queue.popleft()
        conn.listener = None
        sock = Socket(self.host, conn)
        self.host.emit_socket(self._now, conn.id, "accepted")
        return sock, (conn.raddr, conn.rport)

    def connect(self, address: tuple[str, int]) -> None:
        code = self.connect_ex(address)
        if code:
            raise _error(code)

    def connect_ex(self, address: tuple[str, int]) -> int:
        """connect() returning an errno instead of raising (0 once connected, EINPROGRESS at first)."""
        self._check_open()
        raddr, rport = _address(address)
        if self.listener is not None:
            return errno.EISCONN  # Linux: connect() on a listening socket
        conn = self.conn
        if conn is not None:
            if conn.error and not self._connect_reported:
                self._connect_reported = True
                err, conn.error = conn.error, 0
                return err
            st = conn.state
            if st in (State.SYN_SENT, State.SYN_RCVD):
                return errno.EALREADY
            if st is State.CLOSED:
                return self._reconnect(raddr, rport)
            if not self._connect_reported:
                self._connect_reported = True
                return 0
            return errno.EISCONN
        if rport == 0 or raddr == "0.0.0.0":
            return errno.ECONNREFUSED if rport == 0 else errno.ENETUNREACH
        return self._start_connect(raddr, rport)

    def _reconnect(self, raddr: str, rport: int) -> int:
        # Linux allows connect() again on a socket whose connection ended (it is CLOSE again).
        self.conn = None
        self._connect_reported = False
        return self._start_connect(raddr, rport)

    def _start_connect(self, raddr: str, rport: int) -> int:
        host = self.host
        if self.local is not None:
            laddr, lport = self.local
            if laddr == "0.0.0.0":
                laddr = host.address
            existing = host.conns.get((laddr, lport, raddr, rport))
            if existing is not None:
                if existing.state is State.TIME_WAIT and host._tw_reusable(existing):
                    host.reuse_time_wait(existing)
                else:
                    return errno.EADDRNOTAVAIL
            host.release_port(self)
        else:
            try:
                lport = host.connect_port(raddr, rport)
            except OSError as exc:
                return exc.errno or errno.EADDRNOTAVAIL
            laddr = host.address
        self.local = (laddr, lport)
        conn = Connection(host, laddr, lport, raddr, rport, self.opts)
        conn.sock = self
        self.conn = conn
        host.register(conn)
        conn.connect(self._now)
        return errno.EINPROGRESS

    # ----------------------------------------------------------------------------------------------------

    def send(self, data: bytes | bytearray | memoryview, flags: int = 0) -> int:
        """Queue data; returns how many bytes were accepted (raises BlockingIOError if none fit)."""
        self._check_open()
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(f"a bytes-like object is required, not '{type(data).__name__}'")
        conn = self.conn
        if conn is None or self.listener is not None:
            raise _error(errno.EPIPE if self.listener is None else errno.ENOTCONN)
        if conn.error:
            err, conn.error = conn.error, 0
            raise _error(err)
        if conn.shut_wr or conn.state not in (State.ESTABLISHED, State.CLOSE_WAIT):
            if conn.state in (State.SYN_SENT, State.SYN_RCVD):
                raise _error(errno.EAGAIN, "connection not yet established")
            raise _error(errno.EPIPE)
        if not data:
            return 0
        n = conn.app_send(data, self._now)
        if n == 0:
            raise _error(errno.EAGAIN, "send buffer full")
        return n

    def sendall(self, data: bytes | bytearray | memoryview, flags: int = 0) -> None:
        """Queue all of data or raise BlockingIOError with the count sent in `characters_written`."""
        view = memoryview(bytes(data))
        sent = 0
        while sent < len(view):
            try:
                sent += self.send(view[sent:])
            except BlockingIOError as exc:
                exc.characters_written = sent
                raise
        return None

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        """Received bytes in order; b"" at end of stream; BlockingIOError when nothing is there yet."""
        self._check_open()
        if bufsize < 0:
            raise ValueError("negative buffersize in recv")
        conn = self.conn
        if conn is None:
            raise _error(errno.ENOTCONN)
        if conn.rq.ready:
            if flags & _pysocket.MSG_PEEK:
                return bytes(conn.rq.ready[:bufsize])
            return conn.app_recv(bufsize, self._now)
        if conn.fin_received:
            return b""
        if conn.error:
            err, conn.error = conn.error, 0
            raise _error(err)
        if conn.shut_rd:
            return b""
        if conn.state is State.CLOSED:
            if conn.closed_cause:
                return b""
            raise _error(errno.ENOTCONN)
        raise _error(errno.EAGAIN, "no data yet")

    def shutdown(self, how: int) -> None:
        self._check_open()
        if how not in (_pysocket.SHUT_RD, _pysocket.SHUT_WR, _pysocket.SHUT_RDWR):
            raise _error(errno.EINVAL, f"bad shutdown mode {how}")
        conn = self.conn
        if self.listener is not None:
            # Linux: shutdown(SHUT_RD) on a listener stops it (inet_shutdown -> tcp_disconnect).
            if how in (_pysocket.SHUT_RD, _pysocket.SHUT_RDWR):
                self._close_listener()
            return
        if conn is None or (conn.state is State.CLOSED and not conn.closed_cause):
            raise _error(errno.ENOTCONN)
        if how in (_pysocket.SHUT_RD, _pysocket.SHUT_RDWR):
            conn.shut_rd = True
        if how in (_pysocket.SHUT_WR, _pysocket.SHUT_RDWR):
            conn.app_shutdown_wr(self._now)

    def close(self) -> None:
        """Release the socket. A connection goes on closing on its own (an orphan), as in the kernel."""
        if self.closed:
            return
        self.closed = True
        if self.listener is not None:
            self._close_listener()
        elif self.conn is not None:
            conn = self.conn
            conn.sock = None
            conn.app_close(self._now)
        self.host.release_port(self)

    def _close_listener(self) -> None:
        listener = self.listener
        if listener is None:
            return
        listener.close(self._now)
        self.host.listeners.pop((listener.addr, listener.port), None)
        self.host.emit_socket(self._now, listener.id, "closed", "listener closed")
        self.listener = None

    def abort(self) -> None:
        """Abortive close (RFC 9293 ABORT): what close() does with SO_LINGER {1, 0}."""
        self.opts.linger_on, self.opts.linger_secs = True, 0
        self.close()

    # ----------------------------------------------------------------------------------------------------

    def getsockname(self) -> tuple[str, int]:
        self._check_open()
        return self.local if self.local is not None else ("0.0.0.0", 0)

    def getpeername(self) -> tuple[str, int]:
        self._check_open()
        conn = self.conn
        if conn is None or conn.state in (State.CLOSED, State.SYN_SENT):
            raise _error(errno.ENOTCONN)
        return conn.raddr, conn.rport

    def setsockopt(self, level: int, optname: int, value: int | bytes | tuple[int, int]) -> None:
        self._check_open()
        opts = self.opts
        now = self._now
        if level == _pysocket.SOL_SOCKET:
            if optname == _pysocket.SO_REUSEADDR:
                opts.reuseaddr = bool(_int(value))
            elif optname == _pysocket.SO_KEEPALIVE:
                on = bool(_int(value))
                if self.conn is not None:
                    self.conn.set_keepalive(on, now)
                else:
                    opts.keepalive = on
            elif optname == _pysocket.SO_LINGER:
                onoff, secs = _linger(value)
                opts.linger_on, opts.linger_secs = bool(onoff), max(secs, 0)
            elif optname == _pysocket.SO_RCVBUF:
                size = min(_int(value), self.host.settings.rmem_max)
                opts.rcvbuf = max(size * 2, SOCK_MIN_RCVBUF)  # Linux doubles it for bookkeeping
                if self.conn is not None:
                    self.conn.rcvbuf = opts.rcvbuf
            elif optname == _pysocket.SO_SNDBUF:
                size = min(_int(value), self.host.settings.wmem_max)
                opts.sndbuf = max(size * 2, SOCK_MIN_SNDBUF)
                if self.conn is not None:
                    self.conn.sndbuf = opts.sndbuf
            else:
                raise _error(errno.ENOPROTOOPT, f"SOL_SOCKET option {optname} is not supported")
        elif level == _pysocket.IPPROTO_TCP:
            number = _int(value)
            if optname == _pysocket.TCP_NODELAY:
                opts.nodelay = bool(number)
                if self.conn is not None and number:
                    self.conn.output(now)
            elif optname == _pysocket.TCP_KEEPIDLE:
                _range(number, 1, MAX_TCP_KEEPIDLE)
                opts.keepidle = number
                if self.conn is not None:
                    self.conn.keepidle_changed(now)
            elif optname == _pysocket.TCP_KEEPINTVL:
                _range(number, 1, MAX_TCP_KEEPINTVL)
                opts.keepintvl = number
            elif optname == _pysocket.TCP_KEEPCNT:
                _range(number, 1, MAX_TCP_KEEPCNT)
                opts.keepcnt = number
            elif optname == _pysocket.TCP_MAXSEG:
                _range(number, 88, 32767)
                opts.maxseg = number
            else:
                raise _error(errno.ENOPROTOOPT, f"IPPROTO_TCP option {optname} is not supported")
        else:
            raise _error(errno.ENOPROTOOPT, f"level {level} is not supported")

    def getsockopt(self, level: int, optname: int, buflen: int = 0) -> int | bytes:
        self._check_open()
        opts = self.opts
        value: int
        if level == _pysocket.SOL_SOCKET:
            if optname == _pysocket.SO_ERROR:
                value = 0
                if self.conn is not None:
                    value, self.conn.error = self.conn.error, 0
                    if value:
                        self._connect_reported = True
            elif optname == _pysocket.SO_REUSEADDR:
                value = int(opts.reuseaddr)
            elif optname == _pysocket.SO_KEEPALIVE:
                value = int(opts.keepalive)
            elif optname == _pysocket.SO_LINGER:
                if buflen:
                    return struct.pack("ii", int(opts.linger_on), opts.linger_secs)
                value = int(opts.linger_on)
            elif optname == _pysocket.SO_RCVBUF:
                value = self.conn.rcvbuf if self.conn else (opts.rcvbuf or self.host.settings.tcp_rmem[1])
            elif optname == _pysocket.SO_SNDBUF:
                value = self.conn.sndbuf if self.conn else (opts.sndbuf or self.host.settings.tcp_wmem[1])
            elif optname == _pysocket.SO_TYPE:
                value = _pysocket.SOCK_STREAM
            elif optname == _pysocket.SO_ACCEPTCONN:
                value = int(self.listener is not None)
            else:
                raise _error(errno.ENOPROTOOPT, f"SOL_SOCKET option {optname} is not supported")
        elif level == _pysocket.IPPROTO_TCP:
            s = self.host.settings
            if optname == _pysocket.TCP_NODELAY:
                value = int(opts.nodelay)
            elif optname == _pysocket.TCP_KEEPIDLE:
                value = opts.keepidle or s.tcp_keepalive_time
            elif optname == _pysocket.TCP_KEEPINTVL:
                value = opts.keepintvl or s.tcp_keepalive_intvl
            elif optname == _pysocket.TCP_KEEPCNT:
                value = opts.keepcnt or s.tcp_keepalive_probes
            elif optname == _pysocket.TCP_MAXSEG:
                value = self.conn.mss if self.conn else (opts.maxseg or TCP_MSS_DEFAULT_GET)
            else:
                raise _error(errno.ENOPROTOOPT, f"IPPROTO_TCP option {optname} is not supported")
        else:
            raise _error(errno.ENOPROTOOPT, f"level {level} is not supported")
        if buflen:
            return struct.pack("i", value)[:buflen]
        return value


TCP_MSS_DEFAULT_GET = 536


def _int(value: Any) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, bytes | bytearray) and len(value) >= 4:
        return int(struct.unpack("i", bytes(value[:4]))[0])
    raise TypeError("socket option value must be an int or a 4-byte buffer")


def _linger(value: Any) -> tuple[int, int]:
    if isinstance(value, tuple) and len(value) == 2:
        return int(value[0]), int(value[1])
    if isinstance(value, bytes | bytearray) and len(value) >= 8:
        onoff, secs = struct.unpack("ii", bytes(value[:8]))
        return int(onoff), int(secs)
    raise _error(errno.EINVAL, 'SO_LINGER takes struct.pack("ii", onoff, seconds)')


def _range(value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise _error(errno.EINVAL, f"value {value} outside {low}..{high}")
