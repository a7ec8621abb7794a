"""``lifewatch simulate``: incident specs, the incidents file, JSON Lines output and the labels file."""

from __future__ import annotations

import json

import orjson
import pytest

from lifewatch.cli import build_parser
from lifewatch.model import NS, parse_ts
from lifewatch.settings import Settings
from simulators.cli import UsageError, cli, load_incidents, parse_scenario_spec

RUN_START = parse_ts("2026-01-15T00:00:00Z")


def test_scenario_specs():
    inc = parse_scenario_spec("water.burst@dma-d01-1@+30m+2h", RUN_START)
    assert (inc.scenario, inc.target) == ("water.burst", "dma-d01-1")
    assert inc.start_ns == RUN_START + 1800 * NS and inc.end_ns == inc.start_ns + 7200 * NS
    inc = parse_scenario_spec("gas.leak@g-d01-005@2026-01-15T10:00:00Z", RUN_START)
    assert inc.start_ns == parse_ts("2026-01-15T10:00:00Z") and inc.end_ns - inc.start_ns == 3 * 3600 * NS
    inc = parse_scenario_spec("fault.clock_skew@w-d01-003@2026-01-15T16:00:00+06:00+90m", RUN_START)
    assert inc.start_ns == parse_ts("2026-01-15T10:00:00Z") and inc.end_ns - inc.start_ns == 5400 * NS
    inc = parse_scenario_spec("power.sag@fdr-d01-1@+1h", RUN_START)
    assert inc.end_ns - inc.start_ns == 30 * NS  # the scenario's default duration
    for bad in ["water.burst@dma-d01-1", "water.burst@dma-d01-1@+x", "nope@x@+1m", "water.burst@@+1m",
                "water.burst@dma-d01-1@2026-13-01T00:00:00Z", "water.burst@dma-d01-1@+1m+2m+3m"]:
        with pytest.raises(UsageError):
            parse_scenario_spec(bad, RUN_START)


def test_incidents_file(tmp_path):
    f = tmp_path / "inc.yaml"
    f.write_text(
        "- {scenario: water.burst, target: dma-d01-1, start: +30m, duration: 2h, params: {diameter_mm: 60}}\n"
        "- {scenario: air.inversion, target: city, start: 2026-01-15T06:00:00Z, end: 2026-01-17T06:00:00Z}\n"
        "- {scenario: fault.drift, target: g-d01-001, start: '2026-01-15T08:00:00+06:00', duration: 3600}\n",
        encoding="utf-8",
    )
    a, b, c = load_incidents(f, RUN_START)
    assert a.start_ns == RUN_START + 1800 * NS and a.end_ns == a.start_ns + 7200 * NS and a.params == {"diameter_mm": 60}
    assert b.start_ns == parse_ts("2026-01-15T06:00:00Z") and b.end_ns == parse_ts("2026-01-17T06:00:00Z")
    assert c.start_ns == parse_ts("2026-01-15T02:00:00Z") and c.end_ns - c.start_ns == 3600 * NS
    f.write_text("- {scenario: water.burst, target: dma-d01-1}\n", encoding="utf-8")
    with pytest.raises(UsageError):
        load_incidents(f, RUN_START)


def _args(*argv):
    return build_parser().parse_args(["simulate", *argv])


def test_out_file_and_labels_end_to_end(tmp_path, capsys):
    out, labels = tmp_path / "msgs.jsonl", tmp_path / "labels.json"
    rc = cli(_args("--speed", "max", "--start", "2026-01-15T00:00:00Z", "--duration", "30m", "--sensors", "30",
                   "--seed", "4", "--out", str(out), "--labels", str(labels),
                   "--scenario", "fault.dropout@w-d01-003@+5m+10m",
                   "--scenario", "water.burst@dma-d01-1@2026-01-15T00:10:00Z+1h"), Settings())
    assert rc == 0
    lines = out.read_bytes().splitlines()
    msgs = [orjson.loads(x) for x in lines]
    assert len(msgs) == 30 * 30 - 10  # 30 sensors x 30 one-minute samples, minus the dropout
    m = msgs[0]
    lifeline, district, sid = m["topic"].split("/")[1:4]
    assert m["topic"] == f"lifelines/{lifeline}/{district}/{sid}/reading" and m["payload"]["sensor_id"] == sid
    assert set(m["payload"]) == {"sensor_id", "ts", "values", "seq"}
    assert not any(x["payload"]["sensor_id"] == "w-d01-003" and "00:05:" <= x["payload"]["ts"][11:17] < "00:15:"
                   for x in msgs)
    doc = json.loads(labels.read_text())
    assert doc["city"] == "Shihezi" and doc["seed"] == 4
    assert [i["scenario"] for i in doc["incidents"]] == ["fault.dropout", "water.burst"]
    assert doc["incidents"][0] == {"scenario": "fault.dropout", "target": "w-d01-003", "sensors": ["w-d01-003"],
                                   "start": "2026-01-15T00:05:00Z", "end": "2026-01-15T00:15:00Z"}
    assert set(doc["incidents"][1]["sensors"]) == {f"w-d01-00{i}" for i in range(1, 8)}
    captured = capsys.readouterr()
    assert captured.out.count("\n") == 1 and captured.out.startswith("simulate: 890 readings in 890 messages")


def test_batch_payloads(tmp_path, capsys):
    out = tmp_path / "b.jsonl"
    rc = cli(_args("--speed", "max", "--start", "2026-01-15T00:00:00Z", "--duration", "1h", "--sensors", "60",
                   "--batch", "25", "--out", str(out)), Settings())
    assert rc == 0
    msgs = [orjson.loads(x) for x in out.read_bytes().splitlines()]
    total = 0
    for m in msgs:
        _, lifeline, district, gw, _ = m["topic"].split("/")
        assert gw == f"gw-{district}-{lifeline}"
        assert isinstance(m["payload"], list) and 1 <= len(m["payload"]) <= 25
        total += len(m["payload"])
    assert total == 60 * 60
    assert "in " + str(len(msgs)) + " messages" in capsys.readouterr().out


def test_list_and_errors(capsys):
    assert cli(_args("--list-scenarios"), Settings()) == 0
    out = capsys.readouterr().out
    assert "water.burst" in out and "fault.clock_skew" in out
    assert cli(_args("--scenario", "water.burst@nowhere@+1m", "--out", "/dev/null"), Settings()) == 2
    assert cli(_args("--speed", "-3", "--out", "/dev/null"), Settings()) == 2
    assert "simulate:" in capsys.readouterr().err
