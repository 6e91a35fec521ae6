"""Alert rules in the settings: the config file, the variable, defaults, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fedimeter.cli import app
from fedimeter.config import load_settings
from fedimeter.domain.alert_rules import AlertRule, parse_rules
from fedimeter.errors import ConfigError

TOML = """
[[alerts]]
kind = "drop"
metric = "followers"
percent = 5
window = "1d"

[[alerts]]
name = "instance-down"
kind = "failing"
scope = "instances"
rounds = 3
only = ["Example.Social", "https://other.example:8443/"]

[[alerts]]
kind = "milestone"
values = [1000, 5000]
round_numbers = true
only = ["@Alice@Example.Social", "https://example.social/@bob"]
"""


def test_no_rules_by_default() -> None:
    """Alerts are off unless configured."""
    assert load_settings().alerts == []
    assert load_settings().alert_to == []


def test_rules_from_the_config_file(tmp_path: Path) -> None:
    """[[alerts]] tables become rules, normalised, with names built when not given."""
    path = tmp_path / "fedimeter.toml"
    path.write_text(TOML)
    drop, down, milestone = load_settings(path).alerts
    assert drop == AlertRule(
        name="drop-accounts-followers-5%-1d",
        kind="drop",
        scope="accounts",
        metric="followers",
        percent=5.0,
        window=1,
    )
    assert (down.name, down.kind, down.rounds, down.metric) == ("instance-down", "failing", 3, None)
    assert down.only == ("example.social", "other.example:8443")
    assert milestone.values == (1000, 5000)
    assert milestone.round_numbers is True
    assert milestone.only == ("alice@example.social", "bob@example.social")


def test_rules_from_the_variable_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    """FEDIMETER_ALERTS holds a JSON list; jump is another name for rise; defaults apply."""
    rules = [
        {"kind": "jump", "scope": "instances", "percent": 50},
        {"kind": "failing"},
        {"kind": "drop", "count": 100, "window": "2w", "metric": "statuses"},
    ]
    monkeypatch.setenv("FEDIMETER_ALERTS", json.dumps(rules))
    jump, failing, drop = load_settings().alerts
    assert (jump.kind, jump.metric, jump.percent) == ("rise", "users", 50.0)
    assert (failing.scope, failing.rounds) == ("accounts", 3)
    assert (drop.window, drop.count, drop.percent) == (14, 100, None)


def test_the_variable_wins_over_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Like every setting, the variable replaces the file's rules."""
    path = tmp_path / "fedimeter.toml"
    path.write_text(TOML)
    monkeypatch.setenv("FEDIMETER_ALERTS", '[{"kind": "failing", "rounds": 5}]')
    [only] = load_settings(path).alerts
    assert only.rounds == 5


def test_rules_survive_a_round_trip_through_the_settings() -> None:
    """Settings rebuilt from their own dump (as tests and the demo do) keep the same rules."""
    settings = load_settings(
        alerts=[{"kind": "milestone", "values": [10], "only": ["@a@example.org"]}],
    )
    again = load_settings(**settings.model_dump())
    assert again.alerts == settings.alerts


def test_alert_channels_must_be_configured() -> None:
    """alert_to names a channel that has no settings: refused, like deliver_to."""
    with pytest.raises(ConfigError, match="alert_to names email, which is not configured"):
        load_settings(alert_to="email")
    settings = load_settings(alert_to="webhook", webhook_url="https://hooks.example.org/x")
    assert settings.alert_to == ["webhook"]


BAD = [
    ('[{"kind": "drop"}]', "rule 1 (drop): a drop rule needs percent, count or both"),
    ('[{"kind": "fall", "percent": 5}]', "rule 1 (fall): unknown kind 'fall'"),
    ('[{"kind": "drop", "percent": 5, "treshold": 3}]', "rule 1 (drop): unknown key 'treshold'"),
    ('[{"kind": "drop", "percent": 0}]', "percent must be above 0"),
    ('[{"kind": "drop", "percent": 100}]', "percent must be below 100 for a drop"),
    ('[{"kind": "drop", "percent": "5%"}]', "percent must be a number, not '5%'"),
    ('[{"kind": "drop", "count": 2.5}]', "count must be a whole number"),
    ('[{"kind": "drop", "percent": 5, "window": "3 months"}]', "window must be whole days"),
    ('[{"kind": "drop", "percent": 5, "window": "120d"}]', "window must be from 1 to 90 days"),
    (
        '[{"kind": "drop", "percent": 5, "scope": "instances", "metric": "followers"}]',
        "instances have no metric 'followers': use users, statuses, domains, peers",
    ),
    (
        '[{"kind": "drop", "percent": 5, "scope": "hashtags"}]',
        "unknown scope 'hashtags': use accounts, instances or tags",
    ),
    (
        '[{"kind": "drop", "percent": 5, "scope": "tags", "metric": "followers"}]',
        "rule 1 (drop): tags have no metric 'followers': use uses, accounts",
    ),
    (
        '[{"kind": "milestone", "values": [100], "scope": "tags", "only": ["#cat-day"]}]',
        "only must list hashtags such as #caturday",
    ),
    (
        '[{"kind": "failing", "scope": "tags", "only": ["#caturday@https://x.org/a/b"]}]',
        "only must list hashtags",
    ),
    ('[{"kind": "failing", "percent": 5}]', "percent means nothing for a failing rule"),
    ('[{"kind": "failing", "metric": "followers"}]', "a failing rule watches rounds"),
    ('[{"kind": "failing", "rounds": 0}]', "rounds must be a whole number from 1"),
    ('[{"kind": "milestone"}]', "a milestone rule needs values, round_numbers = true, or both"),
    ('[{"kind": "milestone", "values": [0]}]', "values must be whole numbers from 1"),
    ('[{"kind": "drop", "percent": 5, "rounds": 3}]', "rounds means nothing for a drop rule"),
    ('[{"kind": "drop", "percent": 5, "only": ["not a handle"]}]', "only must list handles"),
    (
        '[{"kind": "failing", "scope": "instances", "only": ["https://x.org/some/page"]}]',
        "only must list hosts",
    ),
    ('[{"kind": "failing"}, {"kind": "failing"}]', "rules 1 and 2 are both named"),
    ('[{"kind": "drop", "percent": 5', "not a JSON list of rules"),
    ('"drop 5%"', "expected a list of rules"),
    ('["drop"]', "rule 1: a rule is a table of keys"),
]


@pytest.mark.parametrize(("value", "message"), BAD, ids=[m for _, m in BAD])
def test_bad_rules_are_one_line_errors(
    value: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each mistake is refused with one line naming the setting, the rule and the problem."""
    monkeypatch.setenv("FEDIMETER_ALERTS", value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    text = str(caught.value)
    assert text.startswith("invalid setting alerts: ")
    assert message in text
    assert "\n" not in text


def test_a_bad_rule_in_the_file_names_the_file(tmp_path: Path) -> None:
    """The error says which file and which rule."""
    path = tmp_path / "fedimeter.toml"
    path.write_text('[[alerts]]\nkind = "drop"\n\n[[alerts]]\nkind = "drop"\ncount = -1\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert str(caught.value) == (
        f"invalid setting alerts (from {path}): rule 1 (drop): a drop rule needs percent,"
        " count or both"
    )


def test_the_cli_says_it_in_one_line_with_exit_code_3(monkeypatch: pytest.MonkeyPatch) -> None:
    """`fedimeter alerts check` with a bad rule: one line on stderr, exit 3, no traceback."""
    monkeypatch.setenv("FEDIMETER_ALERTS", '[{"kind": "milestone", "values": ["1k"]}]')
    result = CliRunner().invoke(app, ["alerts", "check"])
    assert result.exit_code == 3
    assert result.stderr == (
        "error: invalid setting alerts: rule 1 (milestone): values must be whole numbers from 1"
        " to 1,000,000,000,000, not '1k'\n"
    )


def test_a_handle_in_a_tags_rule_is_told_as_a_handle() -> None:
    """@alice@host among a tags rule's only: said to be a handle, not "an empty hashtag"."""
    rule = {"kind": "rise", "percent": 100, "scope": "tags", "only": ["@alice@example.social"]}
    with pytest.raises(ValueError, match="rule 1") as caught:
        parse_rules([rule])
    text = str(caught.value)
    assert "the name is empty" not in text
    assert "only names '@alice@example.social', an account handle: a tags rule names" in text
    assert "#caturday@example.social, or hosts" in text


def test_alerts_that_are_no_list_say_what_they_must_be(tmp_path: Path) -> None:
    """alerts = "yes" in the file: a list of [[alerts]] tables, not "not a JSON list"."""
    path = tmp_path / "fedimeter.toml"
    path.write_text('alerts = "yes"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    text = str(caught.value)
    assert "not a JSON list" not in text
    assert "alerts must be a list of rules ([[alerts]] tables" in text
    assert text.endswith("not 'yes'")
