"""Grafana dashboards as code for Lifewatch (docs/dashboards.md).

* :mod:`dashboards.build`: every dashboard of a city, from the city model and the lifeline descriptions;
* :mod:`dashboards.materialize`: the derived state (sensor ok/alerting/offline, open alerts, KPIs) they read;
* :mod:`dashboards.push`: create or update them in a running Grafana;
* :mod:`dashboards.cli`: ``lifewatch dashboards build|push|materialize|seed-metadata``.
"""
