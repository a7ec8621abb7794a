"""Built-in scorers.  Importing this package registers them all (see detectors.base.REGISTRY)."""

import detectors.scorers.changepoint  # noqa: F401
import detectors.scorers.nab_best  # noqa: F401
import detectors.scorers.rate  # noqa: F401
import detectors.scorers.seasonal  # noqa: F401
from detectors.scorers import ewz  # noqa: F401
