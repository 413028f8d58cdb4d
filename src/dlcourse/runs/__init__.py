"""Runs: a frozen spec per training, a code-aware results cache, and resumable sweeps.

One job per module:
- `spec`: RunSpec, validated on construction; its canonical form;
- `fingerprint`: the hash of the code that decides a result, and the cache key;
- `recipe`: a spec's data, model and the `train.fit` call (alone or stacked): the part that
  decides a result;
- `results`: Result and its entry in the store (`dlcourse.cache`);
- `schedule`: `run` and `sweep` (cache hits, locks, stacking groups, progress);
- `remote`: the Ray backend of `sweep` (imported only when it is used; Ray is an optional extra).
"""

from __future__ import annotations

from ..cache import CacheWarning
from . import fingerprint, recipe, results, schedule, spec
from .fingerprint import FINGERPRINT_MODULES, code_fingerprint, spec_key
from .recipe import FUNCTION_TEST_SIZE, FUNCTION_TRAIN_SIZE, build_model, load_data
from .results import Result
from .schedule import BACKENDS, batches, histories, run, stack_group, sweep
from .spec import DATASETS, MODELS, RunSpec, as_spec

__all__ = ["RunSpec", "Result", "run", "sweep", "batches", "histories", "build_model", "load_data", "stack_group",
           "code_fingerprint", "spec_key", "CacheWarning", "as_spec", "FINGERPRINT_MODULES", "FUNCTION_TRAIN_SIZE",
           "FUNCTION_TEST_SIZE", "DATASETS", "MODELS", "BACKENDS"]
