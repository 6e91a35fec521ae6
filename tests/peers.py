"""Real local peers for delivery tests: an HTTP receiver for webhooks, an SMTP server.

Both listen on 127.0.0.1 in threads of their own, so sync and async tests can use them.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session


@dataclass
class Received:
    """One request the receiver got."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """An HTTP server that answers from a script and records what it received.

    ``script`` holds ``(status, headers, body)`` answers used in turn; when it runs out,
    every request gets ``200 ok``.
    """

    script: list[tuple[int, dict[str, str], bytes]] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        """The receiver's base URL."""
        return f"http://127.0.0.1:{self.port}"


@contextmanager
def webhook_receiver(*answers: tuple[int, dict[str, str], bytes]) -> Iterator[Receiver]:
    """A running ``Receiver`` that gives ``answers`` first."""
    receiver = Receiver(script=list(answers))
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            with lock:
                receiver.received.append(
                    Received(
                        "POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body
                    )
                )
                status, headers, answer = (
                    receiver.script.pop(0) if receiver.script else (200, {}, b"ok")
                )
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            """Stay quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


# -- SMTP ----------------------------------------------------------------------------------


@dataclass
class Mailbox:
    """What the SMTP server accepted."""

    messages: list[Envelope] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)

    async def handle_DATA(  # noqa: N802 - aiosmtpd's hook name
        self,
        _server: Any,
        _session: Session,
        envelope: Envelope,
    ) -> str:
        """Keep the message."""
        self.messages.append(envelope)
        return "250 OK"


@dataclass
class SmtpServer:
    """A running SMTP server and where it keeps what it received."""

    port: int
    mailbox: Mailbox


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Certificates:
    """A test CA, its file, and a server certificate for 127.0.0.1 and localhost."""

    ca_file: Path
    server_context: ssl.SSLContext


def make_certificates(directory: Path) -> Certificates:
    """A fresh CA and server certificate (trustme), the CA written to ``directory``."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    path = directory / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return Certificates(path, context)


@contextmanager
def smtp_server(
    *,
    starttls: ssl.SSLContext | None = None,
    implicit_tls: ssl.SSLContext | None = None,
    users: dict[str, str] | None = None,
) -> Iterator[SmtpServer]:
    """An SMTP server on 127.0.0.1: plain, with STARTTLS, or TLS from the start.

    With ``users``, it asks for a login (AUTH PLAIN/LOGIN) and refuses mail without one.
    """
    mailbox = Mailbox()

    def authenticate(
        server: Any, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if isinstance(data, LoginPassword) and users is not None:
            user = data.login.decode()
            if users.get(user) == data.password.decode():
                mailbox.logins.append(user)
                return AuthResult(success=True)
        return AuthResult(success=False, handled=False)

    kwargs: dict[str, Any] = {}
    if users is not None:
        kwargs.update(
            authenticator=authenticate,
            auth_required=True,
            auth_require_tls=starttls is not None,
        )
    if starttls is not None:
        kwargs.update(tls_context=starttls, require_starttls=True)
    port = free_port()
    controller = Controller(
        mailbox,
        hostname="127.0.0.1",
        port=port,
        ssl_context=implicit_tls,
        server_hostname="127.0.0.1",
        **kwargs,
    )
    controller.start()
    try:
        yield SmtpServer(port, mailbox)
    finally:
        controller.stop()
