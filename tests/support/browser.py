"""Debian's headless Chromium for the browser tests: where it is, how it is started, and the
skip (a failure under GATE_REQUIRE_BROWSER=1, as CI sets) when it or Playwright is missing."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
# No network of its own: the closed network here refuses Chromium's background connections.
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage"]


def need_browser() -> Any:
    """Playwright's sync API, or a skip (a failure under GATE_REQUIRE_BROWSER=1)."""
    missing = None if CHROMIUM.exists() else f"{CHROMIUM} is missing (apt-get install chromium)"
    try:
        from playwright import sync_api
    except ImportError:
        missing = missing or "playwright is not installed (pip install '.[test]')"
    if missing:
        if os.environ.get("GATE_REQUIRE_BROWSER") == "1":
            pytest.fail(f"GATE_REQUIRE_BROWSER=1 but {missing}")
        pytest.skip(missing)
    return sync_api
