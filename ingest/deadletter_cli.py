"""``lifewatch deadletter list|show|redrive``."""

from __future__ import annotations

import json
import sys
import time

from ingest.deadletter import DeadLetterStore, StoredLetter
from lifewatch.model import format_ts
from lifewatch.settings import Settings


def _summary(lt: StoredLetter) -> dict:
    return {
        "id": lt.id,
        "received": format_ts(lt.received_ns),
        "topic": lt.topic,
        "reason": lt.reason,
        "detail": lt.detail,
        "batch_index": lt.batch_index,
        "payload_size": lt.payload_size,
        "truncated": lt.truncated,
        "redriven": format_ts(lt.redriven_ns) if lt.redriven_ns else None,
    }


def cli(args, settings: Settings) -> int:  # noqa: ANN001
    store = DeadLetterStore.from_settings(settings)
    try:
        if args.action == "list":
            return _list(store, args)
        if args.action == "show":
            return _show(store, args.id)
        return _redrive(store, settings, args)
    finally:
        store.close()


def _list(store: DeadLetterStore, args) -> int:  # noqa: ANN001
    letters = store.list(reason=args.reason, limit=args.limit, include_redriven=args.all)
    if args.json:
        print(json.dumps({"pending": store.pending, "by_reason": store.counts_by_reason(), "letters": [_summary(lt) for lt in letters]}))
        return 0
    counts = store.counts_by_reason()
    print(f"{store.pending} pending dead letters" + (": " + ", ".join(f"{k}={v}" for k, v in counts.items()) if counts else ""))
    for lt in letters:
        s = _summary(lt)
        flag = " (truncated)" if lt.truncated else ""
        red = f" redriven {s['redriven']}" if lt.redriven_ns else ""
        print(f"#{lt.id:<6} {s['received']}  {lt.reason:<18} {lt.topic}  {lt.detail[:80]}{flag}{red}")
    return 0


def _show(store: DeadLetterStore, letter_id: int) -> int:
    lt = store.get(letter_id)
    if lt is None:
        print(f"lifewatch: no dead letter #{letter_id}", file=sys.stderr)
        return 1
    doc = _summary(lt)
    doc["payload"] = lt.payload.decode("utf-8", errors="backslashreplace")
    print(json.dumps(doc, indent=2, ensure_ascii=False))
    return 0


def _redrive(store: DeadLetterStore, settings: Settings, args) -> int:  # noqa: ANN001
    if args.ids:
        letters = [lt for lt in (store.get(i) for i in args.ids) if lt is not None]
        missing = set(args.ids) - {lt.id for lt in letters}
        if missing:
            print(f"lifewatch: no dead letters {sorted(missing)}", file=sys.stderr)
            return 1
    else:
        letters = store.list(reason=args.reason, limit=0)
    letters = [lt for lt in letters if lt.redriven_ns is None]
    skipped = [lt for lt in letters if lt.truncated]
    letters = [lt for lt in letters if not lt.truncated]
    for lt in skipped:
        print(f"skip #{lt.id}: payload was truncated to {len(lt.payload)} of {lt.payload_size} bytes", file=sys.stderr)
    if args.dry_run:
        for lt in letters:
            print(f"would re-drive #{lt.id} to {lt.topic}")
        return 0
    if not letters:
        print("nothing to re-drive")
        return 0
    import paho.mqtt.client as mqtt

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"lifewatch-redrive-{time.time_ns()}", protocol=mqtt.MQTTv311)
    if settings.mqtt_username:
        client.username_pw_set(settings.mqtt_username, settings.mqtt_password or None)
    client.connect(settings.mqtt_host, settings.mqtt_port)
    client.loop_start()
    try:
        done = []
        for lt in letters:
            info = client.publish(lt.topic, lt.payload, qos=1)
            info.wait_for_publish(timeout=30)
            if not info.is_published():
                print(f"lifewatch: re-drive of #{lt.id} was not acknowledged by the broker", file=sys.stderr)
                break
            done.append(lt.id)
        store.mark_redriven(done)
    finally:
        client.disconnect()
        client.loop_stop()
    print(f"re-drove {len(done)} dead letters; ingest validates them again (new rejects land here again)")
    return 0 if len(done) == len(letters) else 1
