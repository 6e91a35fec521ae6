"""E-mailing a report through an SMTP server: STARTTLS, implicit TLS, or (on loopback) none.

The message has the text report as its plain part, the HTML report as its alternative, and
the CSV report attached. ``smtplib`` blocks, so sending runs in a worker thread. A password is
never sent over an unencrypted connection to another machine.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import TYPE_CHECKING

from fedimeter.delivery.sending import Retry, with_retries
from fedimeter.domain.mail import check_address
from fedimeter.errors import ConfigError, DeliveryError
from fedimeter.fediverse.netguard import is_loopback_host

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from datetime import datetime

    from fedimeter.config import Settings

__all__ = ["DEFAULT_PORTS", "build_message", "send_email"]

DEFAULT_PORTS = {"starttls": 587, "tls": 465, "none": 25}
_TRANSIENT_REPLY = range(400, 500)


def build_message(
    *,
    sender: str,
    recipients: list[str],
    subject: str,
    text: str,
    html: str,
    csv: str,
    csv_name: str,
    now: datetime,
) -> EmailMessage:
    """A multipart message: text, HTML alternative, CSV attachment."""
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = format_datetime(now)
    domain = check_address(sender).rpartition("@")[2]
    message["Message-ID"] = make_msgid(domain=domain)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation auto-replies
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    message.add_attachment(csv.encode(), maintype="text", subtype="csv", filename=csv_name)
    return message


def _ssl_context(settings: Settings) -> ssl.SSLContext:
    try:
        return ssl.create_default_context(
            cafile=str(settings.smtp_ca_file) if settings.smtp_ca_file else None
        )
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot read smtp_ca_file {settings.smtp_ca_file}: {exc}") from None


def _transmit(settings: Settings, message: EmailMessage, where: str) -> dict[str, object]:
    """Connect, secure, log in and send; return the recipients the server refused."""
    host = settings.smtp_host or ""
    security = settings.smtp_security
    port = settings.smtp_port or DEFAULT_PORTS[security]
    context = _ssl_context(settings)
    smtp: smtplib.SMTP
    if security == "tls":
        smtp = smtplib.SMTP_SSL(host, port, timeout=settings.smtp_timeout, context=context)
    else:
        smtp = smtplib.SMTP(host, port, timeout=settings.smtp_timeout)
    with smtp:
        smtp.ehlo()
        if security == "starttls":
            if not smtp.has_extn("starttls"):
                raise DeliveryError(
                    f"{where} does not offer STARTTLS: fedimeter will not send in clear"
                    " text (set smtp_security to tls for a TLS port)"
                )
            smtp.starttls(context=context)
            smtp.ehlo()
        if settings.smtp_user is not None:
            secret = settings.smtp_password
            smtp.login(settings.smtp_user, secret.get_secret_value() if secret else "")
        return dict(smtp.send_message(message))


def _send_once(settings: Settings, message: EmailMessage) -> None:
    """One attempt, blocking.

    Raises:
        Retry: a transient failure (a 4xx reply, a dropped or refused connection, a timeout).
        DeliveryError: the server refused the certificate check, the login, the recipients or
            the message.
    """
    port = settings.smtp_port or DEFAULT_PORTS[settings.smtp_security]
    where = f"the SMTP server {settings.smtp_host}:{port}"
    try:
        refused = _transmit(settings, message, where)
    except ssl.SSLCertVerificationError as exc:
        raise DeliveryError(
            f"the certificate of {where} cannot be verified ({exc.verify_message}):"
            " set smtp_ca_file to the CA that signed it"
        ) from None
    except smtplib.SMTPAuthenticationError as exc:
        raise DeliveryError(
            f"{where} refused the user name or password ({exc.smtp_code})"
        ) from None
    except smtplib.SMTPRecipientsRefused as exc:
        raise DeliveryError(
            f"{where} refused every recipient ({', '.join(sorted(exc.recipients))})"
        ) from None
    except smtplib.SMTPResponseException as exc:
        raw = exc.smtp_error
        said = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        if exc.smtp_code in _TRANSIENT_REPLY:
            raise Retry(f"answered {exc.smtp_code} {said}") from None
        raise DeliveryError(f"{where} refused the message ({exc.smtp_code} {said})") from None
    except (smtplib.SMTPException, OSError) as exc:
        # Disconnections, timeouts, refused connections, TLS handshakes that broke off.
        raise Retry(f"failed ({type(exc).__name__}: {exc})") from None
    if refused:
        raise DeliveryError(f"{where} refused some recipients: {', '.join(sorted(refused))}")


def check_smtp_settings(settings: Settings) -> None:
    """Refuse settings that would send a password in clear text to another machine.

    Raises:
        ConfigError: ``smtp_security = "none"`` with a user, to a host that is not loopback.
    """
    if (
        settings.smtp_security == "none"
        and settings.smtp_user is not None
        and not is_loopback_host(settings.smtp_host or "")
    ):
        raise ConfigError(
            "smtp_security is none, so the SMTP password would cross the network in clear"
            " text: use starttls or tls"
        )


async def send_email(
    settings: Settings,
    message: EmailMessage,
    *,
    sleep: Callable[[float], Awaitable[None]],
) -> None:
    """Send ``message`` through the configured SMTP server, retrying transient failures.

    Raises:
        ConfigError: the settings would send a password in clear text, or the CA file is bad.
        DeliveryError: the server refused the login, the recipients or the message, or kept
            failing.
    """
    check_smtp_settings(settings)
    await with_retries(
        lambda: asyncio.to_thread(_send_once, settings, message),
        what=f"the SMTP server {settings.smtp_host}",
        settings=settings,
        sleep=sleep,
    )
