"""What a graph is drawn from and how it looks: series, options and the two themes."""

from __future__ import annotations

from collections.abc import Sequence  # noqa: TC003 - dataclass fields are resolved at runtime
from dataclasses import dataclass
from datetime import date, datetime  # noqa: TC003 - same
from typing import Literal, Protocol, get_args

from fedimeter.domain.analytics import Sample

__all__ = [
    "MAX_SERIES",
    "THEMES",
    "Format",
    "GraphOptions",
    "InstanceMetric",
    "InstanceSampleLike",
    "Metric",
    "SampleLike",
    "Series",
    "Theme",
    "ThemeName",
    "WeekLike",
]

Metric = Literal["followers", "following", "statuses"]
InstanceMetric = Literal["users", "statuses"]
Format = Literal["png", "svg"]
ThemeName = Literal["light", "dark"]

METRICS: tuple[Metric, ...] = get_args(Metric)
INSTANCE_METRICS: tuple[InstanceMetric, ...] = get_args(InstanceMetric)
MIN_WIDTH_PX, MAX_WIDTH_PX = 200, 4000
MIN_HEIGHT_PX, MAX_HEIGHT_PX = 150, 4000
MIN_SCALE, MAX_SCALE = 0.5, 4.0
MAX_PIXELS = 16_000_000  # a 4000 x 4000 PNG: about 64 MB of RGBA while it is drawn
BASE_DPI = 100.0  # at scale 1, one inch of figure is 100 pixels
#: The most lines a comparison draws: beyond that no colour and line style tells them apart.
MAX_SERIES = 20


SampleLike = Sample  # what the figures read: fedimeter.domain.analytics.Sample


class InstanceSampleLike(Protocol):
    """One measurement of an instance, as its ``/api/v1/instance`` reports it."""

    @property
    def taken_at(self) -> datetime:
        """When it was measured, timezone-aware."""

    @property
    def users(self) -> int:
        """Accounts registered on the instance."""

    @property
    def statuses(self) -> int:
        """Posts made on the instance, all time."""


class WeekLike(Protocol):
    """One week of an instance's activity, as ``/api/v1/instance/activity`` reports it."""

    @property
    def start(self) -> date:
        """The week's first day (Mastodon's weeks start on Monday, 00:00 UTC).

        A ``datetime`` must be timezone-aware; a ``date`` is taken as midnight UTC.
        """

    @property
    def statuses(self) -> int:
        """Posts made that week."""

    @property
    def logins(self) -> int:
        """Accounts that logged in that week."""

    @property
    def registrations(self) -> int:
        """Accounts registered that week."""

    @property
    def complete(self) -> bool:
        """False for the week still in progress, whose counts will grow."""


@dataclass(frozen=True, slots=True)
class Series:
    """One line of a comparison: a label (usually ``@user@domain``) and its timed values."""

    label: str
    points: Sequence[tuple[datetime, int]]


@dataclass(frozen=True, slots=True)
class GraphOptions:
    """Output format, theme and size.

    ``width_px`` and ``height_px`` are the size a page shows the image at. ``scale`` multiplies
    the pixels of a PNG (2.0 for high-density screens) without changing what it shows; an SVG
    is vector and states ``width_px`` x ``height_px`` whatever the scale.

    Raises:
        ValueError: an unknown format or theme, a size or scale out of range, or a PNG of more
            than 16 million pixels.
    """

    fmt: Format = "png"
    theme: ThemeName = "light"
    scale: float = 1.0
    width_px: int = 1000
    height_px: int = 500

    def __post_init__(self) -> None:
        """Refuse options no graph can be drawn with."""
        if self.fmt not in get_args(Format):
            raise ValueError(f"fmt must be 'png' or 'svg', not {self.fmt!r}")
        if self.theme not in get_args(ThemeName):
            raise ValueError(f"theme must be 'light' or 'dark', not {self.theme!r}")
        if not MIN_SCALE <= self.scale <= MAX_SCALE:
            raise ValueError(f"scale must be between {MIN_SCALE} and {MAX_SCALE}, not {self.scale}")
        if not MIN_WIDTH_PX <= self.width_px <= MAX_WIDTH_PX:
            raise ValueError(
                f"width_px must be {MIN_WIDTH_PX} to {MAX_WIDTH_PX}, not {self.width_px}"
            )
        if not MIN_HEIGHT_PX <= self.height_px <= MAX_HEIGHT_PX:
            raise ValueError(
                f"height_px must be {MIN_HEIGHT_PX} to {MAX_HEIGHT_PX}, not {self.height_px}"
            )
        width, height = self.pixel_size
        if width * height > MAX_PIXELS:
            raise ValueError(f"{width}x{height} pixels is more than {MAX_PIXELS:,}")

    @property
    def pixel_size(self) -> tuple[int, int]:
        """Width and height in pixels of the PNG: the stated size times ``scale``, rounded."""
        return round(self.width_px * self.scale), round(self.height_px * self.scale)

    @property
    def dpi(self) -> float:
        """Dots per inch of the figure: 100 times ``scale`` for PNG, 100 for SVG."""
        return BASE_DPI * self.scale if self.fmt == "png" else BASE_DPI

    @property
    def figure_inches(self) -> tuple[float, float]:
        """Figure size in inches, the same drawing at every scale.

        For PNG the size is nudged up by a hundredth of a pixel: Agg truncates the figure's
        pixel size, and ``1501 / 150 * 150`` may come out a hair under 1501.
        """
        if self.fmt == "svg":
            return self.width_px / BASE_DPI, self.height_px / BASE_DPI
        width, height = self.pixel_size
        return (width + 0.01) / self.dpi, (height + 0.01) / self.dpi


@dataclass(frozen=True, slots=True)
class Theme:
    """Colours of one theme; the palette is told apart by colour-blind readers too."""

    background: str
    text: str
    muted: str
    grid: str
    axis: str
    palette: tuple[str, ...]


THEMES: dict[ThemeName, Theme] = {
    # Okabe and Ito's colour-blind-safe colours, the darker half first on white...
    "light": Theme(
        background="#ffffff",
        text="#1f2328",
        muted="#59636e",
        grid="#e1e4e8",
        axis="#8c959f",
        palette=("#0072b2", "#d55e00", "#009e73", "#cc79a7", "#b8860b", "#56b4e9", "#555555"),
    ),
    # ...and their lighter relatives on a near-black background.
    "dark": Theme(
        background="#0d1117",
        text="#e6edf3",
        muted="#9ea7b3",
        grid="#262c36",
        axis="#5a636e",
        palette=("#56b4e9", "#f5a623", "#3ddc97", "#f28bc5", "#f0e442", "#ff8c5a", "#c9d1d9"),
    ),
}
