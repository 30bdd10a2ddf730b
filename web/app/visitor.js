// The visitor page (/): enter a code, pick an agent, talk to it.
import { request, tokenStore, ApiError } from './api.js';
import { $, h, setAlert, plural } from './ui.js';
import { VoiceSession } from './voice.js';

const store = tokenStore('visitor');
const views = { code: $('#view-code'), agents: $('#view-agents'), talk: $('#view-talk') };
const STATE_TEXT = {
    connecting: ['Connecting…', 'Setting up the microphone and the line to the agent.'],
    reconnecting: ['Reconnecting…', 'The connection dropped. Picking the conversation up where it was.'],
    listening: ['Listening', 'Go ahead and speak, or type below.'],
    thinking: ['Thinking…', 'The agent is preparing an answer.'],
    speaking: ['Agent is speaking', 'Start speaking at any time to interrupt.'],
    ended: ['Conversation ended', 'Start again or choose another agent.'],
};

let agents = [];
let session = null;
let current = null; // the agent being talked to
let remaining = null;
let playedTotal = new Map(); // turn -> played ms

function showView(name) {
    for (const [key, el] of Object.entries(views)) el.hidden = key !== name;
    $('#session-bar').hidden = name === 'code';
    document.body.dataset.view = name;
}

function focusHeading(view) {
    const heading = views[view].querySelector('h1');
    if (heading) {
        heading.tabIndex = -1;
        heading.focus({ preventScroll: false });
    }
}

function setRemaining(n) {
    remaining = n;
    const pill = $('#uses-left');
    if (n === null || n === undefined) {
        pill.hidden = true;
        return;
    }
    pill.hidden = false;
    pill.replaceChildren(n === 0 ? 'No uses left' : `${plural(n, 'use')} left`, h('span', { class: 'hide-small' }, ' on this code'));
    pill.dataset.remaining = String(n);
    pill.classList.toggle('pill-warn', n <= 1);
}

// ---- code ---------------------------------------------------------------------------

async function submitCode(event) {
    event.preventDefault();
    const input = $('#code-input');
    const code = input.value.replace(/\s+/g, '');
    const error = $('#code-error');
    if (!/^\d{6}$/.test(code)) {
        setAlert(error, 'Please enter the 6-digit code.');
        input.setAttribute('aria-invalid', 'true');
        input.focus();
        return;
    }
    input.removeAttribute('aria-invalid');
    setAlert(error, '');
    const button = $('#code-submit');
    button.disabled = true;
    button.textContent = 'Checking…';
    try {
        const body = await request('/api/auth/login/otp', { json: { otp_code: code } });
        store.set(body.access_token);
        setRemaining(null);
        input.value = '';
        await openAgents();
    } catch (err) {
        setAlert(error, codeMessage(err));
        input.setAttribute('aria-invalid', 'true');
        input.focus();
        input.select();
    } finally {
        button.disabled = false;
        button.textContent = 'Continue';
    }
}

function codeMessage(err) {
    if (!(err instanceof ApiError)) return 'Something went wrong. Please try again.';
    const detail = err.body && typeof err.body.detail === 'string' ? err.body.detail : '';
    if (err.status === 401) return 'That code was not recognised. Check the digits and try again.';
    if (err.status === 403 && /remaining/i.test(detail)) return 'This code has been used up: it has no uses left. Please ask for a new code.';
    if (err.status === 403 && /inactive/i.test(detail)) return 'This code has been deactivated. Please ask for a new code.';
    return err.message;
}

function signOut(message) {
    if (session) session.end();
    session = null;
    store.set(null);
    setRemaining(null);
    showView('code');
    setAlert($('#code-error'), message || '', 'info');
    $('#code-input').focus();
}

// ---- agents -------------------------------------------------------------------------

async function openAgents() {
    showView('agents');
    const list = $('#agent-list');
    const alert = $('#agents-alert');
    setAlert(alert, '');
    list.setAttribute('aria-busy', 'true');
    try {
        agents = await request('/api/agents/list', { token: store.get() });
    } catch (err) {
        if (err instanceof ApiError && err.status === 401) {
            signOut('Your code session has expired. Please enter your code again.');
            return;
        }
        setAlert(alert, err.message);
        return;
    } finally {
        list.setAttribute('aria-busy', 'false');
    }
    list.replaceChildren(...agents.map((a, i) => agentCard(a, i)));
    if (!agents.length) setAlert(alert, 'No agents are configured yet.', 'info');
    focusHeading('agents');
}

function initials(name) {
    return name
        .split(/\s+/)
        .filter(Boolean)
        .slice(0, 2)
        .map((w) => w[0].toUpperCase())
        .join('');
}

function agentCard(agent, index) {
    const titleId = `agent-${agent.id}-name`;
    const avatar = h('span', { class: 'avatar', 'aria-hidden': 'true', dataset: { hue: String(index % 6) } }, initials(agent.name || agent.id));
    return h(
        'li',
        { class: 'card agent-card', dataset: { agent: agent.id } },
        h('div', { class: 'agent-card-head' }, avatar, h('h2', { id: titleId }, agent.name || agent.id)),
        h('p', { class: 'agent-desc' }, agent.description || ''),
        h(
            'button',
            { type: 'button', class: 'btn btn-primary', 'aria-describedby': titleId, onclick: (e) => pickAgent(agent, e.currentTarget) },
            'Start conversation',
        ),
    );
}

async function pickAgent(agent, button) {
    const alert = $('#agents-alert');
    setAlert(alert, '');
    button.disabled = true;
    const label = button.textContent;
    button.textContent = 'Connecting…';
    try {
        const grant = await request('/api/agents/access', { json: { agent_type: agent.id }, token: store.get() });
        if (typeof grant.remaining_uses === 'number') setRemaining(grant.remaining_uses);
    } catch (err) {
        button.disabled = false;
        button.textContent = label;
        if (err instanceof ApiError && err.status === 401) {
            signOut('Your code is no longer valid. Please enter a code again.');
            return;
        }
        if (err instanceof ApiError && err.status === 403) {
            setRemaining(0);
            setAlert(alert, /inactive/i.test(err.body?.detail || '') ? 'This code has been deactivated. Please ask for a new code.' : 'This code has been used up: it has no uses left. Please ask for a new code.');
            return;
        }
        setAlert(alert, err.message);
        return;
    }
    button.disabled = false;
    button.textContent = label;
    await startTalk(agent);
}

// ---- talk ---------------------------------------------------------------------------

function resetTalk(agent) {
    $('#talk-title').textContent = agent.name || agent.id;
    $('#talk-desc').textContent = agent.description || '';
    $('#transcript').replaceChildren();
    hideTalkAlert();
    $('#mic-note').hidden = true;
    $('#mute').setAttribute('aria-pressed', 'false');
    $('#mute').textContent = 'Mute microphone';
    $('#mute').disabled = false;
    $('#end-call').disabled = false;
    views.talk.dataset.audioMs = '0';
    views.talk.dataset.agent = agent.id;
    delete views.talk.dataset.sessionId;
    playedTotal = new Map();
    setComposer(false);
    setState('connecting');
}

async function startTalk(agent) {
    current = agent;
    showView('talk');
    resetTalk(agent);
    focusHeading('talk');
    if (session) session.end();
    session = new VoiceSession({ token: store.get(), agent: agent.id, onevent: onVoiceEvent });
    try {
        await session.start();
    } catch (err) {
        setState('ended');
        showTalkAlert(err.message || 'The conversation could not be started.', 'error', ['agents']);
    }
}

function setComposer(enabled) {
    $('#text-input').disabled = !enabled;
    $('#text-send').disabled = !enabled;
}

function setState(state) {
    const box = $('#voice-status');
    box.dataset.state = state;
    const [label, hint] = STATE_TEXT[state] || STATE_TEXT.listening;
    $('#status-label').textContent = label;
    $('#status-hint').textContent = state === 'listening' && session && session.muted ? 'Your microphone is muted. Type below, or unmute to speak.' : hint;
    $('#stop-agent').disabled = state !== 'speaking';
}

function onVoiceEvent(type, d) {
    switch (type) {
        case 'state':
            setState(d.state);
            break;
        case 'session':
            views.talk.dataset.sessionId = d.sessionId;
            setComposer(true);
            if (d.resumed) {
                hideTalkAlert();
                addNote('Reconnected — the conversation continues.');
            }
            break;
        case 'reconnecting':
            setComposer(false);
            showTalkAlert('The connection was lost. Reconnecting…', 'info', []);
            break;
        case 'mic':
            if (!d.available) {
                const note = $('#mic-note');
                note.textContent = d.error;
                note.hidden = false;
                $('#mute').disabled = true;
            }
            break;
        case 'transcript':
            visitorLine(d.turn, d.text, d.final);
            break;
        case 'agent-text':
            agentLine(d.turn, d.text, d.final);
            break;
        case 'agent-played':
            agentPlayed(d.turn, d.playedMs);
            break;
        case 'interrupted': {
            const li = agentItem(d.turn, false);
            if (li) {
                li.classList.add('interrupted');
                li.querySelector('.msg-meta').textContent = 'Interrupted';
            }
            break;
        }
        case 'level':
            meter('#mic-meter', d.mic);
            meter('#out-meter', d.out);
            break;
        case 'error':
            if (d.code === 'llm_error' || d.code === 'llm_timeout') addNote('The agent had trouble answering; it may apologise and ask you to repeat.');
            else if (d.code !== 'invalid_event') addNote(d.message || 'The voice service reported an error.');
            break;
        case 'closed':
            onClosed(d);
            break;
        default:
            break;
    }
}

function meter(sel, level) {
    const el = $(sel);
    const pct = Math.min(100, Math.round(Math.sqrt(level || 0) * 160));
    el.firstElementChild.style.width = `${pct}%`;
    el.setAttribute('aria-valuenow', String(pct));
}

function onClosed(d) {
    setComposer(false);
    $('#stop-agent').disabled = true;
    $('#mute').disabled = true;
    $('#end-call').disabled = true;
    meter('#mic-meter', 0);
    meter('#out-meter', 0);
    views.talk.dataset.closed = d.kind;
    switch (d.kind) {
        case 'ended':
            showTalkAlert(d.message, 'info', ['again', 'agents']);
            break;
        case 'exhausted':
            setRemaining(0);
            showTalkAlert('This code has been used up: it has no conversations left. Please ask for a new code.', 'error', ['code']);
            break;
        case 'busy':
            showTalkAlert(d.message, 'warn', ['retry', 'agents']);
            break;
        case 'too-many':
            showTalkAlert(d.message, 'warn', ['retry', 'agents']);
            break;
        case 'unauthorized':
            signOut(d.message);
            break;
        default:
            showTalkAlert(d.message, 'error', ['again', 'agents']);
    }
}

const ACTIONS = {
    retry: ['Try again', () => retrySameGrant()],
    again: ['Start a new conversation', () => current && pickAgentFromTalk()],
    agents: ['Choose another agent', () => leaveTalk()],
    code: ['Enter another code', () => signOut('')],
};

function showTalkAlert(text, kind, actions) {
    const box = $('#talk-alert');
    $('#talk-alert-text').textContent = text;
    box.dataset.kind = kind;
    $('#talk-alert-buttons').replaceChildren(
        ...actions.map((a, i) => h('button', { type: 'button', class: `btn ${i === 0 ? 'btn-primary' : 'btn-secondary'} btn-small`, onclick: ACTIONS[a][1] }, ACTIONS[a][0])),
    );
    box.hidden = false;
}

function hideTalkAlert() {
    $('#talk-alert').hidden = true;
}

// After "no free worker" the grant was handed back: connect again without spending a use.
async function retrySameGrant() {
    if (!current) return;
    const agent = current;
    showView('talk');
    resetTalk(agent);
    session = new VoiceSession({ token: store.get(), agent: agent.id, onevent: onVoiceEvent });
    try {
        await session.start();
    } catch (err) {
        showTalkAlert(err.message, 'error', ['agents']);
    }
}

async function pickAgentFromTalk() {
    const agent = current;
    hideTalkAlert();
    try {
        const grant = await request('/api/agents/access', { json: { agent_type: agent.id }, token: store.get() });
        if (typeof grant.remaining_uses === 'number') setRemaining(grant.remaining_uses);
    } catch (err) {
        if (err instanceof ApiError && err.status === 403) {
            setRemaining(0);
            showTalkAlert('This code has been used up: it has no uses left. Please ask for a new code.', 'error', ['code']);
        } else if (err instanceof ApiError && err.status === 401) {
            signOut('Your code is no longer valid. Please enter a code again.');
        } else {
            showTalkAlert(err.message, 'error', ['again', 'agents']);
        }
        return;
    }
    await startTalk(agent);
}

function leaveTalk() {
    if (session) session.end();
    session = null;
    openAgents();
}

// ---- transcript ---------------------------------------------------------------------

function scrollDown() {
    const list = $('#transcript');
    list.scrollTop = list.scrollHeight;
}

function message(role, turn, text, extra) {
    const li = h(
        'li',
        { class: `msg msg-${role}`, dataset: { turn: String(turn), ...extra } },
        h('span', { class: 'msg-who' }, role === 'agent' ? (current && current.name) || 'Agent' : 'You'),
        h('p', { class: 'msg-text' }, text),
        h('span', { class: 'msg-meta' }),
    );
    $('#transcript').append(li);
    return li;
}

function visitorLine(turn, text, final) {
    let li = $(`#transcript .msg-visitor[data-turn="${turn}"]`);
    if (!li) {
        if (!text && !final) return;
        li = message('visitor', turn, text, { final: 'false' });
        // An agent reply already shown for a later turn stays below; keep order by turn.
    }
    li.querySelector('.msg-text').textContent = text;
    li.dataset.final = final ? 'true' : 'false';
    li.classList.toggle('partial', !final);
    li.setAttribute('aria-hidden', final ? 'false' : 'true');
    li.querySelector('.msg-meta').textContent = final ? '' : 'hearing you…';
    clearTimeout(li._stale);
    if (!final) li._stale = setTimeout(() => li.dataset.final === 'false' && li.remove(), 6000);
    scrollDown();
}

function agentItem(turn, create) {
    let li = $(`#transcript .msg-agent[data-turn="${turn}"]`);
    if (!li && create) li = message('agent', turn, '', { playedMs: '0', final: 'false' });
    return li;
}

function agentLine(turn, text, final) {
    const li = agentItem(turn, true);
    const p = li.querySelector('.msg-text');
    p.textContent = final ? text : p.textContent + text;
    li.dataset.final = final ? 'true' : 'false';
    scrollDown();
}

function agentPlayed(turn, playedMs) {
    const prev = playedTotal.get(turn) || 0;
    if (playedMs > prev) playedTotal.set(turn, playedMs);
    let total = 0;
    for (const v of playedTotal.values()) total += v;
    views.talk.dataset.audioMs = String(total);
    const li = agentItem(turn, false);
    if (li && playedMs > Number(li.dataset.playedMs || 0)) li.dataset.playedMs = String(playedMs);
}

function addNote(text) {
    $('#transcript').append(h('li', { class: 'msg msg-note' }, text));
    scrollDown();
}

// ---- wiring -------------------------------------------------------------------------

function sendTyped(event) {
    event.preventDefault();
    const input = $('#text-input');
    const text = input.value.trim();
    if (!text || !session) return;
    if (session.sendText(text)) {
        const li = message('visitor', `typed-${Date.now()}`, text, { final: 'true', typed: 'true' });
        li.querySelector('.msg-meta').textContent = 'typed';
        input.value = '';
        scrollDown();
    }
}

function toggleMute() {
    if (!session) return;
    const btn = $('#mute');
    const muted = btn.getAttribute('aria-pressed') !== 'true';
    session.setMuted(muted);
    btn.setAttribute('aria-pressed', String(muted));
    btn.textContent = muted ? 'Unmute microphone' : 'Mute microphone';
    setState($('#voice-status').dataset.state);
}

function init() {
    $('#code-form').addEventListener('submit', submitCode);
    $('#code-input').addEventListener('input', (e) => {
        e.target.value = e.target.value.replace(/\D+/g, '').slice(0, 6);
    });
    $('#sign-out').addEventListener('click', () => signOut(''));
    $('#back-to-agents').addEventListener('click', leaveTalk);
    $('#text-form').addEventListener('submit', sendTyped);
    $('#mute').addEventListener('click', toggleMute);
    $('#stop-agent').addEventListener('click', () => session && session.interrupt());
    $('#end-call').addEventListener('click', () => session && session.end());
    window.addEventListener('pagehide', () => session && session.end());
    if (store.get()) openAgents();
    else {
        showView('code');
        $('#code-input').focus();
    }
}

init();
