"""Agents are data: adding a file and sending SIGHUP adds an agent; a malformed file is
refused with a message naming the file and the field, and the other agents keep
working."""
import json
import os
import shutil
import signal
import tempfile
import time

import pytest

from stack import REPO, own_stack
from test_agents import admin_token, call


@pytest.fixture
def agents_stack():
    agents = tempfile.mkdtemp(prefix="vap-agents-")
    for name in ("realestate.json", "hospital.json"):
        shutil.copy(os.path.join(REPO, "config", "agents", name), agents)
    try:
        with own_stack(extra_env={"AGENTS_DIR": agents}) as s:
            s.agents_dir = agents
            yield s
    finally:
        shutil.rmtree(agents, ignore_errors=True)


def agent_ids(stack, token):
    status, body = call(stack.url, "GET", "/api/agents/list", token=token)
    assert status == 200
    return {a["id"] for a in body}


def wait_for(predicate, timeout=5.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_sighup_adds_an_agent_and_refuses_a_malformed_one(agents_stack):
    s = agents_stack
    admin = admin_token(s.url)
    assert agent_ids(s, admin) == {"realestate", "hospital"}
    dentist = {
        "id": "dentist", "name": "Dental Clinic", "description": "Books check-ups.",
        "startup_message": "Hello, dental clinic.", "system_prompt": "You book dental visits.",
        "language": "en-US", "voice": "en-US-female-1",
    }
    with open(os.path.join(s.agents_dir, "dentist.json"), "w") as f:
        json.dump(dentist, f)
    broken = dict(dentist, id="broken", end_of_turn_silence_ms="fast")
    with open(os.path.join(s.agents_dir, "broken.json"), "w") as f:
        json.dump(broken, f)
    with open(os.path.join(s.agents_dir, "garbage.json"), "w") as f:
        f.write("{ not json")
    s.kill("gateway", signal.SIGHUP)
    assert wait_for(lambda: "dentist" in agent_ids(s, admin))
    assert agent_ids(s, admin) == {"realestate", "hospital", "dentist"}
    log = s.log_text("gateway")
    assert "broken.json: end_of_turn_silence_ms" in log
    assert "garbage.json: line 1" in log
    status, cfg = call(s.url, "GET", "/api/agents/config/dentist", token=admin)
    assert status == 200 and cfg["startup_message"] == "Hello, dental clinic."
    # the new agent is immediately usable for access, and shows in traffic
    status, _ = call(s.url, "POST", "/api/agents/access", {"agent_type": "dentist"}, admin)
    assert status == 200
    status, traffic = call(s.url, "GET", "/api/agents/traffic", token=admin)
    assert "dentist" in {r["agent_type"] for r in traffic}


def test_secrets_in_agent_files_are_refused(agents_stack):
    s = agents_stack
    admin = admin_token(s.url)
    with open(os.path.join(s.agents_dir, "realestate.json")) as f:
        doc = json.load(f)
    doc["id"] = "leaky"
    doc["claude_api_key"] = "sk-should-not-be-here"
    with open(os.path.join(s.agents_dir, "leaky.json"), "w") as f:
        json.dump(doc, f)
    s.kill("gateway", signal.SIGHUP)
    assert wait_for(lambda: "leaky.json: claude_api_key" in s.log_text("gateway"))
    assert "leaky" not in agent_ids(s, admin)
    assert "sk-should-not-be-here" not in s.log_text("gateway")
