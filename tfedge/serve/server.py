"""The HTTP/1.1 layer: keep-alive connections, the body limit, the access log, a clean stop.

Standard library only (``http.server`` on a thread per connection), so that it builds into
the native binary on every target. The models' work runs in the pools (which release the
GIL); this layer only reads bytes and hands them to :class:`~tfedge.serve.handlers.Service`.
"""

from __future__ import annotations

import json
import signal
import socket
import socketserver
import sys
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Optional, Tuple

from .handlers import Response, Service

__all__ = ["Server"]

class _Handler(BaseHTTPRequestHandler):
    """One connection: reads requests, asks the Service, writes responses."""

    protocol_version = "HTTP/1.1"  # keep-alive
    server_version = "tfedge"
    sys_version = ""
    server: _HTTPServer

    def setup(self) -> None:
        self.request.settimeout(self.server.idle_timeout)  # an idle keep-alive connection ends after this
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def parse_request(self) -> bool:
        """Request line and headers read: from here the request is in flight (a stop waits for it)."""
        with self.server.in_flight_lock:
            self.server.in_flight += 1
            self._counted = True
        return super().parse_request()

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
        length = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding") is not None:
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
        headers = {k.lower(): v for k, v in self.headers.items()}
        self._write(self.server.service.handle(self.command, self.path, headers, body), start)

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
        try:
            reason = HTTPStatus(response.status).phrase
        except ValueError:
            reason = ""
        lines = [f"HTTP/1.1 {response.status} {reason}", f"Content-Type: {response.content_type}",
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
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        """Bind, without http.server's lookup of the host's name (``socket.getfqdn``).

        Nothing here uses the name; the lookup is a DNS query at start, and its IDNA codec
        would make the native binary carry ``unicodedata`` (0.4 MB) for it.
        """
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        """A thread for the connection, unless ``max_connections`` are open: then 503 and close."""
        with self.in_flight_lock:
            full = self.connections >= self.max_connections
            if not full:
                self.connections += 1
        if not full:
            super().process_request(request, client_address)
            return
        try:
            request.sendall(b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nConnection: close\r\n"
                            b"Content-Length: 0\r\n\r\n")
        except OSError:
            pass
        self.shutdown_request(request)
        self.service.metrics.observe("", "connection", 503, 0.0)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self.in_flight_lock:
                self.connections -= 1

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
            self._http.server_close()  # no new connections
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
