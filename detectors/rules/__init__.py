"""Multi-sensor incident rules over the city model (one module per rule).

Each rule is a :class:`detectors.pipeline.Stage` over one asset type of the
city file (``frame.registry.city``; without a city a rule does nothing).
Its detections name the asset, carry *all* the asset's sensors that the
rule reads, and put every member's value, baseline and spread in the
evidence.  The detector name is the rule name, and so is the kind.

=========================  =========  ===========================================  ======
rule                       asset      reads                                        level
=========================  =========  ===========================================  ======
:class:`WaterBurst`        dma        inlet flow + pressures (time-of-day baselines)  orange
:class:`WaterLeakMNF`      dma        inlet flow, 02:00-04:00 local minimum         yellow
:class:`FeederOutage`      feeder     meter voltages (pu of nominal)                red
:class:`GasLeak`           segment    well %LEL + pressures                         orange/red
:class:`BridgeOverload`    bridge     strain + midspan deflection                   orange
:class:`BridgeDamage`      bridge     frequency vs lagged deck temperature          orange
:class:`BearingSeizure`    bridge     bearing movement per kelvin vs learned        orange
=========================  =========  ===========================================  ======
"""

from detectors.rules.bearing_seizure import BearingSeizure
from detectors.rules.bridge_damage import BridgeDamage
from detectors.rules.bridge_overload import BridgeOverload
from detectors.rules.feeder_outage import FeederOutage
from detectors.rules.gas_leak import GasLeak
from detectors.rules.water_burst import WaterBurst
from detectors.rules.water_leak import WaterLeakMNF

__all__ = ["BearingSeizure", "BridgeDamage", "BridgeOverload", "FeederOutage", "GasLeak", "WaterBurst", "WaterLeakMNF", "default_rules"]


def default_rules() -> list:
    """Every rule with its default parameters."""
    return [WaterBurst(), WaterLeakMNF(), FeederOutage(), GasLeak(), BridgeOverload(), BridgeDamage(), BearingSeizure()]
