"""Outages: a host that stops accepting connections for a while and comes back on its port.

``SimFediverse.take_down`` and ``bring_up`` switch an instance by hand; ``schedule_outage``
declares an ``Outage`` up front, which the world runs on its event loop in real time (like the
rate-limit windows), so a benchmark can say "beta vanishes 2 s into the round for 3 s".
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Outage"]


@dataclass(eq=False, slots=True)
class Outage:
    """One scheduled outage of one instance; ``SimFediverse.schedule_outage`` returns it.

    ``after`` seconds from the moment the world starts serving (or from the call, when it
    serves already) the instance stops accepting; ``lasting`` seconds later it accepts again
    on the same port (None: it never comes back). ``began`` and ``ended`` are the
    ``time.monotonic()`` moments it went down and came back, None until they happen: a
    benchmark can set them beside the request log.
    """

    instance: str
    after: float
    lasting: float | None
    began: float | None = field(default=None, init=False)
    ended: float | None = field(default=None, init=False)
    #: Whether the world has started its timer (an outage runs once, in one serve).
    launched: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        """Refuse timings that cannot work.

        Raises:
            ValueError: a negative ``after`` or a non-positive ``lasting``.
        """
        if not self.after >= 0:
            raise ValueError(f"after must not be negative, got {self.after}")
        if self.lasting is not None and not self.lasting > 0:
            raise ValueError(f"lasting must be positive (or None: for good), got {self.lasting}")

    @property
    def permanent(self) -> bool:
        """Whether the instance never comes back."""
        return self.lasting is None

    def describe(self) -> str:
        """``down after 2.0s for 3.0s`` or ``down after 0.0s for good``."""
        lasting = "for good" if self.lasting is None else f"for {self.lasting:.1f}s"
        return f"down after {self.after:.1f}s {lasting}"
