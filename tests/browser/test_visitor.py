"""The visitor page (/) in headless Chromium against the real services and a voice
worker: a code, the agent cards, then a spoken conversation with the hospital agent
through Chromium's fake microphone fed a flite WAV: the greeting is heard, the spoken
question appears as a transcript, the agent answers in text and in audio, a typed
question is answered too. Exhausted codes and a missing voice worker are refused with
clear messages; the page fits a phone's screen. Screenshots of each step."""
import re

import pytest

from helpers import (admin_token, call, css, horizontal_overflow, js, new_otp, one, otp_token,
                     silent_wav, spoken_wav, unlabelled_controls, visible_text, wait_for, wer)
from stack import PgCluster, Stack

QUESTION = "Is Doctor Patel available on Monday morning"
# The page opens the microphone when the session has started, and Chromium's fake
# microphone plays the file from then on. The greeting ("Good day, you've reached the
# hospital reception. How can I help you today?") lasts about 5 s: the question starts
# after it.
LEAD_S, TAIL_S = 6.5, 3.0

RECORD_STATES = """
    window.__states = [];
    const el = document.querySelector('#voice-status');
    new MutationObserver(() => {
        const s = el.dataset.state;
        if (window.__states[window.__states.length - 1] !== s) window.__states.push(s);
    }).observe(el, {attributes: true, attributeFilter: ['data-state']});
"""


@pytest.fixture(scope="module")
def question_wav(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("speech") / "question.wav")
    return spoken_wav(QUESTION, path, LEAD_S, TAIL_S)


def enter_code(d, url, code):
    d.get(url + "/")
    field = wait_for(lambda: one(d, "#code-input"), what="code form")
    wait_for(lambda: d.switch_to.active_element == field, what="code field focused")
    field.send_keys(code + "\n")


def agent_item(d, turn):
    items = css(d, f'#transcript .msg-agent[data-turn="{turn}"]')
    return items[0] if items else None


def played_ms(d, turn):
    item = agent_item(d, turn)
    return int(item.get_attribute("data-played-ms") or 0) if item else 0


def test_visitor_holds_a_spoken_conversation(portal, browser_factory, question_wav):
    url = portal.url
    portal.wait_voice_workers(1, timeout=120)
    admin = admin_token(url)
    otp = new_otp(url, admin, 2)
    b = browser_factory(fake_mic=question_wav)
    d = b.driver

    # ---- a code, then the agent cards from /api/agents/list ----
    d.get(url + "/")
    wait_for(lambda: one(d, "#code-input").is_displayed(), what="code form")
    assert unlabelled_controls(d) == []
    one(d, "#code-input").send_keys("12345\n")  # five digits: told in words, no request
    assert wait_for(lambda: visible_text(d, "#code-error"), what="code error") == \
        "Please enter the 6-digit code."
    b.screenshot("visitor-01-code")
    wrong = "000000" if otp["code"] != "000000" else "999999"
    one(d, "#code-input").clear()
    one(d, "#code-input").send_keys(wrong + "\n")
    wait_for(lambda: "not recognised" in visible_text(d, "#code-error"), what="unknown code")
    one(d, "#code-input").clear()
    one(d, "#code-input").send_keys(otp["code"] + "\n")
    cards = wait_for(lambda: css(d, "#agent-list .agent-card"), what="agent cards")
    status, agents = call(url, "GET", "/api/agents/list", token=admin)
    assert [c.get_attribute("data-agent") for c in cards] == [a["id"] for a in agents]
    hospital = one(d, '.agent-card[data-agent="hospital"]')
    assert "Hospital Receptionist" in hospital.text and "appointments" in hospital.text
    b.screenshot("visitor-02-agents")

    # ---- pick the hospital agent: access is granted, the session starts ----
    js(d, "document.querySelector('#voice-status').dataset.state = 'idle'")
    js(d, RECORD_STATES)
    hospital.find_element("css selector", "button").click()
    wait_for(lambda: one(d, "#view-talk").get_attribute("data-session-id"), timeout=20,
             what="voice session started")
    assert one(d, "#talk-title").text == "Hospital Receptionist"
    assert one(d, "#uses-left").text == "1 use left on this code"

    # The startup message is shown and heard.
    greet = wait_for(lambda: agent_item(d, 0), timeout=10, what="greeting")
    assert "hospital reception" in greet.text.lower()
    wait_for(lambda: one(d, "#voice-status").get_attribute("data-state") == "speaking",
             timeout=10, what="agent speaking")
    wait_for(lambda: played_ms(d, 0) > 1500, timeout=10, what="greeting audio playing")
    b.screenshot("visitor-03-greeting")
    wait_for(lambda: played_ms(d, 0) > 4000, timeout=15, what="greeting audio played")

    # The spoken question: partial transcripts, then the final one.
    final = wait_for(lambda: [e for e in css(d, '#transcript .msg-visitor[data-final="true"]')
                              if not e.get_attribute("data-typed")], timeout=25,
                     what="final transcript of the spoken question")[0]
    turn = final.get_attribute("data-turn")
    heard = final.find_element("css selector", ".msg-text").text
    assert wer(QUESTION, heard) <= 0.35, heard

    # The answer, in text and in audio.
    reply = wait_for(lambda: (lambda e: e if e and e.get_attribute("data-final") == "true" else None)(
        agent_item(d, turn)), timeout=20, what="the agent's answer")
    text = reply.find_element("css selector", ".msg-text").text.lower()
    assert re.search(r"patel", text) and "monday" in text, text
    wait_for(lambda: played_ms(d, turn) > 1500, timeout=15, what="answer audio played")
    b.screenshot("visitor-04-answer")
    wait_for(lambda: one(d, "#voice-status").get_attribute("data-state") == "listening",
             timeout=20, what="the answer played to the end")
    assert played_ms(d, turn) > 3000
    states = js(d, "return window.__states")
    for state in ("connecting", "speaking", "listening", "thinking"):
        assert state in states, states
    assert int(one(d, "#view-talk").get_attribute("data-audio-ms")) > 6000

    # ---- a typed question works as well ----
    wait_for(lambda: not one(d, "#text-input").get_attribute("disabled"), what="text box")
    one(d, "#text-input").send_keys("What are the visiting hours?\n")
    typed = wait_for(lambda: css(d, '#transcript .msg-visitor[data-typed="true"]'), what="typed line")
    assert typed[0].find_element("css selector", ".msg-text").text == "What are the visiting hours?"
    answer = wait_for(lambda: [e for e in css(d, "#transcript .msg-agent[data-final='true']")
                               if "visit" in e.text.lower() and e.get_attribute("data-turn") not in ("0", turn)],
                      timeout=20, what="answer to the typed question")[0]
    wait_for(lambda: int(answer.get_attribute("data-played-ms") or 0) > 1000, timeout=15,
             what="typed answer audio")
    b.screenshot("visitor-05-conversation")

    # ---- end: the page says so, and usage records the session ----
    one(d, "#end-call").click()
    wait_for(lambda: "The conversation has ended." in visible_text(d, "#talk-alert"),
             what="ended message")
    assert one(d, "#voice-status").get_attribute("data-state") == "ended"
    session_id = one(d, "#view-talk").get_attribute("data-session-id")

    def recorded():
        status, rows = call(url, "GET", "/api/agents/usage?agent_type=hospital&limit=100", token=admin)
        return [r for r in rows if r["otp_id"] == otp["id"] and r["session_id"] == session_id]
    rows = wait_for(recorded, timeout=15, what="usage record of the session")
    assert rows[0]["session_id"] == session_id
    logs = "\n".join(b.logs())
    assert "Content Security Policy" not in logs and "Uncaught" not in logs, logs


def test_lost_connection_is_resumed(portal, browser_factory, tmp_path):
    """The gateway dies mid-conversation (kill -9; the supervisor restarts it): the page
    says it is reconnecting, resumes the same session and the conversation goes on."""
    url = portal.url
    portal.wait_voice_workers(1, timeout=120)
    otp = new_otp(url, admin_token(url), 1)
    b = browser_factory(fake_mic=silent_wav(str(tmp_path / "silence.wav")))
    d = b.driver
    enter_code(d, url, otp["code"])
    wait_for(lambda: css(d, "#agent-list .agent-card"), what="agent cards")
    one(d, '.agent-card[data-agent="hospital"] button').click()
    session_id = wait_for(lambda: one(d, "#view-talk").get_attribute("data-session-id"),
                          timeout=20, what="voice session")
    wait_for(lambda: played_ms(d, 0) > 500, timeout=10, what="greeting playing")
    portal.kill("gateway")
    wait_for(lambda: "Reconnecting" in visible_text(d, "#talk-alert"), timeout=10,
             what="reconnecting message")
    assert one(d, "#voice-status").get_attribute("data-state") == "reconnecting"
    b.screenshot("visitor-10-reconnecting")
    wait_for(lambda: "Reconnected" in one(d, "#transcript").text, timeout=30, what="resumed")
    assert one(d, "#view-talk").get_attribute("data-session-id") == session_id
    assert one(d, "#talk-alert").get_attribute("hidden") is not None
    wait_for(lambda: not one(d, "#text-input").get_attribute("disabled"), what="text box")
    one(d, "#text-input").send_keys("What are the visiting hours?\n")
    wait_for(lambda: [e for e in css(d, "#transcript .msg-agent[data-final='true']")
                      if "visiting hours are" in e.text.lower()], timeout=20,
             what="answer after resuming")
    b.screenshot("visitor-11-resumed")
    portal.wait_ready()


def test_exhausted_code_is_refused_on_a_phone(portal, browser_factory):
    url = portal.url
    admin = admin_token(url)
    # A code whose only use is spent before the visitor arrives: refused at the door.
    spent = new_otp(url, admin, 1)
    token = otp_token(url, spent["code"])
    assert call(url, "POST", "/api/agents/access", {"agent_type": "hospital"}, token)[0] == 200
    b = browser_factory(width=390, height=844, mobile=True)
    d = b.driver
    enter_code(d, url, spent["code"])
    msg = wait_for(lambda: visible_text(d, "#code-error"), what="exhausted message")
    assert msg == "This code has been used up: it has no uses left. Please ask for a new code."
    assert horizontal_overflow(d) <= 0
    b.screenshot("visitor-06-phone-exhausted")

    # A code that runs out while the visitor is choosing: refused on the card.
    last = new_otp(url, admin, 1)
    enter_code(d, url, last["code"])
    wait_for(lambda: css(d, "#agent-list .agent-card"), what="agent cards")
    assert horizontal_overflow(d) <= 0
    b.screenshot("visitor-07-phone-agents")
    token = otp_token(url, last["code"])
    assert call(url, "POST", "/api/agents/access", {"agent_type": "realestate"}, token)[0] == 200
    one(d, '.agent-card[data-agent="hospital"] button').click()
    msg = wait_for(lambda: visible_text(d, "#agents-alert"), what="exhausted on the card")
    assert "used up" in msg and "no uses left" in msg
    assert one(d, "#uses-left").get_attribute("data-remaining") == "0"
    assert one(d, "#uses-left").text == "No uses left"  # "on this code" only on wider screens
    b.screenshot("visitor-08-phone-used-up")


def test_no_free_worker_is_explained_and_the_use_kept(browser_factory):
    from conftest import _stacks
    cluster = PgCluster()
    s = Stack(cluster).start()  # no voice worker at all
    _stacks.append(s)  # its logs are checked for sanitizer reports at the end
    try:
        admin = admin_token(s.url)
        otp = new_otp(s.url, admin, 3)
        b = browser_factory(width=390, height=844, mobile=True)
        d = b.driver
        enter_code(d, s.url, otp["code"])
        wait_for(lambda: css(d, "#agent-list .agent-card"), what="agent cards")[0]
        one(d, '.agent-card[data-agent="hospital"] button').click()
        msg = wait_for(lambda: visible_text(d, "#talk-alert"), timeout=15, what="busy message")
        assert "busy" in msg and "no free voice worker" in msg, msg
        assert one(d, "#view-talk").get_attribute("data-closed") == "busy"
        b.screenshot("visitor-09-phone-no-worker")
        # "Try again" reuses the grant that was handed back: still refused, no use spent.
        buttons = css(d, "#talk-alert-buttons button")
        assert buttons[0].text == "Try again"
        buttons[0].click()
        wait_for(lambda: "busy" in visible_text(d, "#talk-alert"), timeout=15, what="busy again")
        status, listed = call(s.url, "GET", "/api/otps", token=admin)
        assert [o["used_count"] for o in listed if o["id"] == otp["id"]] == [1]
    finally:
        s.stop()
        cluster.destroy()
