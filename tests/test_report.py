"""Report computations: changes, rates, milestones, silence, sorting (pure, no I/O)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fedimeter.domain.analytics import Change
from fedimeter.domain.report import (
    AccountHistory,
    AccountLine,
    Movement,
    Report,
    SeriesPoint,
    SortKey,
    build_report,
    follower_trend,
    next_milestone,
)
from fedimeter.storage.records import SampleRecord

SINCE = datetime(2026, 3, 1, tzinfo=UTC)
UNTIL = datetime(2026, 4, 1, tzinfo=UTC)
NOW = datetime(2026, 4, 1, 3, tzinfo=UTC)


def at(month: int, day: int, hour: int = 12, minute: int = 0) -> datetime:
    """A moment in 2026, UTC."""
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def sample(
    taken_at: datetime,
    followers: int,
    following: int = 50,
    statuses: int = 100,
    last_status_at: date | None = date(2026, 3, 31),
) -> SampleRecord:
    """A stored sample (the real record type, so the protocol is checked against it)."""
    return SampleRecord(1, taken_at, followers, following, statuses, last_status_at, None)


def report(*histories: AccountHistory, **options: object) -> Report:
    """A report over March 2026, generated on 1 April at 03:00."""
    return build_report(histories, since=SINCE, until=UNTIL, now=NOW, **options)  # type: ignore[arg-type]


def only(*samples: SampleRecord, handle: str = "alice@example.org") -> AccountLine:
    """The single line of a report on one account."""
    (line,) = report(AccountHistory(handle, samples)).accounts
    return line


def march_daily() -> list[SampleRecord]:
    """A base sample on 28 Feb (1000 followers) then one a day in March, +10 followers a day."""
    base = sample(at(2, 28), 1000, statuses=100)
    return [base] + [sample(at(3, d), 1000 + 10 * d, statuses=100 + 2 * d) for d in range(1, 32)]


def test_a_plain_month_of_daily_samples() -> None:
    """Change from the 28 Feb sample to 31 Mar; rates over the 31 days between them."""
    line = only(*march_daily())
    assert line.measured_at == at(3, 31)
    assert line.base_at == at(2, 28)
    assert not line.partial
    assert line.followers == Movement(1000, 1310, 310, 31.0, 10.0)
    assert line.following == Movement(50, 50, 0, 0.0, 0.0)
    assert line.statuses == Movement(100, 162, 62, 62.0, 2.0)
    assert line.change == Change(310, 0, 62)


def test_the_milestone_date_follows_the_trend() -> None:
    """10 a day from 1,310 reaches 2,500 in 119 days: 29 July, counted from until."""
    line = only(*march_daily())
    assert line.trend_per_day == pytest.approx(10.0)
    assert line.milestone is not None
    assert line.milestone.followers == 2500
    assert line.milestone.eta == datetime(2026, 7, 29, tzinfo=UTC)


def test_gaps_use_the_real_elapsed_time() -> None:
    """With samples on 20 Feb, 1, 10 and 25 Mar, rates are over 33 days, the trend over 15."""
    line = only(
        sample(at(2, 20), 500),
        sample(at(3, 1), 510),
        sample(at(3, 10), 550),
        sample(at(3, 25), 600),
    )
    assert line.followers is not None
    assert line.followers.change == 100
    assert line.followers.per_day == pytest.approx(100 / 33)
    # Only 10 and 25 March are in the 30 days before until: 50 over 15 days.
    assert line.trend_per_day == pytest.approx(50 / 15)
    assert line.milestone is not None
    # 400 more at 10/3 a day: 120 days after 1 April.
    assert line.milestone.eta == datetime(2026, 7, 30, tzinfo=UTC)


def test_an_account_added_during_the_period_is_partial() -> None:
    """No sample before since: the change starts at its first sample in the period."""
    line = only(sample(at(3, 10), 20), sample(at(3, 15), 25), sample(at(3, 20), 30))
    assert line.partial
    assert line.base_at == at(3, 10)
    assert line.followers == Movement(20, 30, 10, 50.0, 1.0)


def test_an_account_with_one_sample_in_the_period() -> None:
    """One sample: no change, no rate, no trend; the milestone has no date."""
    line = only(sample(at(3, 15), 7))
    assert line.partial
    assert line.followers == Movement(7, 7, 0, 0.0, None)
    assert line.trend_per_day is None
    assert line.milestone is not None
    assert line.milestone.followers == 10
    assert line.milestone.eta is None


def test_an_account_last_measured_before_the_period() -> None:
    """Its one old sample is both the base and the current state: not partial."""
    line = only(sample(at(2, 1), 40))
    assert not line.partial
    assert line.measured_at == at(2, 1)
    assert line.followers == Movement(40, 40, 0, 0.0, None)


def test_the_series_runs_from_base_to_current() -> None:
    """Older samples than the base and samples after until are left out of the chart."""
    line = only(
        sample(at(4, 2), 999, statuses=999),
        sample(at(3, 10), 550, statuses=130),
        sample(at(2, 10), 400, statuses=90),
        sample(at(2, 20), 500, statuses=100),
        sample(at(3, 25), 600, statuses=150),
    )
    assert line.series == (
        SeriesPoint(at(2, 20), 500, 100),
        SeriesPoint(at(3, 10), 550, 130),
        SeriesPoint(at(3, 25), 600, 150),
    )
    assert line.followers is not None
    assert (line.series[0].followers, line.series[-1].followers) == (
        line.followers.start,
        line.followers.current,
    )


def test_a_partial_series_starts_inside_the_period() -> None:
    """Added mid-period: the series starts at the first sample in the period."""
    line = only(sample(at(3, 10), 20), sample(at(3, 15), 25))
    assert [p.taken_at for p in line.series] == [at(3, 10), at(3, 15)]


def test_a_sample_at_since_starts_the_series() -> None:
    """A sample exactly at since is the base, so the series starts with it."""
    line = only(sample(at(2, 27), 5), sample(SINCE, 10), sample(at(3, 2), 12))
    assert [p.followers for p in line.series] == [10, 12]


def test_one_old_sample_is_a_one_point_series() -> None:
    """Last measured before the period: base and current are one sample, one point."""
    assert only(sample(at(2, 1), 40)).series == (SeriesPoint(at(2, 1), 40, 100),)


@pytest.mark.parametrize(
    "samples",
    [(), (sample(at(4, 2), 10),)],
    ids=["no samples", "only after until"],
)
def test_an_account_without_data(samples: tuple[SampleRecord, ...]) -> None:
    """No sample at or before until: a no-data line, not silent, out of the totals."""
    result = report(
        AccountHistory("nobody@example.org", samples),
        AccountHistory("alice@example.org", [sample(at(3, 15), 7)]),
    )
    line = next(x for x in result.accounts if x.handle == "nobody@example.org")
    assert not line.has_data
    assert line.series == ()
    assert line.change is None
    assert line.milestone is None
    assert not line.silent
    assert (result.account_count, result.accounts_with_data, result.total_followers) == (2, 1, 7)


def test_a_zero_base_has_no_percent() -> None:
    """From 0 followers, the change is known but a percentage is not."""
    line = only(sample(at(2, 28), 0, following=0), sample(at(3, 30), 5, following=3))
    assert line.followers == Movement(0, 5, 5, None, 5 / 30)
    assert line.following is not None
    assert line.following.percent is None


def test_falling_followers_have_no_milestone_date() -> None:
    """A falling trend never reaches the next milestone."""
    line = only(*(sample(at(3, d), 300 - d) for d in range(1, 32)))
    assert line.trend_per_day == pytest.approx(-1.0)
    assert line.followers is not None
    assert line.followers.change == -30
    assert line.milestone is not None
    assert line.milestone.followers == 500
    assert line.milestone.eta is None


def test_a_flat_trend_has_no_milestone_date() -> None:
    """Zero slope: never."""
    line = only(sample(at(3, 2), 42), sample(at(3, 30), 42))
    assert line.trend_per_day == 0
    assert line.milestone is not None
    assert line.milestone.eta is None


def test_a_projection_beyond_ten_years_is_dropped() -> None:
    """+1 in 29 days needs over 4,000 days for the next 149: no date."""
    line = only(sample(at(3, 2), 100), sample(at(3, 31), 101))
    assert line.trend_per_day == pytest.approx(1 / 29)
    assert line.milestone is not None
    assert line.milestone.eta is None


def test_a_trend_needs_a_day_of_samples() -> None:
    """Samples closer than a day give no trend."""
    samples = [sample(at(3, 31, 0), 10), sample(at(3, 31, 23, 59), 20)]
    assert follower_trend(samples, UNTIL) is None
    samples.append(sample(at(3, 30, 23, 59), 9))
    assert follower_trend(samples, UNTIL) is not None


def test_rates_need_an_hour() -> None:
    """Under an hour between base and current, the per-day rate is None."""
    line = only(
        sample(SINCE - timedelta(minutes=30), 10), sample(SINCE + timedelta(minutes=29), 11)
    )
    assert line.followers is not None
    assert line.followers.per_day is None
    line = only(
        sample(SINCE - timedelta(minutes=30), 10), sample(SINCE + timedelta(minutes=30), 11)
    )
    assert line.followers is not None
    assert line.followers.per_day == 24.0


def test_a_sample_exactly_at_since_is_the_base() -> None:
    """``since`` is inclusive for the base: the account is not partial."""
    line = only(sample(SINCE, 10), sample(at(3, 2), 12))
    assert not line.partial
    assert line.base_at == SINCE


def test_samples_after_until_are_ignored() -> None:
    """The current state is the latest sample at or before until."""
    line = only(sample(at(3, 1), 10), sample(UNTIL, 12), sample(at(4, 1, 1), 99))
    assert line.measured_at == UNTIL
    assert line.followers is not None
    assert line.followers.current == 12


def test_samples_are_sorted_before_use() -> None:
    """Samples given out of order give the same line."""
    samples = march_daily()
    assert only(*reversed(samples)) == only(*samples)


def test_a_leading_at_sign_is_dropped() -> None:
    """``@alice@example.org`` is stored as ``alice@example.org``."""
    assert only(sample(at(3, 1), 1), handle="@alice@example.org").handle == "alice@example.org"


@pytest.mark.parametrize(
    ("last_post", "days", "silent"),
    [
        (date(2026, 3, 2), 30, False),
        (date(2026, 3, 1), 31, True),
        (None, None, True),
        (date(2026, 4, 5), 0, False),
    ],
    ids=["30 days: not yet", "31 days: silent", "never posted", "in the future"],
)
def test_silence_at_the_boundary(last_post: date | None, days: int | None, silent: bool) -> None:
    """Silent after more than 30 whole days before now's day; never posting is silent."""
    result = report(AccountHistory("a@x.org", [sample(at(3, 31), 5, last_status_at=last_post)]))
    (line,) = result.accounts
    assert (line.days_since_post, line.silent) == (days, silent)
    assert result.silent == ((line,) if silent else ())


def test_silence_follows_silent_after_days() -> None:
    """A shorter threshold makes the same account silent."""
    history = AccountHistory("a@x.org", [sample(at(3, 31), 5, last_status_at=date(2026, 3, 20))])
    assert not report(history).accounts[0].silent
    assert report(history, silent_after_days=10).accounts[0].silent


def test_the_silent_list_puts_the_longest_silence_first() -> None:
    """Never posted, then most days, then by handle; it ignores top."""
    result = report(
        AccountHistory("b@x.org", [sample(at(3, 31), 5, last_status_at=date(2026, 1, 1))]),
        AccountHistory("a@x.org", [sample(at(3, 31), 5, last_status_at=date(2026, 1, 1))]),
        AccountHistory("c@x.org", [sample(at(3, 31), 5, last_status_at=date(2026, 2, 1))]),
        AccountHistory("d@x.org", [sample(at(3, 31), 5, last_status_at=None)]),
        AccountHistory("e@x.org", [sample(at(3, 31), 5)]),
        top=1,
    )
    assert [line.handle for line in result.silent] == ["d@x.org", "a@x.org", "b@x.org", "c@x.org"]


def growth(handle: str, start: int, end: int) -> AccountHistory:
    """An account going from ``start`` to ``end`` followers over March."""
    return AccountHistory(handle, [sample(at(2, 28), start), sample(at(3, 31), end)])


SORTABLE = (
    growth("carol@x.org", 100, 110),  # +10, 110
    growth("Bob@x.org", 500, 505),  # +5, 505
    growth("alice@x.org", 10, 20),  # +10, 20
    AccountHistory("aaron@x.org", []),  # no data
    growth("dave@x.org", 505, 505),  # 0, 505
)


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("growth", ["alice", "carol", "Bob", "dave", "aaron"]),
        ("followers", ["Bob", "dave", "carol", "alice", "aaron"]),
        ("name", ["aaron", "alice", "Bob", "carol", "dave"]),
    ],
)
def test_sorting_breaks_ties_by_handle(sort: SortKey, expected: list[str]) -> None:
    """Growth and followers descending, names case-insensitive; no-data accounts last."""
    result = report(*SORTABLE, sort=sort)
    assert [line.handle.split("@")[0] for line in result.accounts] == expected


def test_top_cuts_after_sorting_but_totals_cover_all() -> None:
    """top=2 shows the two best; totals count all five accounts."""
    result = report(*SORTABLE, top=2)
    assert [line.handle for line in result.accounts] == ["alice@x.org", "carol@x.org"]
    assert result.account_count == 5
    assert result.accounts_with_data == 4
    assert result.total_followers == 110 + 505 + 20 + 505
    assert result.total_followers_change == 25
    assert len(report(*SORTABLE, top=10).accounts) == 5


def test_the_report_keeps_its_period_and_generation_time() -> None:
    """since, until, generated_at (= now) and options are on the report, in UTC."""
    plus_two = datetime(2026, 4, 1, 5, tzinfo=UTC).astimezone(
        datetime(2026, 1, 1).astimezone().tzinfo
    )
    result = build_report([], since=SINCE, until=UNTIL, now=plus_two, sort="name")
    assert (result.since, result.until, result.generated_at) == (SINCE, UNTIL, plus_two)
    assert result.generated_at.tzinfo is UTC
    assert (result.sort, result.silent_after_days, result.accounts) == ("name", 30, ())


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"since": datetime(2026, 3, 1)}, "naive"),  # noqa: DTZ001 - the point of the test
        ({"since": UNTIL}, "before until"),
        ({"top": 0}, "top"),
        ({"silent_after_days": -1}, "silent_after_days"),
        ({"sort": "size"}, "unknown sort"),
    ],
)
def test_invalid_options_raise(options: dict[str, object], message: str) -> None:
    """Naive times, an empty period, top < 1, negative days and unknown sorts are refused."""
    arguments: dict[str, object] = {"since": SINCE, "until": UNTIL, "now": NOW} | options
    with pytest.raises(ValueError, match=message):
        build_report([], **arguments)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("followers", "milestone"),
    [
        (0, 10),
        (9, 10),
        (10, 25),
        (24, 25),
        (25, 50),
        (50, 100),
        (99, 100),
        (100, 250),
        (1310, 2500),
        (9999, 10_000),
        (10_000, 25_000),
        (250_000, 500_000),
        (999_999_999, 1_000_000_000),
    ],
)
def test_next_milestone(followers: int, milestone: int) -> None:
    """10, 25, 50 times each power of ten: the first one above the count."""
    assert next_milestone(followers) == milestone


@given(
    base=st.integers(0, 10**7),
    steps=st.lists(
        st.tuples(st.integers(1, 3 * 24 * 60), st.integers(0, 10**5)), min_size=1, max_size=40
    ),
    falling=st.booleans(),
    base_offset=st.integers(0, 10 * 24 * 60),
)
def test_monotone_series(
    base: int, steps: list[tuple[int, int]], falling: bool, base_offset: int
) -> None:
    """Any monotone series: change = last - base, and a milestone date lies after until.

    The base is the latest sample at or before since (a step may land exactly on it).
    """
    taken_at = SINCE - timedelta(minutes=base_offset)
    followers = base
    samples = [sample(taken_at, followers)]
    for minutes, amount in steps:
        moment = taken_at + timedelta(minutes=minutes)
        if moment > UNTIL:
            break
        taken_at = moment
        followers = max(0, followers - amount) if falling else followers + amount
        samples.append(sample(taken_at, followers))
    line = only(*samples)
    start = [s.followers for s in samples if s.taken_at <= SINCE][-1]
    assert line.followers is not None
    assert line.followers.change == samples[-1].followers - start
    assert line.followers.current == samples[-1].followers
    assert line.milestone is not None
    assert line.milestone.followers > samples[-1].followers
    if line.milestone.eta is not None:
        assert not falling
        assert line.milestone.eta > UNTIL
