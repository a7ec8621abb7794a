#!/usr/bin/env bash
# `lifewatch ingest` as a consumer of ../shared/peers/ingest-drain: map the
# harness's DRAIN_* variables onto Lifewatch settings, then exec ingest.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export LIFEWATCH_MQTT_HOST="$DRAIN_MQTT_HOST"
export LIFEWATCH_MQTT_PORT="$DRAIN_MQTT_PORT"
export LIFEWATCH_MQTT_CLIENT_ID="$DRAIN_CLIENT_ID"
export LIFEWATCH_INFLUX_URL="$DRAIN_INFLUX_URL"
export LIFEWATCH_INFLUX_DB="$DRAIN_INFLUX_DB"
export LIFEWATCH_STATE_DIR="${LIFEWATCH_STATE_DIR:-$(mktemp -d -t lw-drain.XXXXXX)}"
export LIFEWATCH_METRICS_ADDR="${LIFEWATCH_METRICS_ADDR:-}"
export LIFEWATCH_DEMO=1
# DRAIN_TOPIC is lifelines/+/+/+/reading: the same prefix Lifewatch uses
exec "$HERE/.venv/bin/lifewatch" ingest --topic "$DRAIN_TOPIC"
