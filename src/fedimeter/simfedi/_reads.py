"""The hashtag read endpoints: ``GET /api/v1/tags/:name`` and ``GET /api/v1/trends/tags``.

They follow Mastodon's ``Api::V1::TagsController`` (a name that is not a hashtag answers 404
``{"error":"Not Found"}``; a valid name nobody used answers an unsaved tag: id ``""``, the name
as asked, zeros) and ``Api::V1::Trends::TagsController`` (``limit`` 10 by default, at most 20,
``offset``; ``[]`` when the admin turned trends off; ``Link`` to the next page when this one is
full and to the previous one when ``offset`` exceeds ``limit``).
"""

from __future__ import annotations

import http
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from fedimeter.simfedi import _entities as entities
from fedimeter.simfedi._params import last, limit_param, link_header, ruby_to_i, to_query
from fedimeter.simfedi._replies import Reply, error_reply, json_reply
from fedimeter.simfedi._tags import SimTag, normalize_hashtag, valid_hashtag

if TYPE_CHECKING:
    from fedimeter.simfedi._accounts import SimAccount
    from fedimeter.simfedi._instance import SimInstance
    from fedimeter.simfedi._params import Query

__all__ = ["DEFAULT_TAGS_LIMIT", "show_tag", "trending_tags"]

#: Trending tags per page without ``limit`` (Mastodon's DEFAULT_TAGS_LIMIT); at most twice it.
DEFAULT_TAGS_LIMIT = 10
# ApplicationController#not_found renders Rack's name of the status, not "Record not found".
_NOT_A_TAG = "Not Found"
# Mastodon deprecated /api/v1/trends for /api/v1/trends/tags on 2022-03-30.
_TRENDS_DEPRECATED = ("Deprecation", f"@{int(datetime(2022, 3, 30, tzinfo=UTC).timestamp())}")


def show_tag(instance: SimInstance, name: str, viewer: SimAccount | None, now: datetime) -> Reply:
    """``GET /api/v1/tags/:name`` seen by ``viewer`` (None: no valid token) at ``now``."""
    if not valid_hashtag(name):
        return error_reply(http.HTTPStatus.NOT_FOUND, _NOT_A_TAG)
    tags = instance.tags
    # An unknown tag is Tag.new: no id (nil.to_s), the name as asked, no usage.
    tag = tags.find(name) or SimTag(id="", name=name, normalized=normalize_hashtag(name))
    history = tags.history(tag, now.astimezone(UTC).date())
    return json_reply(entities.tag_json(tag, history, instance, viewer=viewer is not None))


def trending_tags(
    instance: SimInstance,
    query: Query,
    viewer: SimAccount | None,
    now: datetime,
    *,
    alias: bool,
) -> Reply:
    """``GET /api/v1/trends/tags`` (or its older ``alias`` ``/api/v1/trends``) at ``now``."""
    limit = limit_param(query, DEFAULT_TAGS_LIMIT)
    offset = ruby_to_i(last(query, "offset"))
    trending = instance.tags.trending() if instance.trends_enabled else []
    start = max(0, offset)
    page = trending[start : start + limit]
    today = now.astimezone(UTC).date()
    body = [
        entities.tag_json(
            tag, instance.tags.history(tag, today), instance, viewer=viewer is not None
        )
        for tag in page
    ]
    base = f"{instance.base_url}/api/v1/trends/tags"
    kept = {"limit": value} if (value := last(query, "limit")) is not None else {}
    # As Mastodon: a next page whenever this one is full, a previous one only past one page.
    full = len(page) == limit
    next_url = f"{base}?{to_query({**kept, 'offset': str(offset + limit)})}" if full else None
    prev_url = (
        f"{base}?{to_query({**kept, 'offset': str(offset - limit)})}" if offset > limit else None
    )
    headers = link_header(next_url, prev_url)
    if alias and instance.supports("deprecation_header"):
        headers = (*headers, _TRENDS_DEPRECATED)
    return json_reply(body, headers=headers)
