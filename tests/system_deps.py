"""Tests that need a system package (Chromium, a CJK font) skip without it on a developer's machine,
but fail under ``make test`` and CI: there the test setup installs them, so a missing one is a
broken setup, not a reason to pass."""

from __future__ import annotations

import os

import pytest

REQUIRED = "SFTDATA_REQUIRE_SYSTEM_DEPS"  # set by `make test`; CI (env CI) counts too


def missing(message: str) -> None:
    """Skip, or fail where the system packages are required."""
    if os.environ.get(REQUIRED) == "1" or os.environ.get("CI"):
        pytest.fail(f"{message} (required: {REQUIRED}=1 or CI is set)")
    pytest.skip(message)
