"""Headless Chromium for tests: Debian's /usr/bin/chromium driven by Playwright.

Playwright's own browser builds are never downloaded; ``executable_path``
points it at the system Chromium. Each browser gets a fresh profile in its
own directory, and screenshots go to ``test-artifacts/`` in the repository.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import BrowserContext, sync_playwright

CHROMIUM = os.environ.get("ENCMOND_TEST_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 812}
# Playwright adds --headless itself; the rest keeps Chromium off the network
# and away from first-run work.
ARGUMENTS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@contextmanager
def chromium(profile: Path) -> Iterator[BrowserContext]:
    """Yield a browser context of a headless Chromium with its profile in
    ``profile``, which must not be in use by another browser."""
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            headless=True,
            args=ARGUMENTS,
            viewport=DESKTOP,
        )
        try:
            yield context
        finally:
            context.close()


def screenshot(page, name: str) -> Path:
    """Save a full-page PNG as test-artifacts/<name>.png and return its path."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    # From the top, so that a sticky header is drawn where it belongs.
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(path), full_page=True)
    return path
