"""The documentation keeps up with the code."""

from __future__ import annotations

from pathlib import Path

from fedimeter.config import Settings

DOCS = Path(__file__).parent.parent / "docs"


def test_every_setting_is_documented() -> None:
    """docs/configuration.md has a row for every setting and its variable."""
    text = (DOCS / "configuration.md").read_text()
    missing = [
        name
        for name in Settings.model_fields
        if f"`{name}`" not in text or f"`FEDIMETER_{name.upper()}`" not in text
    ]
    assert missing == []
