"""Notifications of the alert queue: the outbox worker and its channels.

::

    alerts.journal.record ──(same transaction)──> outbox row
                                                   │  OutboxWorker.run_once(now)   (worker.py)
                                                   ├──> MQTT  <prefix>/alerts/<unit>/<level>, QoS 1   (mqtt.py)
                                                   ├──> InfluxDB measurement "alerts"                 (influx.py)
                                                   └──> webhooks: generic | wecom | dingtalk | sms    (webhook.py, ssrf.py)
                                                  per-channel state: notify_deliveries               (store.py)

Settings: :class:`~alerts.notify.config.NotifySettings`.  Texts:
:mod:`alerts.notify.message`.  Errors: :mod:`alerts.notify.errors`.
``lifewatch notify``: :func:`alerts.notify.worker.cli`.
"""
