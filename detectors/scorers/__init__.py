"""Built-in scorers.  Importing this package registers them all (see detectors.base.REGISTRY)."""

from detectors.scorers import ewz  # noqa: F401
from detectors.scorers import changepoint  # noqa: F401, I001 - one line per scorer module
from detectors.scorers import rate  # noqa: F401, I001
from detectors.scorers import seasonal  # noqa: F401, I001
