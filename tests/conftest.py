"""Shared test configuration: a derandomized hypothesis profile for reproducible runs.

The "ci" profile (default) derandomizes hypothesis so every run draws the same examples;
set HYPOTHESIS_PROFILE=dev locally to explore fresh examples.
"""

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    max_examples=25,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None, max_examples=100)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
