"""Errors of the learned detector family.

::

    LearnedError                   any failure of training, the model store or the stage
    ├── NotEnoughData              too few warm feature rows to fit a model for a class
    └── ModelStoreError            the model directory cannot give a usable model
        ├── ModelNotFound          no model (or no such version) for a sensor class
        └── ModelMismatch          the stored model does not fit this code: different
                                   feature list or feature parameters, another
                                   scikit-learn version, or a file whose checksum changed
"""

from __future__ import annotations


class LearnedError(Exception):
    pass


class NotEnoughData(LearnedError):
    pass


class ModelStoreError(LearnedError):
    pass


class ModelNotFound(ModelStoreError):
    pass


class ModelMismatch(ModelStoreError):
    pass
