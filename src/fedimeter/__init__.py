"""fedimeter: analytics and reporting for Mastodon and the rest of the fediverse."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("fedimeter")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"

__all__ = ["__version__"]
