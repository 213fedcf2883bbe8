"""Hypothesis profiles for the fuzz suite: short by default (CI), long with BULLPEN_FUZZ=long."""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("short", max_examples=40, deadline=None)
settings.register_profile("long", max_examples=2000, deadline=None)
settings.load_profile("long" if os.environ.get("BULLPEN_FUZZ") == "long" else "short")
