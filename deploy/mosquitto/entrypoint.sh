#!/bin/sh
# Builds Mosquitto's password file at every start, then runs the broker.
#  * service accounts from the environment (docker-compose.yml passes them from .env; no defaults);
#  * devices from /mosquitto/config/devices.passwd if present: lines "username:hash" made with
#    `mosquitto_passwd` (see deploy/README.md); the username is the device's sensor or gateway id.
set -eu
: "${INGEST_MQTT_PASSWORD:?set INGEST_MQTT_PASSWORD in .env}"
: "${NOTIFY_MQTT_PASSWORD:?set NOTIFY_MQTT_PASSWORD in .env}"
: "${SIMULATOR_MQTT_PASSWORD:?set SIMULATOR_MQTT_PASSWORD in .env}"
umask 077
pw=/mosquitto/data/passwd
mosquitto_passwd -c -b "$pw.new" lifewatch-ingest "$INGEST_MQTT_PASSWORD"
mosquitto_passwd -b "$pw.new" lifewatch-notify "$NOTIFY_MQTT_PASSWORD"
mosquitto_passwd -b "$pw.new" lifewatch-simulator "$SIMULATOR_MQTT_PASSWORD"
if [ -s /mosquitto/config/devices.passwd ]; then
    cat /mosquitto/config/devices.passwd >> "$pw.new"
fi
mv "$pw.new" "$pw"
if [ "$(id -u)" = 0 ]; then chown mosquitto:mosquitto "$pw"; fi
exec /docker-entrypoint.sh mosquitto -c /mosquitto/config/mosquitto.conf
