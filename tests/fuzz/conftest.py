"""Hypothesis profiles for the fuzz tests, chosen by the BULLPEN_FUZZ environment variable.

* unset (``short``): 30 examples per test, a few seconds in all.
* ``BULLPEN_FUZZ=long``: 2000 examples per test, for a soak before a release.

No example database is written (failures print the example to reproduce them). Reading the
environment here is fine: the boundary rule about os.environ covers dashboard/ and app.py.
"""

from __future__ import annotations

import os
import warnings

from hypothesis import settings

# When a test fails, Hypothesis's pytest plugin imports its patch writer, which imports
# libcst (when installed), which trips a DeprecationWarning in mypy_extensions: under
# pytest.ini's "filterwarnings = error" that hides the failure behind an INTERNALERROR.
# Import it once here, with that warning silenced.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    try:
        import hypothesis.extra._patching  # noqa: F401
    except ImportError:
        pass

settings.register_profile("short", max_examples=30, deadline=None, database=None, print_blob=True)
settings.register_profile("long", max_examples=2000, deadline=None, database=None, print_blob=True)
settings.load_profile(os.environ.get("BULLPEN_FUZZ", "short"))
