"""Helpers for the browser tests: waiting on the page, reading it, REST shortcuts."""
import os
import subprocess
import sys
import time
import wave

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "integration"))

from test_agents import admin_token, call, new_otp, otp_token  # noqa: E402,F401
from test_voice import wer, words  # noqa: E402,F401

from selenium.webdriver.common.by import By  # noqa: E402


def wait_for(fn, timeout=10, interval=0.1, what="condition"):
    """Polls fn() until it returns something truthy; returns that value."""
    deadline = time.monotonic() + timeout
    last_err = None
    while time.monotonic() < deadline:
        try:
            value = fn()
            if value:
                return value
        except Exception as err:  # stale elements while the page re-renders
            last_err = err
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}"
                         + (f" (last error: {last_err})" if last_err else ""))


def css(driver, selector):
    return driver.find_elements(By.CSS_SELECTOR, selector)


def one(driver, selector):
    return driver.find_element(By.CSS_SELECTOR, selector)


def visible_text(driver, selector):
    els = [e for e in css(driver, selector) if e.is_displayed()]
    return els[0].text if els else ""


def js(driver, script, *args):
    return driver.execute_script(script, *args)


def spoken_wav(text, path, lead_s, tail_s, voice="kal16"):
    """A 16 kHz mono WAV of text said by flite, with silence before and after (for
    Chromium's fake microphone, which plays the file once from when it is opened)."""
    raw = path + ".flite.wav"
    subprocess.run(["flite", "-voice", voice, "-t", text, "-o", raw], check=True)
    with wave.open(raw) as w:
        rate, width, channels = w.getframerate(), w.getsampwidth(), w.getnchannels()
        speech = w.readframes(w.getnframes())
    os.unlink(raw)
    assert width == 2 and channels == 1, (width, channels)
    pad = lambda s: b"\0\0" * int(rate * s)  # noqa: E731
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pad(lead_s) + speech + pad(tail_s))
    return path


def unlabelled_controls(driver):
    """Form controls that a screen reader could not name (no label, aria-label(ledby))."""
    return js(driver, """
        return [...document.querySelectorAll('input, select, textarea, button')]
          .filter(e => e.offsetParent !== null && e.type !== 'hidden')
          .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')
                       && !e.getAttribute('aria-labelledby') && !(e.textContent || '').trim())
          .map(e => e.outerHTML.slice(0, 120));
    """)


def horizontal_overflow(driver):
    return js(driver, "return document.documentElement.scrollWidth - window.innerWidth")


def silent_wav(path, seconds=1.0, rate=16000):
    """A WAV of silence: Chromium's fake microphone otherwise beeps (which is speech to
    the agent's voice activity detection)."""
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\0\0" * int(rate * seconds))
    return path
