"""``lifewatch status [--json]``: what is arriving, what was rejected, what runs."""

from __future__ import annotations

import json
import sys

from lifewatch.influx import InfluxClient, InfluxError
from lifewatch.lifelines import LIFELINE_IDS
from lifewatch.lineprotocol import quote_ident
from lifewatch.settings import Settings, parse_duration


def lifeline_counts(client: InfluxClient, since_s: float) -> dict[str, dict]:
    """Readings and reporting sensors per lifeline over the last ``since_s`` seconds of event time.

    A reading is one point; per sensor the largest per-field count is its
    number of points (a sensor always sends the same metrics; nulls aside).
    """
    window = f"time > now() - {int(since_s)}s"
    statements = ";".join(
        f"SELECT count(*) FROM {quote_ident(lid)} WHERE {window} GROUP BY \"sensor_id\"" for lid in LIFELINE_IDS
    )
    results = client.query_all(statements)
    out = {}
    for lid, series in zip(LIFELINE_IDS, results + [[]] * (len(LIFELINE_IDS) - len(results)), strict=False):
        readings = 0
        for s in series:
            row = s.values[0] if s.values else []
            counts = [v for c, v in zip(s.columns, row, strict=False) if c.startswith("count_") and isinstance(v, int)]
            readings += max(counts, default=0)
        out[lid] = {"readings": readings, "sensors": len(series)}
    return out


def collect(settings: Settings, since: str) -> tuple[dict, bool]:
    since_s = parse_duration(since)
    doc: dict = {"since": since, "influx_url": settings.influx_url, "database": settings.influx_db}
    ok = True
    with InfluxClient.from_settings(settings) as client:
        try:
            doc["lifelines"] = lifeline_counts(client, since_s)
            doc["influx_reachable"] = True
        except InfluxError as exc:
            ok = False
            doc["influx_reachable"] = False
            doc["error"] = str(exc)
            doc["lifelines"] = {lid: {"readings": None, "sensors": None} for lid in LIFELINE_IDS}
    try:
        from ingest.deadletter import DeadLetterStore

        store = DeadLetterStore.from_settings(settings)
        doc["dead_letters"] = store.pending
        doc["dead_letters_by_reason"] = store.counts_by_reason()
        store.close()
    except Exception as exc:  # noqa: BLE001 - status must report, not crash
        doc["dead_letters"] = None
        doc["dead_letters_error"] = str(exc)
    try:
        from lifewatch.services import service_health

        doc["services"] = service_health(settings)
    except Exception as exc:  # noqa: BLE001
        doc["services"] = {"error": str(exc)}
    return doc, ok


def cli(args, settings: Settings) -> int:  # noqa: ANN001
    doc, ok = collect(settings, args.since)
    if args.json:
        print(json.dumps(doc))
        return 0 if ok else 1
    if not ok:
        print(f"InfluxDB at {settings.influx_url} is not reachable: {doc.get('error')}", file=sys.stderr)
    print(f"Readings over the last {args.since} (event time), database {settings.influx_db!r} at {settings.influx_url}:")
    for lid, c in doc["lifelines"].items():
        print(f"  {lid:<7} {c['readings'] if c['readings'] is not None else '?':>9} readings from {c['sensors'] if c['sensors'] is not None else '?':>4} sensors")
    dl = doc.get("dead_letters")
    by = doc.get("dead_letters_by_reason") or {}
    print(f"Dead letters: {dl}" + (" (" + ", ".join(f"{k}={v}" for k, v in by.items()) + ")" if by else ""))
    services = doc.get("services") or {}
    for name, info in services.items():
        if isinstance(info, dict):
            state = "healthy" if info.get("healthy") else ("running" if info.get("running") else "stopped")
            print(f"  {name:<10} {state}  port {info.get('port')}  pid {info.get('pid')}")
    return 0 if ok else 1
