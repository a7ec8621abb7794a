"""AlertSettings: defaults, environment variables, refusals, no password in repr."""

from __future__ import annotations

import pytest

from alerts.config import AlertSettings, parse_level_durations, settings_table
from lifewatch.levels import Level
from lifewatch.settings import Settings, SettingsError


def test_defaults_follow_the_main_settings(tmp_path) -> None:  # noqa: ANN001
    st = AlertSettings.from_settings(Settings(state_dir=tmp_path, demo=True, city_file="c.yaml"), environ={})
    assert st.db_url == f"sqlite:///{tmp_path / 'alerts.sqlite'}"
    assert (st.demo, st.city_file, st.api_host, st.api_port) == (True, "c.yaml", "127.0.0.1", 18080)
    assert st.ack_sla == {Level.RED: 300.0, Level.ORANGE: 900.0, Level.YELLOW: 3600.0, Level.BLUE: 14400.0}
    assert st.resolve_sla == {Level.RED: 7200.0, Level.ORANGE: 28800.0, Level.YELLOW: 86400.0, Level.BLUE: 259200.0}
    assert st.auto_close == frozenset({Level.YELLOW, Level.BLUE})


def test_environment_variables() -> None:
    env = {
        "LIFEWATCH_ALERTS_DB_URL": "postgresql://lw:s3cret@db:5432/lifewatch",
        "LIFEWATCH_ALERTS_ACK_SLA": "red=2m, orange=10m",
        "LIFEWATCH_ALERTS_RESOLVE_SLA": "12h",
        "LIFEWATCH_ALERTS_REMINDER_INTERVAL": "blue=2h",
        "LIFEWATCH_ALERTS_AUTO_CLOSE": "blue,IV",
        "LIFEWATCH_ALERTS_REOPEN_COOLDOWN": "0",
        "LIFEWATCH_ALERTS_INCIDENT_WINDOW": "1h",
        "LIFEWATCH_ALERTS_TICK_INTERVAL": "5s",
        "LIFEWATCH_ALERTS_AUTO_MIGRATE": "no",
        "LIFEWATCH_API_HOST": "0.0.0.0",
        "LIFEWATCH_API_PORT": "9000",
    }
    st = AlertSettings.from_settings(Settings(), environ=env)
    assert st.ack_sla[Level.RED] == 120 and st.ack_sla[Level.ORANGE] == 600 and st.ack_sla[Level.YELLOW] == 3600
    assert set(st.resolve_sla.values()) == {43200.0}
    assert st.reminder_interval[Level.BLUE] == 7200 and st.reminder_interval[Level.RED] == 120
    assert (st.auto_close, st.reopen_cooldown, st.incident_window, st.tick_interval) == (frozenset({Level.BLUE}), 0.0, 3600.0, 5.0)
    assert (st.auto_migrate, st.api_host, st.api_port) == (False, "0.0.0.0", 9000)
    assert "s3cret" not in repr(st) and "lw:***@db" in repr(st)


@pytest.mark.parametrize(
    "var,value",
    [
        ("LIFEWATCH_ALERTS_ACK_SLA", "red=soon"),
        ("LIFEWATCH_ALERTS_ACK_SLA", "purple=5m"),
        ("LIFEWATCH_ALERTS_ACK_SLA", "red=0"),
        ("LIFEWATCH_ALERTS_ACK_SLA", "blue=4d"),  # longer than blue's resolution SLA (3 d)
        ("LIFEWATCH_ALERTS_AUTO_MIGRATE", "perhaps"),
        ("LIFEWATCH_API_PORT", "http"),
        ("LIFEWATCH_ALERTS_INCIDENT_WINDOW", "-5m"),
    ],
)
def test_bad_values_fail_loudly(var: str, value: str) -> None:
    with pytest.raises(SettingsError, match="LIFEWATCH_"):
        AlertSettings.from_settings(Settings(), environ={var: value})


def test_level_durations_parser_and_table() -> None:
    base = AlertSettings().ack_sla
    assert parse_level_durations("II=90s", base)[Level.ORANGE] == 90
    assert parse_level_durations("45m", base) == dict.fromkeys(Level, 2700.0)
    names = [row[0] for row in settings_table()]
    assert "LIFEWATCH_ALERTS_DB_URL" in names and "LIFEWATCH_API_PORT" in names and "LIFEWATCH_ALERTS_DEMO" not in names
