"""Sensor-health stages: is the *sensor* healthy, whatever its lifeline does?

Each is a :class:`detectors.pipeline.Stage` emitting
:class:`detectors.events.Detection` through :class:`detectors.decide.Hysteresis`,
one condition per sensor, event time only, batch-size independent, with
bounded state and ``state_dict`` / ``load_state_dict``.

======================  ==============  ================================================
stage                   detector        kind
======================  ==============  ================================================
:class:`Stuck`          ``stuck``       ``sensor_stuck`` (flat line, open-fdd rule)
:class:`Spike`          ``spike``       ``sensor_spike`` (one-point outlier)
:class:`Offline`        ``offline``     ``sensor_offline`` (silence vs the watermark)
:class:`ClockSkew`      ``clock_skew``  ``sensor_clock_skew`` (offset vs the watermark)
:class:`Drift`          ``drift``       ``sensor_drift`` (away from asset neighbours)
======================  ==============  ================================================

Physical events that hit every sensor of an asset at once (a feeder outage,
a voltage sag, a lorry on a bridge, low pressure in a DMA) are *not* sensor
faults: each check looks at the asset's other sensors and leaves those to
:mod:`detectors.rules`.
"""

from detectors.health.drift import Drift
from detectors.health.spike import Spike
from detectors.health.stuck import Stuck
from detectors.health.timing import ClockSkew, Offline

__all__ = ["ClockSkew", "Drift", "Offline", "Spike", "Stuck"]


def default_stages() -> list:
    """All five with their default parameters, in a sensible order."""
    return [Offline(), ClockSkew(), Stuck(), Spike(), Drift()]
