"""Headless Chromium for the browser tests: where it is, a skip when it is not, and one way to start it.

Each test module calls :func:`skip_unless_installed` before importing
selenium (a missing browser is a skip; selenium is a requirement), and its
``browser`` fixture calls :func:`start`.
"""

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


def skip_unless_installed():
    """Skip the calling test module when Chromium or chromedriver is missing."""
    if not (Path(CHROMIUM).is_file() and Path(CHROMEDRIVER).is_file()):
        pytest.skip(
            f"Chromium or chromedriver not installed ({CHROMIUM}, {CHROMEDRIVER}): "
            "run scripts/install-test-deps.sh (as root) to install chromium, chromium-driver, fonts-noto-cjk",
            allow_module_level=True,
        )


def start(profile, width, height, *, page_timeout, script_timeout=None, logs=False):
    """A headless Chromium driven by chromedriver, kept offline, with ``profile`` as its user-data folder.

    ``logs``: keep the console and network (performance) logs, for tests that read them.
    """
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager, should it ever run: no downloads
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", f"--window-size={width},{height}", "--lang=en-US",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(arg)
    if os.geteuid() == 0:
        options.add_argument("--no-sandbox")  # Chromium refuses to run as root with its sandbox
    if logs:
        options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(page_timeout)
    driver.set_script_timeout(script_timeout or page_timeout)
    return driver
