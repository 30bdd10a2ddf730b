"""Fixtures for the browser tests: one portal stack (one voice worker) for the session,
headless Chromium driven by Selenium through chromedriver, screenshots as artefacts.

Artefacts go to $VAP_BROWSER_ARTIFACTS (default: $VAP_BUILD_DIR/browser-artifacts):
one PNG per page state and, for a failed test, its browser console log.
"""
import base64
import os
import shutil
import sys
import tempfile

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))

from stack import PgCluster, Stack, build_dir, finish_stacks  # noqa: E402

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
_stacks = []


def artifacts_dir():
    path = os.environ.get("VAP_BROWSER_ARTIFACTS") or os.path.join(build_dir(), "browser-artifacts")
    os.makedirs(path, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def artifacts():
    return artifacts_dir()


@pytest.fixture(scope="session")
def portal():
    """The real services with one voice worker (the visitor tests wait for it)."""
    cluster = PgCluster()
    s = Stack(cluster, voice_workers=1, extra_env={"VOICE_CAPACITY": "4"}).start()
    _stacks.append(s)
    yield s
    s.stop()
    cluster.destroy()


class Browser:
    """A headless Chromium with a fresh profile. fake_mic: a WAV the fake microphone
    plays once (then silence)."""

    def __init__(self, fake_mic=None, width=1280, height=900, mobile=False):
        self.profile = tempfile.mkdtemp(prefix="vap-chromium-")
        opts = webdriver.ChromeOptions()
        opts.binary_location = CHROMIUM
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                    "--disable-extensions", "--hide-scrollbars", "--lang=en-GB",
                    "--force-device-scale-factor=1", f"--user-data-dir={self.profile}",
                    f"--window-size={width},{height}",
                    "--autoplay-policy=no-user-gesture-required",
                    "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"):
            opts.add_argument(arg)
        if fake_mic:
            opts.add_argument(f"--use-file-for-fake-audio-capture={fake_mic}%noloop")
        if mobile:
            opts.add_experimental_option("mobileEmulation", {
                "deviceMetrics": {"width": width, "height": height, "pixelRatio": 1},
                "userAgent": "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 "
                             "(KHTML, like Gecko) Chrome/156.0 Mobile Safari/537.36"})
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
        self.driver.set_page_load_timeout(30)
        self.console = []

    def logs(self):
        try:
            self.console += [f"{e['level']} {e['message']}" for e in self.driver.get_log("browser")]
        except Exception:
            pass
        return self.console

    def screenshot(self, name, full_page=True):
        """The whole page (beyond the viewport; full_page=False: what is in view, e.g.
        for a modal dialog) as artefacts/<name>.png. A passing toast is hidden first."""
        path = os.path.join(artifacts_dir(), f"{name}.png")
        d = self.driver
        d.execute_script("const t = document.getElementById('toast'); if (t) {"
                         " t.style.transition = 'none'; t.classList.remove('visible');"
                         " void t.offsetWidth; t.style.transition = ''; }")
        if not full_page:
            d.save_screenshot(path)
            return path
        metrics = d.execute_cdp_cmd("Page.getLayoutMetrics", {})
        size = metrics.get("cssContentSize") or metrics["contentSize"]
        shot = d.execute_cdp_cmd("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": size["width"],
                     "height": min(size["height"], 6000), "scale": 1}})
        with open(path, "wb") as f:
            f.write(base64.b64decode(shot["data"]))
        return path

    def quit(self):
        try:
            self.driver.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)


@pytest.fixture
def browser_factory(request):
    made = []

    def make(**kw):
        b = Browser(**kw)
        made.append(b)
        return b

    yield make
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    for b in made:
        lines = b.logs()
        if failed:
            path = os.path.join(artifacts_dir(), f"{request.node.name}-console.log")
            with open(path, "a") as f:
                f.write("\n".join(lines) + "\n")
            try:
                b.screenshot(f"{request.node.name}-failure")
            except Exception:
                pass
        b.quit()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


def pytest_sessionfinish(session, exitstatus):
    finish_stacks(_stacks, session)
