"""/docs and /redoc rendered by real headless Chromium, offline: the pages must build
their DOM from the local assets and /openapi.json (no CDN is reachable here)."""
import shutil
import subprocess
import tempfile

import pytest

CHROMIUM = shutil.which("chromium")


def dump_dom(url):
    profile = tempfile.mkdtemp(prefix="vap-chromium-")
    try:
        out = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-dev-shm-usage", f"--user-data-dir={profile}",
             "--virtual-time-budget=8000", "--dump-dom", url],
            capture_output=True, text=True, timeout=60)
        return out.stdout
    finally:
        shutil.rmtree(profile, ignore_errors=True)


@pytest.mark.skipif(not CHROMIUM, reason="chromium is not installed (./portal test installs it)")
def test_swagger_ui_renders_every_tag(stack):
    dom = dump_dom(stack.url + "/docs")
    assert "swagger-ui" in dom
    for text in ("/api/auth/login/admin", "/api/otps/{otp_id}", "/api/agents/access"):
        assert text in dom, text


@pytest.mark.skipif(not CHROMIUM, reason="chromium is not installed (./portal test installs it)")
def test_redoc_renders_the_operations(stack):
    dom = dump_dom(stack.url + "/redoc")
    assert "Voice Agent Portal API" in dom
    assert "/api/auth/login/otp" in dom
