"""The HTTP interface: ``/api/v1``, mastodon-meter's routes, health checks."""

from fedimeter.api.app import create_app

__all__ = ["create_app"]
