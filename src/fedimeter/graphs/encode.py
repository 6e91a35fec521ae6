"""Turn a figure into PNG or SVG bytes, the same bytes for the same figure every time."""

from __future__ import annotations

import io
import re
import threading
from typing import TYPE_CHECKING

from matplotlib import rc_context
from matplotlib.backends.backend_agg import FigureCanvasAgg

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from fedimeter.graphs.options import GraphOptions

__all__ = ["encode"]

SVG_HASH_SALT = "fedimeter"
# The SVG writer reads its id salt from the global rcParams, the one setting no artist carries:
# SVG encodes take turns so that a temporary value never leaks into a concurrent one.
_SVG_LOCK = threading.Lock()
_SVG_TAG = re.compile(rb"<svg\b[^>]*>")
_SIZE_ATTRIBUTE = re.compile(rb'\b(width|height)="[^"]*"')


def encode(fig: Figure, options: GraphOptions) -> bytes:
    """Draw ``fig`` with Agg (PNG) or the SVG writer, in the format ``options`` asks for.

    A PNG is exactly ``options.pixel_size``; an SVG states ``width_px`` x ``height_px`` pixels
    on its root element and carries no date, so the same figure gives the same bytes.

    Returns:
        The encoded image.
    """
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    if options.fmt == "png":
        fig.savefig(buffer, format="png", dpi=fig.dpi, facecolor=fig.get_facecolor())
        return buffer.getvalue()
    with _SVG_LOCK, rc_context({"svg.hashsalt": SVG_HASH_SALT}):
        fig.savefig(buffer, format="svg", facecolor=fig.get_facecolor(), metadata={"Date": None})
    return _state_pixel_size(buffer.getvalue(), options.width_px, options.height_px)


def _state_pixel_size(svg: bytes, width: int, height: int) -> bytes:
    """Replace the root's sizes in points (72 to the inch) with the size in pixels.

    The ``viewBox`` stays, so the drawing scales to the stated size exactly as the PNG shows.
    """
    tag = _SVG_TAG.search(svg)
    if tag is None:  # pragma: no cover - matplotlib always writes an <svg> root
        return svg
    sizes = {b"width": width, b"height": height}
    root = _SIZE_ATTRIBUTE.sub(
        lambda m: m.group(1) + b'="' + str(sizes[m.group(1)]).encode() + b'px"', tag.group()
    )
    return svg[: tag.start()] + root + svg[tag.end() :]
