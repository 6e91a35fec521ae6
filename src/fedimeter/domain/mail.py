"""E-mail addresses as settings take them: checked, never guessed. Pure."""

from __future__ import annotations

from email.utils import parseaddr

__all__ = ["check_address"]

_FORBIDDEN = frozenset(' \t\r\n,;<>"()[]\\')


def check_address(text: str) -> str:
    """``text`` when it is one address, ``user@domain`` or ``Name <user@domain>``.

    Returns:
        The bare address (``user@domain``).

    Raises:
        ValueError: not exactly one plausible address (line breaks, several addresses, no
            ``@``, an empty part, a domain without a dot other than ``localhost``).
    """
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):  # noqa: PLR2004 - control chars
        raise ValueError(f"{text!r} is not an e-mail address (control characters)")
    if "," in text or ";" in text:
        raise ValueError(f"{text!r} is not one e-mail address: give each one separately")
    _name, address = parseaddr(text)
    local, at, domain = address.rpartition("@")
    if (
        not at
        or not local
        or not domain
        or any(c in _FORBIDDEN for c in address)
        or domain.startswith(".")
        or domain.endswith(".")
        or ".." in domain
        or ("." not in domain and domain != "localhost")
    ):
        raise ValueError(f"{text!r} is not an e-mail address such as reports@example.org")
    return address
