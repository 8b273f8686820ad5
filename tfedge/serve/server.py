"""The HTTP/1.1 layer: keep-alive connections, the body limit, the access log, a clean stop.

Standard library only (``http.server``, a thread per open connection, kept for the next
one), so that it builds into the native binary on every target. The models' work runs in
the pools (which release the GIL); this layer only reads bytes and hands them to
:class:`~tfedge.serve.handlers.Service`.
"""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import socketserver
import struct
import sys
import threading
import time
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, Optional, Tuple

from .handlers import Response, Service

__all__ = ["BadHTTP", "RequestHead", "Server", "read_head"]

#: The reason phrase of each status, looked up once (``HTTPStatus(n)`` per response costs more).
_REASONS = {status.value: status.phrase for status in HTTPStatus}
_MAX_LINE = 65536  # as http.server: longer request or header lines get 414 / 431
_MAX_HEADERS = 100


class BadHTTP(ValueError):
    """A request line or header field http.server would refuse: ``status`` and the reason."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class RequestHead:
    """A request's line and header fields, as :func:`read_head` read them."""

    command: str
    path: str
    version: str
    fields: Dict[str, str]  # by lower-case name; the first of repeated ones
    close: bool  # the connection closes after the answer (HTTP/1.0, or Connection: close)
    expect_continue: bool  # the client waits for "100 Continue" before the body


def read_head(request_line: bytes, rfile: io.BufferedIOBase) -> Optional[RequestHead]:
    """Parse ``request_line`` and read the header fields that follow from ``rfile``, up to the blank line.

    http.server's rules and limits (100 fields, 64 KiB a line, HTTP/1.x only, a leading
    ``//`` reduced to ``/``) without its parser of the fields, the ``email`` package: some 270
    Python calls per request, half of all the server made for a small infer request.

    Returns:
        The head, or None for an empty request line (nothing to answer).

    Raises:
        BadHTTP: (400, 431, 505) the line or a field is malformed or too long, or too many.
    """
    line = str(request_line, "iso-8859-1").rstrip("\r\n")
    words = line.split()
    if not words:
        return None
    if len(words) != 3:
        raise BadHTTP(400, f"Bad request syntax ({line[:100]!r})")
    command, path, version = words
    major, dot, minor = version[5:].partition(".")
    if not (version.startswith("HTTP/") and dot and major.isdigit() and minor.isdigit()
            and major.isascii() and minor.isascii() and len(major) <= 10 and len(minor) <= 10):
        raise BadHTTP(400, f"Bad request version ({version[:40]!r})")
    number = (int(major), int(minor))
    if number >= (2, 0):
        raise BadHTTP(505, f"Invalid HTTP version ({version[5:45]})")
    if path.startswith("//"):  # as http.server (gh-87389): never a scheme-less absolute URI
        path = "/" + path.lstrip("/")
    fields: Dict[str, str] = {}
    name = ""
    for _ in range(_MAX_HEADERS + 1):
        raw = rfile.readline(_MAX_LINE + 1)
        if len(raw) > _MAX_LINE:
            raise BadHTTP(431, "Line too long")
        if raw in (b"\r\n", b"\n", b""):
            break
        text = raw.decode("iso-8859-1").rstrip("\r\n")
        if text[:1] in (" ", "\t") and name:  # an obsolete folded continuation of the field before
            fields[name] = f"{fields[name]} {text.strip()}"
            continue
        key, sep, value = text.partition(":")
        if not sep or not key or key != key.strip():
            raise BadHTTP(400, f"Bad header line ({text[:60]!r})")
        name = key.lower()
        if name not in fields:
            fields[name] = value.strip()
        else:
            name = ""  # a repeated field: the first counts, its continuations are dropped
    else:
        raise BadHTTP(431, "Too many headers")
    connection = fields.get("connection", "").lower()
    return RequestHead(command, path, version, fields,
                       close=connection == "close" or (number < (1, 1) and connection != "keep-alive"),
                       expect_continue=number >= (1, 1) and fields.get("expect", "").lower() == "100-continue")


class _SocketReader(io.RawIOBase):
    """A connection's bytes for a BufferedReader; the kernel's receive timeout raises TimeoutError.

    (``socket.makefile`` would take that timeout, EAGAIN on a blocking socket, for a
    non-blocking socket's "no data yet" and return a partial line as if the client had sent it.)
    """

    def __init__(self, sock: socket.socket) -> None:
        super().__init__()
        self._sock = sock

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            return self._sock.recv_into(buffer)
        except BlockingIOError:  # SO_RCVTIMEO ran out
            raise TimeoutError("The connection was idle longer than the server's idle timeout.") from None


class _SocketWriter(io.BufferedIOBase):
    """An unbuffered writer (as socketserver's); the kernel's send timeout raises TimeoutError."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__()
        self._sock = sock

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        try:
            self._sock.sendall(data)
        except BlockingIOError:  # SO_SNDTIMEO ran out: the client stopped reading
            raise TimeoutError("The client read nothing for longer than the server's idle timeout.") from None
        return len(data)


def _kernel_timeouts(sock: socket.socket, seconds: float) -> bool:
    """Set ``sock``'s receive and send timeouts (and TCP_NODELAY) in the kernel; True when they took.

    Linux only, where accepted sockets inherit them from the listening one; the value is read
    back, so that a ``struct timeval`` of another layout (a 32-bit target) is never trusted.
    """
    if not sys.platform.startswith("linux") or seconds <= 0:
        return False
    whole = int(seconds)
    value = struct.pack("@ll", whole, int((seconds - whole) * 1e6))
    try:
        for option in (socket.SO_RCVTIMEO, socket.SO_SNDTIMEO):
            sock.setsockopt(socket.SOL_SOCKET, option, value)
            if sock.getsockopt(socket.SOL_SOCKET, option, len(value)) != value:
                return False
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (OSError, AttributeError, struct.error):
        return False
    return True


def _yield_on_wakeup() -> None:
    """Make the calling thread one that does not preempt the running one when it wakes.

    Linux's SCHED_BATCH, for the connection threads: a thread woken by a request's bytes
    then takes an idle core, or waits for the running thread's turn to end, instead of
    cutting short a model run on its core to read a request that would only wait for an
    interpreter. With more connections than workers this kept the cores from idling while
    threads queued on one of them: MobileNetV2 int8 on 2 workers, 4 connections 398 -> 424
    req/s, 8 connections 361 -> 424 (2 connections: as before); a lone client's latency within
    the noise, on an idle machine and beside two busy processes (RESULTS.md, section 8). Same
    priority otherwise (nice unchanged, no privilege needed). Only from the default policy: a
    server started under another (``chrt --fifo``, ``--idle``) keeps it. Elsewhere, or where a
    sandbox refuses it, a no-op.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        if os.sched_getscheduler(0) == os.SCHED_OTHER:  # 0: the calling thread (Linux)
            os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
    except OSError:
        pass


class _Handler(BaseHTTPRequestHandler):
    """One connection: reads requests, asks the Service, writes responses."""

    protocol_version = "HTTP/1.1"  # keep-alive
    server_version = "tfedge"
    sys_version = ""
    server: _HTTPServer
    raw_requestline: bytes
    fields: Dict[str, str]  # the request's header fields by lower-case name (the first of repeated ones)

    def setup(self) -> None:
        """The connection's reader and writer; an idle keep-alive connection ends after ``idle_timeout``.

        Where the kernel keeps the timeout (SO_RCVTIMEO/SO_SNDTIMEO, set on the listening
        socket and inherited with TCP_NODELAY by each accepted one) the socket stays in
        blocking mode: Python's own timeout would poll() before every recv and send, a
        system call and a hand-over of the GIL each, some 4 per request.
        """
        self.connection = sock = self.request
        if not self.server.kernel_timeouts:
            sock.settimeout(self.server.idle_timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.rfile = io.BufferedReader(_SocketReader(sock))
        self.wfile = _SocketWriter(sock)

    def parse_request(self) -> bool:
        """The request line and header fields (:func:`read_head`); False when the answer was an error.

        From here the request is in flight (a stop waits for it). The fields are in
        ``self.fields`` (``self.headers``, http.server's email message, stays unset).
        """
        with self.server.in_flight_lock:
            self.server.in_flight += 1
            self._counted = True
        self.command = None  # type: ignore[assignment]  # as http.server: set once the line is read
        self.request_version = "HTTP/0.9"
        self.close_connection = True
        self.requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        try:
            head = read_head(self.raw_requestline, self.rfile)
        except BadHTTP as exc:
            self.send_error(exc.status, str(exc))
            return False
        if head is None:
            return False
        self.command, self.path, self.request_version, self.fields = head.command, head.path, head.version, head.fields
        self.close_connection = head.close
        if head.expect_continue:
            return bool(self.handle_expect_100())
        return True

    def handle_one_request(self) -> None:
        """One request (an idle keep-alive connection waiting here is not in flight)."""
        self._counted = False
        try:
            super().handle_one_request()
        finally:
            if self._counted:
                with self.server.in_flight_lock:
                    self.server.in_flight -= 1
                    self.server.in_flight_lock.notify_all()

    def do_GET(self) -> None:
        self._serve(b"")

    def do_POST(self) -> None:
        owner = self.server
        length = self.fields.get("content-length")
        if "transfer-encoding" in self.fields:
            self._send_plain(411, "Send the body with a Content-Length, not chunked.")
            return
        if length is None or not length.strip().isdigit():
            self._send_plain(411, "A POST needs a Content-Length header with the body's size in bytes.")
            return
        size = int(length)
        if size > owner.max_body:
            self._send_plain(413, f"The body is {size} bytes; this server takes at most {owner.max_body} "
                                  "(--max-body).")
            return
        body = self.rfile.read(size)
        if len(body) < size:
            self.close_connection = True
            return  # the client went away mid-body: nobody to answer
        self._serve(body)

    def do_PUT(self) -> None:
        self._serve(b"")

    do_DELETE = do_HEAD = do_PATCH = do_PUT

    def _serve(self, body: bytes) -> None:
        start = time.perf_counter()
        self._write(self.server.service.handle(self.command, self.path, self.fields, body), start)

    def _send_plain(self, status: int, message: str) -> None:
        """A refusal before the body is read; the connection closes (the body is left unread)."""
        self.close_connection = True
        response = Response(status, json.dumps({"error": message}).encode(), headers={"Connection": "close"})
        self._write(response, time.perf_counter())
        self.server.service.metrics.observe("", "body", status, 0.0)

    def _write(self, response: Response, start: float, log: bool = True) -> None:
        if self.server.draining:
            self.close_connection = True
            response.headers["Connection"] = "close"
        lines = [f"HTTP/1.1 {response.status} {_REASONS.get(response.status, '')}", f"Content-Type: {response.content_type}",
                 f"Content-Length: {len(response.body)}", *(f"{k}: {v}" for k, v in response.headers.items())]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        # One write: header and body leave in one segment where they fit (no wait for an ACK).
        self.wfile.write(head if getattr(self, "command", None) == "HEAD" else head + response.body)
        if log and not self.server.quiet:
            ms = (time.perf_counter() - start) * 1000
            sys.stderr.write(f'{self.client_address[0]} "{self.command} {self.path[:200]}" {response.status} '
                             f"{len(response.body)} {ms:.1f}ms\n")

    def send_error(self, code: int, message: Optional[str] = None, explain: Optional[str] = None) -> None:
        """Malformed request lines and headers: a short plain answer, logged as one line."""
        self.close_connection = True
        if not self.server.quiet:
            sys.stderr.write(f'{self.client_address[0]} "{(self.requestline or "")[:200]}" {code} 0 (bad HTTP)\n')
        try:
            body = json.dumps({"error": f"Bad HTTP request: {message or HTTPStatus(code).phrase}."}).encode()
            self._write(Response(code, body, headers={"Connection": "close"}), time.perf_counter(), log=False)
        except OSError:
            pass

    def log_message(self, format: str, *args: Any) -> None:
        """The one access-log line is written by _write; http.server's own lines are not wanted."""


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True  # idle keep-alive connections must not keep the process alive
    block_on_close = False
    kernel_timeouts = False  # the idle timeout is the kernel's (set by server_bind)

    def __init__(self, address: Tuple[str, int], service: Service, *, max_body: int, quiet: bool,
                 idle_timeout: float, max_connections: int) -> None:
        self.service = service
        self.max_connections = max_connections
        self.connections = 0
        self.max_body = max_body
        self.quiet = quiet
        self.idle_timeout = idle_timeout
        self.draining = False
        self.in_flight = 0
        self.in_flight_lock = threading.Condition()
        # Each connection thread accepts its own connection (leader/follower): one waits in
        # accept(), the others serve theirs, and one that takes the last waiting place starts
        # another. A client that opens a connection per request (Frigate's requests.post) is
        # then answered by the thread the kernel woke: no hand-over from an accepting thread
        # (a poll(), a queue and the GIL passed on, each a wake-up), and no new thread, stack
        # and allocator arena. At most max_connections + 1 threads: the spare one answers 503.
        self._alive = 0  # connection threads
        self._accepting = 0  # of them, waiting in accept()
        self._stop = threading.Event()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        """Bind, without http.server's lookup of the host's name (``socket.getfqdn``).

        Nothing here uses the name; the lookup is a DNS query at start, and its IDNA codec
        would make the native binary carry ``unicodedata`` (0.4 MB) for it.
        """
        self.kernel_timeouts = _kernel_timeouts(self.socket, self.idle_timeout)
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        """Start the first connection thread and wait for :meth:`shutdown`."""
        if not self.kernel_timeouts:
            self.socket.settimeout(poll_interval)  # accept() wakes to see a shutdown
        self._start_thread()
        while not self._stop.wait(poll_interval):
            pass

    def shutdown(self) -> None:
        """Make serve_forever return (from any thread)."""
        self._stop.set()

    def server_close(self) -> None:
        """No new connections: the threads waiting in accept() wake and end."""
        self._stop.set()
        try:
            self.socket.shutdown(socket.SHUT_RDWR)  # wakes a blocked accept() (Linux), which close() does not
        except OSError:
            pass
        super().server_close()

    def _start_thread(self) -> None:
        with self.in_flight_lock:
            self._alive += 1
            self._accepting += 1
        threading.Thread(target=self._connection_thread, name="tfedge-serve-connection", daemon=True).start()

    def _connection_thread(self) -> None:
        """Accept a connection and serve it, again and again until the server stops.

        Daemon: one waiting on an idle keep-alive connection never holds the process.
        """
        waiting = True  # counted in _accepting
        _yield_on_wakeup()
        try:
            while not self._stop.is_set():
                try:
                    request, client_address = self.socket.accept()
                except (BlockingIOError, TimeoutError):  # the listening socket's timeout: look at _stop
                    continue
                except OSError:  # shut by server_close; or the accept failed (out of descriptors, ...)
                    if not self._stop.is_set():
                        time.sleep(0.01)
                    continue
                with self.in_flight_lock:
                    self._accepting -= 1
                    waiting = False
                    full = self.connections >= self.max_connections
                    if not full:
                        self.connections += 1
                    spawn = self._accepting == 0 and self._alive <= self.max_connections
                if spawn:
                    self._start_thread()
                if full:
                    self._refuse(request)
                else:
                    try:
                        self.process_request_thread(request, client_address)  # handles, closes, logs an Exception
                    finally:
                        with self.in_flight_lock:
                            self.connections -= 1
                with self.in_flight_lock:
                    self._accepting += 1
                    waiting = True
        finally:
            with self.in_flight_lock:
                self._alive -= 1
                self._accepting -= waiting

    def _refuse(self, request: socket.socket) -> None:
        """``max_connections`` are open: 503 and close."""
        try:
            request.sendall(b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nConnection: close\r\n"
                            b"Content-Length: 0\r\n\r\n")
        except OSError:
            pass
        self.shutdown_request(request)
        self.service.metrics.observe("", "connection", 503, 0.0)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A connection that broke (client gone, reset): one line, no traceback."""
        exc = sys.exc_info()[1]
        if not self.quiet:
            sys.stderr.write(f"{client_address[0]} connection dropped: {type(exc).__name__}: {exc}\n")


class Server:
    """An HTTP server for a :class:`Service` on ``host:port`` (port 0: a free one).

    ``serve_forever()`` runs until :meth:`stop` (or SIGTERM/SIGINT with
    :meth:`install_signal_handlers`); then requests in flight finish and it returns.
    """

    def __init__(self, service: Service, host: str = "127.0.0.1", port: int = 8000, *,
                 max_body: int = 64 * 1024 * 1024, quiet: bool = False, idle_timeout: float = 60.0,
                 grace: float = 30.0, max_connections: int = 128) -> None:
        self.service = service
        self.grace = grace
        self._http = _HTTPServer((host, port), service, max_body=max_body, quiet=quiet, idle_timeout=idle_timeout,
                                  max_connections=max_connections)
        self._stopping = threading.Event()

    @property
    def address(self) -> Tuple[str, int]:
        """The (host, port) listened on."""
        host, port = self._http.server_address[:2]
        return str(host), int(port)

    def serve_forever(self) -> None:
        """Serve until stopped, then let the requests in flight finish (at most ``grace`` seconds)."""
        try:
            self._http.serve_forever(poll_interval=0.2)
        finally:
            self._http.server_close()  # no new connections; the connection threads end after theirs
            deadline = time.monotonic() + self.grace
            with self._http.in_flight_lock:
                while self._http.in_flight and time.monotonic() < deadline:
                    self._http.in_flight_lock.wait(0.1)

    def stop(self) -> None:
        """Stop accepting; returns at once (safe from a signal handler)."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        self._http.draining = self.service.draining = True
        threading.Thread(target=self._http.shutdown, name="tfedge-serve-stop", daemon=True).start()

    def install_signal_handlers(self) -> None:
        """SIGTERM and SIGINT stop the server gracefully (main thread only)."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop())
