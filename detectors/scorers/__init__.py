"""Built-in scorers.  Importing this package registers them all (see detectors.base.REGISTRY)."""

from detectors.scorers import ewz  # noqa: F401
