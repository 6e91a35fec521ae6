"""The pure side of instance measurement: figures, sources, and which values are believed."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fedimeter.domain.instances import (
    FIGURE_NAMES,
    MAX_FIGURE,
    SOURCE_NAMES,
    InstanceFigures,
    InstanceMeasurement,
    SourceResult,
    SourceStatus,
    judge,
    plausible,
)

_values = st.one_of(st.none(), st.integers(min_value=-(10**12), max_value=10**12))
_any_figures = st.builds(
    InstanceFigures,
    users=_values,
    statuses=_values,
    domains=_values,
    peers=_values,
    active_month=_values,
    active_halfyear=_values,
)
_counts = st.integers(min_value=0, max_value=MAX_FIGURE)


@st.composite
def _consistent_figures(draw: st.DrawFn) -> InstanceFigures:
    """Figures a healthy server could serve: in range, active_month <= halfyear <= users."""
    users = draw(_counts)
    month = draw(st.integers(min_value=0, max_value=users))
    halfyear = draw(st.integers(min_value=month, max_value=users))
    return InstanceFigures(
        users=users,
        statuses=draw(_counts),
        domains=draw(_counts),
        peers=draw(_counts),
        active_month=month,
        active_halfyear=halfyear,
    )


def _measurement(*statuses: SourceStatus) -> InstanceMeasurement:
    """A measurement whose sources answered with ``statuses``, in source order."""
    return InstanceMeasurement(
        taken_at=datetime(2026, 1, 5, 12, tzinfo=UTC),
        software=None,
        version=None,
        open_registrations=None,
        figures=InstanceFigures(),
        weeks=(),
        sources=tuple(
            SourceResult(source, status)
            for source, status in zip(SOURCE_NAMES, statuses, strict=False)
        ),
    )


def test_figure_names_are_the_fields_in_order() -> None:
    """FIGURE_NAMES lists InstanceFigures' fields in their order, so judge covers them all."""
    assert tuple(f.name for f in dataclasses.fields(InstanceFigures)) == FIGURE_NAMES


def test_source_names_are_the_five_sources() -> None:
    """The five sources, NodeInfo first."""
    assert SOURCE_NAMES == ("nodeinfo", "instance_v1", "instance_v2", "peers", "activity")


@given(_any_figures, st.one_of(st.none(), _any_figures))
def test_plausible_only_removes_values_and_says_why_for_each(
    figures: InstanceFigures, previous: InstanceFigures | None
) -> None:
    """Every output value is the input's or None, with one sentence per value removed."""
    cleaned, reasons = plausible(figures, previous)
    removed = [
        name for name in FIGURE_NAMES if figures.get(name) is not None and cleaned.get(name) is None
    ]
    assert all(cleaned.get(name) in {None, figures.get(name)} for name in FIGURE_NAMES)
    assert len(reasons) == len(removed)
    assert all(name in reason for name, reason in zip(removed, reasons, strict=True))


@given(_any_figures, st.one_of(st.none(), _any_figures))
def test_believed_figures_are_in_range_and_consistent(
    figures: InstanceFigures, previous: InstanceFigures | None
) -> None:
    """What survives is never negative or absurd, and activity never exceeds its bounds."""
    cleaned, _ = plausible(figures, previous)
    values = [cleaned.get(name) for name in FIGURE_NAMES]
    assert all(0 <= value <= MAX_FIGURE for value in values if value is not None)
    users, month, halfyear = cleaned.users, cleaned.active_month, cleaned.active_halfyear
    if users is not None and month is not None:
        assert month <= users
    if users is not None and halfyear is not None:
        assert halfyear <= users
    if month is not None and halfyear is not None:
        assert month <= halfyear


@given(_any_figures, st.one_of(st.none(), _any_figures))
def test_a_second_pass_rejects_nothing_more(
    figures: InstanceFigures, previous: InstanceFigures | None
) -> None:
    """Believed figures stay believed: plausible is idempotent."""
    cleaned, _ = plausible(figures, previous)
    assert plausible(cleaned, previous) == (cleaned, [])


@given(_consistent_figures())
def test_healthy_figures_without_history_are_all_believed(figures: InstanceFigures) -> None:
    """In range and consistent, with nothing to compare to: nothing is rejected."""
    assert plausible(figures, None) == (figures, [])


@given(_consistent_figures())
def test_figures_equal_to_the_previous_ones_are_all_believed(figures: InstanceFigures) -> None:
    """A server that serves the same healthy numbers twice is believed twice."""
    assert plausible(figures, figures) == (figures, [])


@given(st.integers(min_value=101, max_value=MAX_FIGURE))
def test_zero_after_a_large_value_is_not_believed(before: int) -> None:
    """Zeroed statistics (GoToSocial's instance-stats-mode) after a real count are unknown."""
    cleaned, [reason] = plausible(InstanceFigures(statuses=0), InstanceFigures(statuses=before))
    assert cleaned.statuses is None
    assert reason.startswith("statuses reads 0 where the previous measurement read")


@given(st.integers(min_value=0, max_value=100))
def test_zero_after_a_small_value_is_believed(before: int) -> None:
    """A server of a handful of accounts may well lose them all."""
    assert plausible(InstanceFigures(users=0), InstanceFigures(users=before))[1] == []


@pytest.mark.parametrize(
    ("before", "now", "believed"),
    [
        (5_000, 50, False),  # a hundredth
        (5_000, 51, True),  # a bit more than a hundredth
        (101, 1, False),
        (100, 1, True),  # not large before: small servers are noisy
        (200, 20_000, False),  # a hundred-fold, above the floor
        (200, 19_999, True),  # just under a hundred-fold
        (0, 10_001, False),  # from 0 counts as from 1
        (0, 10_000, True),  # a young server's relay or bot: up to the floor is believed
        (3, 9_000, True),
        (1_000_000, 1_000_001, True),
    ],
)
def test_jumps_against_the_previous_value(before: int, now: int, believed: bool) -> None:
    """Rises and falls by a hundred-fold are rejected, within the small-number allowances."""
    cleaned, reasons = plausible(InstanceFigures(peers=now), InstanceFigures(peers=before))
    assert (cleaned.peers == now) is believed
    assert len(reasons) == (0 if believed else 1)


def test_unknown_previous_values_compare_with_nothing() -> None:
    """A figure unknown last time (None) is judged on its own only."""
    cleaned, reasons = plausible(
        InstanceFigures(users=50_000), InstanceFigures(users=None, statuses=3)
    )
    assert (cleaned.users, reasons) == (50_000, [])


@pytest.mark.parametrize(
    ("figures", "rejected"),
    [
        (InstanceFigures(users=-1), "users"),
        (InstanceFigures(domains=MAX_FIGURE + 1), "domains"),
        (InstanceFigures(users=10, active_month=11), "active_month"),
        (InstanceFigures(users=10, active_halfyear=11), "active_halfyear"),
        (InstanceFigures(active_month=5, active_halfyear=4), "active_halfyear"),
    ],
)
def test_values_impossible_on_their_own_are_rejected(
    figures: InstanceFigures, rejected: str
) -> None:
    """Negative, absurd and self-contradicting values are unknown even without history."""
    assert list(judge(figures, None)) == [rejected]


def test_activity_is_checked_against_users_that_were_believed() -> None:
    """A rejected user count does not drag a believable active_month down with it."""
    cleaned, reasons = plausible(
        InstanceFigures(users=-5, active_month=3), InstanceFigures(active_month=3)
    )
    assert (cleaned.users, cleaned.active_month, len(reasons)) == (None, 3, 1)


def test_messages_are_readable_sentences() -> None:
    """Each reason names the figure and both values, with thousands separators."""
    _, [reason] = plausible(InstanceFigures(users=12), InstanceFigures(users=5_000))
    assert reason == "users fell from 5,000 to 12, a hundredth or less, since last time"


@pytest.mark.parametrize(
    ("statuses", "up"),
    [
        (("ok", "missing", "missing", "missing", "missing"), True),
        (("failed", "denied", "denied", "denied", "implausible"), True),
        (("missing", "denied", "failed", "missing", "failed"), False),
        ((), False),
    ],
)
def test_up_means_some_source_answered(statuses: tuple[SourceStatus, ...], up: bool) -> None:
    """An instance is up when a source answered ok or with values we did not believe."""
    assert _measurement(*statuses).up is up
