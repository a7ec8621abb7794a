"""The shift report: counts per unit and level, what was open at hand-over (rebuilt from the audit trail),
KPIs, local time; checked by parsing the HTML.  On SQLite and PostgreSQL."""

from __future__ import annotations

import argparse
import doctest
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from sqlalchemy import select

import alerts.report
from alerts.lifecycle import Feedback, transition
from alerts.models import Alert
from alerts.report import cli, render_html, shift_report
from alerts.states import AlertState, Role
from alerts.types import Actor
from lifewatch.levels import Level
from lifewatch.settings import Settings
from tests.alerts.helpers import UNIT_A, UNIT_B, WALL0, det

CREW_A = Actor("crew-a", Role.CREW, UNIT_A)
CREW_B = Actor("crew-b", Role.CREW, UNIT_B)
OPERATOR = Actor("operator", Role.OPERATOR)
START = WALL0 + timedelta(hours=1)  # 09:00:05Z = 15:00:05 in Shihezi (UTC+6)
END = START + timedelta(hours=8)


class Tables(HTMLParser):
    """Every <table id=...> as rows of (tr attributes, [cell texts]); plus <dd data-key> values."""

    def __init__(self, text: str):
        super().__init__()
        self.tables: dict[str, list[tuple[dict[str, str], list[str]]]] = {}
        self.summary: dict[str, str] = {}
        self.window = ""
        self._table: str | None = None
        self._row: tuple[dict[str, str], list[str]] | None = None
        self._cell: list[str] | None = None
        self._dd: str | None = None
        self._p_window = False
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "table":
            self._table = a.get("id", "")
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self._row = (a, [])
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []
        elif tag == "dd":
            self._dd = a.get("data-key")
        elif tag == "p" and a.get("id") == "window":
            self._p_window = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._table = None
        elif tag == "tr" and self._row is not None and self._table is not None:
            self.tables[self._table].append(self._row)
            self._row = None
        elif tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row[1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "dd":
            self._dd = None
        elif tag == "p":
            self._p_window = False

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        if self._dd:
            self.summary[self._dd] = self.summary.get(self._dd, "") + data
        if self._p_window:
            self.window += data


def alert_id(store, kind: str) -> str:  # noqa: ANN001
    with store.read() as s:
        return s.scalars(select(Alert.id).where(Alert.kind == kind)).one()


def move(store, clock, kind: str, to: AlertState, actor: Actor, **fb: object) -> None:  # noqa: ANN001
    with store.write() as s:
        transition(s, alert_id(store, kind), to, actor, clock(), feedback=Feedback(**fb) if fb else None)


@pytest.fixture
def shift(store, intake, clock) -> dict[str, str]:  # noqa: ANN001
    """Alerts before, during and after the shift [START, END); returns kind -> alert id."""
    # before the shift: one still open at hand-over, one closed as a false alarm before it
    intake.emit([det("old_open", t=0, asset="dma-d01-1")])
    intake.emit([det("old_false", t=1, lifeline="power", district="d02", asset="feeder-d02-1", sensors=("p-d02-001",),
                     level=Level.BLUE)])
    move(store, clock, "old_false", AlertState.FALSE_ALARM, OPERATOR, note="test pulse")

    clock.now = START + timedelta(minutes=10)
    intake.emit([det("red_ack", t=4200, asset="dma-d01-2", level=Level.RED)])
    clock.advance(120)
    move(store, clock, "red_ack", AlertState.ACKNOWLEDGED, CREW_A)

    clock.now = START + timedelta(minutes=20)
    intake.emit([det("power_done", t=4800, lifeline="power", district="d02", asset="feeder-d02-2", sensors=("p-d02-002",))])
    clock.advance(300)
    move(store, clock, "power_done", AlertState.ACKNOWLEDGED, CREW_B)
    clock.advance(3600)
    move(store, clock, "power_done", AlertState.RESOLVED, CREW_B, cause="blown fuse", action="replaced")
    move(store, clock, "power_done", AlertState.CLOSED, OPERATOR)

    clock.now = START + timedelta(minutes=30)
    intake.emit([det("yellow_false", t=5400, asset="dma-d02-1", district="d02", level=Level.YELLOW)])
    move(store, clock, "yellow_false", AlertState.FALSE_ALARM, OPERATOR, note="valve test")

    clock.now = START + timedelta(minutes=40)
    intake.emit([det("orange_waiting", t=6000, asset="dma-d03-1", district="d03")])

    # after the hand-over: a new alert (not in this shift) and the red one resolved and closed (it WAS open at END)
    clock.now = END + timedelta(minutes=10)
    intake.emit([det("after_end", t=40000, asset="dma-d04-1", district="d04", level=Level.RED)])
    move(store, clock, "red_ack", AlertState.RESOLVED, CREW_A, cause="leak", action="clamped")
    move(store, clock, "red_ack", AlertState.CLOSED, OPERATOR)
    return {k: alert_id(store, k) for k in ("old_open", "red_ack", "power_done", "yellow_false", "orange_waiting")}


def test_doctests() -> None:
    result = doctest.testmod(alerts.report)
    assert result.attempted > 0 and result.failed == 0


def test_shift_report_counts_open_alerts_and_kpis(store, shift, city, clock) -> None:  # noqa: ANN001
    rep = shift_report(store, START, END, city=city, now=clock())
    page = Tables(render_html(rep))

    raised = {a["data-unit"]: {c: v for c, v in zip(["unit", "red", "orange", "yellow", "blue", "total", "silenced"], cells, strict=True)}
              for a, cells in page.tables["raised-table"] if a.get("data-unit")}
    assert raised[UNIT_A] == {"unit": UNIT_A, "red": "1", "orange": "1", "yellow": "1", "blue": "0", "total": "3", "silenced": "0"}
    assert raised[UNIT_B] == {"unit": UNIT_B, "red": "0", "orange": "1", "yellow": "0", "blue": "0", "total": "1", "silenced": "0"}
    assert raised["total"]["total"] == "4" and set(raised) == {UNIT_A, UNIT_B, "total"}

    open_rows = [a for a, _ in page.tables["open-table"] if a.get("data-alert-id")]
    assert [(a["data-alert-id"], a["data-level"], a["data-state"]) for a in open_rows] == [
        (shift["red_ack"], "red", "acknowledged"),  # closed after the hand-over: open at END
        (shift["old_open"], "orange", "new"),  # older first within a level
        (shift["orange_waiting"], "orange", "new"),
    ]
    assert int(open_rows[1]["data-age-s"]) == int((END - (START - timedelta(hours=1))).total_seconds())
    cells = {a["data-alert-id"]: c for a, c in page.tables["open-table"] if a.get("data-alert-id")}
    assert "确认超时 ack overdue" in cells[shift["orange_waiting"]][9] and "crew-a" in cells[shift["red_ack"]][9]
    assert cells[shift["orange_waiting"]][6] == "2026-01-01 15:40"  # local time (UTC+6)

    tta = {(a["data-unit"], a["data-level"]): a for a, _ in page.tables["tta-table"] if a.get("data-unit")}
    assert (tta[(UNIT_A, "red")]["data-count"], float(tta[(UNIT_A, "red")]["data-mean-s"])) == ("1", 120.0)
    assert (tta[(UNIT_B, "orange")]["data-count"], float(tta[(UNIT_B, "orange")]["data-mean-s"])) == ("1", 300.0)
    assert tta[(UNIT_A, "orange")]["data-count"] == "0"
    assert (tta[("all", "all")]["data-count"], float(tta[("all", "all")]["data-mean-s"])) == ("2", 210.0)
    ttr = {(a["data-unit"], a["data-level"]): a for a, _ in page.tables["ttr-table"] if a.get("data-unit")}
    assert (ttr[(UNIT_B, "orange")]["data-count"], float(ttr[(UNIT_B, "orange")]["data-mean-s"])) == ("1", 3900.0)
    assert ttr[(UNIT_A, "red")]["data-count"] == "1"  # resolved after the shift: still this shift's alert

    activity = {a["data-key"]: int(c[1]) for a, c in page.tables["activity-table"]}
    assert activity["acknowledged"] == 2 and activity["false_alarm"] == 1 and activity["closed"] == 1
    assert activity["resolved"] == 1 and activity["raised"] == 4 and activity["reopened"] == 0
    assert page.summary == {"raised": "4", "open": "3", "ack_overdue": "2", "escalations": "0"}
    assert page.window.strip() == "班次 Shift: 2026-01-01 15:00 – 2026-01-01 23:00 (UTC+6)"


def test_report_html_is_self_contained_and_escaped(store, intake, city, clock) -> None:  # noqa: ANN001
    clock.now = START + timedelta(minutes=1)
    intake.emit([det("<script>alert(1)</script>", asset="dma-d01-1")])
    text = render_html(shift_report(store, START, END, city=city, now=clock()))
    assert "<script>" not in text and "&lt;script&gt;" in text
    for needle in ("http://", "https://", "<link", "<img", "src="):
        assert needle not in text
    assert text.startswith("<!DOCTYPE html>") and '<meta charset="utf-8">' in text


def test_cli_writes_the_report(store, shift, db_url, tmp_path: Path, monkeypatch, capsys) -> None:  # noqa: ANN001
    monkeypatch.setenv("LIFEWATCH_ALERTS_DB_URL", db_url)
    settings = Settings(state_dir=tmp_path / "state")
    out = tmp_path / "shift.html"
    # local times (no offset): Shihezi is UTC+6, so this is START..END
    args = argparse.Namespace(from_="2026-01-01T15:00:05", to="2026-01-01T23:00:05", out=str(out))
    assert cli(args, settings) == 0
    page = Tables(out.read_text(encoding="utf-8"))
    assert page.summary["raised"] == "4" and page.summary["open"] == "3"
    assert "4 raised, 3 open" in capsys.readouterr().err
    assert cli(argparse.Namespace(from_="2026-01-01T23:00Z", to="2026-01-01T15:00Z", out=None), settings) == 2
    assert cli(argparse.Namespace(from_="yesterday", to=None, out=None), settings) == 2
