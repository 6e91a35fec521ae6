"""Prometheus metrics of tracked hashtags: the collector over hand-made rows, storage, /metrics."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from apihelpers import api, api_settings
from fedimeter.config import Settings
from fedimeter.domain.models import InstanceAddress
from fedimeter.domain.tags import TagDay, TagReading, TrendingTag, parse_tag_name
from fedimeter.metrics import FedimeterCollector, MetricsSnapshot, TagRow, render_metrics, tag_rows
from fedimeter.storage.repository import Repository
from fedimeter.storage.tags import TagStore
from test_metrics import check_metrics, promtool  # noqa: F401 - promtool is a fixture

NOW = datetime(2026, 3, 9, 15, 0, tzinfo=UTC)
HOST = "social.example"
MARCH_8 = date(2026, 3, 8)


def registry_of(*rows: TagRow) -> CollectorRegistry:
    """A registry holding one collector over a snapshot of ``rows``."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FedimeterCollector(MetricsSnapshot(tags=list(rows))))
    return registry


def labels(tag: str = "caturday", instance: str = HOST) -> dict[str, str]:
    """The labels of a tag's series."""
    return {"tag": tag, "instance": instance}


CATURDAY = TagRow(
    tag="caturday",
    instance=HOST,
    day=MARCH_8,
    uses=1532,
    accounts=611,
    uses_so_far=96,
    consecutive_failures=0,
    read_at=NOW,
)


def test_a_tag_exports_its_newest_complete_day_and_its_day_so_far() -> None:
    """Uses and accounts of the complete day, its midnight, the uses so far, the last read."""
    registry = registry_of(CATURDAY)
    value = registry.get_sample_value
    assert value("fedimeter_tag_uses", labels()) == 1532
    assert value("fedimeter_tag_accounts", labels()) == 611
    assert value("fedimeter_tag_day_timestamp_seconds", labels()) == (
        datetime(2026, 3, 8, tzinfo=UTC).timestamp()
    )
    assert value("fedimeter_tag_uses_so_far", labels()) == 96
    assert value("fedimeter_tag_consecutive_failures", labels()) == 0
    assert value("fedimeter_tag_read_timestamp_seconds", labels()) == NOW.timestamp()


def test_a_failing_tag_says_so_and_keeps_its_last_day() -> None:
    """Failures in a row are a gauge of their own; the stored figures stay exported."""
    failing = TagRow(
        tag="caturday",
        instance="down.example",
        day=MARCH_8,
        uses=5,
        accounts=2,
        consecutive_failures=3,
        read_at=NOW - timedelta(days=3),
    )
    registry = registry_of(CATURDAY, failing)
    value = registry.get_sample_value
    assert value("fedimeter_tag_consecutive_failures", labels(instance="down.example")) == 3
    assert value("fedimeter_tag_uses", labels(instance="down.example")) == 5
    assert value("fedimeter_tag_uses_so_far", labels(instance="down.example")) is None
    failing_series = [
        sample
        for family in registry.collect()
        if family.name == "fedimeter_tag_consecutive_failures"
        for sample in family.samples
    ]
    assert len(failing_series) == 2  # one per tracked tag: count() of it counts them


def test_a_tag_without_a_complete_day_exports_no_figures() -> None:
    """No complete day yet: no uses, accounts or day (never a zero), but its reads are exported."""
    fresh = TagRow(tag="new", instance=HOST, uses_so_far=4, read_at=NOW)
    never = TagRow(tag="never", instance=HOST, consecutive_failures=1)
    registry = registry_of(fresh, never)
    value = registry.get_sample_value
    for name in ("fedimeter_tag_uses", "fedimeter_tag_accounts"):
        assert value(name, labels("new")) is None
        assert value(name, labels("never")) is None
    assert value("fedimeter_tag_day_timestamp_seconds", labels("new")) is None
    assert value("fedimeter_tag_uses_so_far", labels("new")) == 4
    assert value("fedimeter_tag_read_timestamp_seconds", labels("never")) is None
    assert value("fedimeter_tag_consecutive_failures", labels("never")) == 1


def test_no_tag_exports_empty_families() -> None:
    """Nothing tracked: the families are there (HELP and TYPE), without series."""
    registry = registry_of()
    names = {family.name: family for family in registry.collect()}
    for name in (
        "fedimeter_tag_uses",
        "fedimeter_tag_accounts",
        "fedimeter_tag_uses_so_far",
        "fedimeter_tag_consecutive_failures",
    ):
        assert names[name].samples == [], name


def test_promtool_accepts_the_tag_families(promtool: str) -> None:  # noqa: F811 - the fixture
    """Tag series next to everything else pass promtool's checks."""
    text = render_metrics(
        MetricsSnapshot(tags=[CATURDAY, TagRow(tag="café", instance="other.example:8443")])
    )
    check_metrics(promtool, text)


def _day(n: int, uses: int, *, complete: bool = True) -> TagDay:
    return TagDay(MARCH_8 - timedelta(days=n), uses, uses // 2, complete)


async def test_tag_rows_read_the_newest_days_and_the_failures(repo: Repository) -> None:
    """One row per tag and instance, labelled by the key, whatever its server calls the tag."""
    store = TagStore(repo.db)
    cat = await store.track(InstanceAddress(HOST), parse_tag_name("#Caturday"), NOW)
    await store.store(
        cat.id,
        TagReading(
            'Cat"urday\n# HELP', None, (_day(1, 30), _day(0, 40), _day(-1, 6, complete=False))
        ),
        NOW,
    )
    other = await store.track(InstanceAddress("other.example"), parse_tag_name("caturday"), NOW)
    await store.record_failure(other.id, "unavailable", "other.example answered 503", NOW)
    await store.record_failure(other.id, "unavailable", "other.example answered 503", NOW)
    rows = await tag_rows(repo)
    assert rows == [
        TagRow(
            tag="caturday",
            instance="other.example",
            consecutive_failures=2,
        ),
        TagRow(
            tag="caturday",
            instance=HOST,
            day=MARCH_8,
            uses=40,
            accounts=20,
            uses_so_far=6,
            consecutive_failures=0,
            read_at=NOW,
        ),
    ]


async def test_metrics_export_tracked_tags_but_never_trending_ones(
    repo: Repository,
    settings: Settings,
    promtool: str,  # noqa: F811 - the fixture
) -> None:
    """GET /metrics has the tracked tag; a trending list, named by a server, adds no series."""
    store = TagStore(repo.db)
    cat = await store.track(InstanceAddress(HOST), parse_tag_name("Caturday"), NOW)
    await store.store(
        cat.id, TagReading("Caturday", None, (_day(0, 40), _day(-1, 6, complete=False))), NOW
    )
    instance_id, _ = await store.track_trends(InstanceAddress(HOST), NOW)
    await store.store_trends(instance_id, NOW, [TrendingTag(1, "spam", NOW.date(), 9, 9)])
    with api(api_settings(settings), clock=lambda: NOW) as http:
        answer = http.get("/metrics")
    assert answer.status_code == 200
    families = {f.name: f for f in text_string_to_metric_families(answer.text)}
    [uses] = families["fedimeter_tag_uses"].samples
    assert (uses.labels, uses.value) == (labels(), 40)
    [so_far] = families["fedimeter_tag_uses_so_far"].samples
    assert so_far.value == 6
    assert "spam" not in answer.text
    check_metrics(promtool, answer.content)
