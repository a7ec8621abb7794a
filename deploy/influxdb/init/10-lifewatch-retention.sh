# Sourced once, on the first start, by the influxdb:1.8 image's init-influxdb.sh, after it created
# $INFLUXDB_DB and the users; $INFLUX_CMD runs statements as $INFLUXDB_ADMIN_USER.
# The retention policies of the dashboards' derived measurements (dashboards/materialize.py:
# META_RP with DURATION INF, STATE_RP with MaterializeConfig.state_rp_duration); creating them needs
# an admin, which the services are not.
$INFLUX_CMD "CREATE RETENTION POLICY \"lifewatch_meta\" ON \"$INFLUXDB_DB\" DURATION INF REPLICATION 1"
$INFLUX_CMD "CREATE RETENTION POLICY \"lifewatch_state\" ON \"$INFLUXDB_DB\" DURATION 1d REPLICATION 1 SHARD DURATION 1h"
