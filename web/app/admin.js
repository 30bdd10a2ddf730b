// The admin dashboard (/admin): sign in, traffic with live charts, access codes, usage,
// password change. Talks to the public REST API only (API.md).
import { request, tokenStore, ApiError } from './api.js';
import { $, h, setAlert, toast, formatDate, formatTime, relativeTime, formatDuration, plural, copyText, confirmDialog } from './ui.js';
import { barChart } from './chart.js';

const store = tokenStore('admin');
const userStore = tokenStore('admin-user');
const TABS = ['overview', 'codes', 'usage', 'account'];
const LIVE_MS = 5000;
const HOUR = 3600 * 1000;

const state = {
    agents: [],
    codes: { offset: 0, limit: 25, activeOnly: false, fresh: new Set() },
    usage: { offset: 0, limit: 25, agent: '', since: '' },
    timer: 0,
    tab: 'overview',
};

// ---- API with the admin token -------------------------------------------------------

async function api(path, opts = {}) {
    try {
        return await request(path, { ...opts, token: store.get() });
    } catch (err) {
        if (err instanceof ApiError && err.status === 401 && !opts.keep401) {
            signOut('Your session has expired. Please sign in again.');
        }
        throw err;
    }
}

// ---- sign in / out ------------------------------------------------------------------

async function login(event) {
    event.preventDefault();
    const username = $('#login-username').value.trim();
    const password = $('#login-password').value;
    const alert = $('#login-error');
    if (!username || !password) {
        setAlert(alert, 'Please enter your username and password.');
        (username ? $('#login-password') : $('#login-username')).focus();
        return;
    }
    setAlert(alert, '');
    const button = $('#login-submit');
    button.disabled = true;
    button.textContent = 'Signing in…';
    try {
        const body = await request('/api/auth/login/admin', { form: { username, password } });
        store.set(body.access_token);
        userStore.set(username);
        $('#login-password').value = '';
        await enterDashboard();
    } catch (err) {
        setAlert(alert, err.status === 401 ? 'Incorrect username or password.' : err.message);
        $('#login-password').select();
        $('#login-password').focus();
    } finally {
        button.disabled = false;
        button.textContent = 'Sign in';
    }
}

function signOut(message) {
    store.set(null);
    clearInterval(state.timer);
    state.timer = 0;
    $('#view-dash').hidden = true;
    $('#admin-bar').hidden = true;
    $('#view-login').hidden = false;
    document.body.dataset.view = 'login';
    setAlert($('#login-error'), message || '', 'info');
    $('#login-username').value = userStore.get() || '';
    ($('#login-username').value ? $('#login-password') : $('#login-username')).focus();
}

async function enterDashboard() {
    $('#view-login').hidden = true;
    $('#view-dash').hidden = false;
    $('#admin-bar').hidden = false;
    $('#admin-user').textContent = `Signed in as ${userStore.get() || 'admin'}`;
    document.body.dataset.view = 'dashboard';
    try {
        state.agents = await api('/api/agents/list');
    } catch {
        state.agents = [];
    }
    const select = $('#usage-agent');
    select.replaceChildren(h('option', { value: '' }, 'All agents'), ...state.agents.map((a) => h('option', { value: a.id }, a.name || a.id)));
    select.value = state.usage.agent;
    route();
    if (!state.timer) state.timer = setInterval(tick, LIVE_MS);
}

// ---- tabs ---------------------------------------------------------------------------

function route() {
    const tab = TABS.includes(location.hash.slice(1)) ? location.hash.slice(1) : 'overview';
    state.tab = tab;
    for (const t of TABS) {
        $(`#panel-${t}`).hidden = t !== tab;
        const link = $(`.tab[data-tab="${t}"]`);
        if (t === tab) link.setAttribute('aria-current', 'page');
        else link.removeAttribute('aria-current');
    }
    document.body.dataset.tab = tab;
    document.title = `${$(`.tab[data-tab="${tab}"]`).textContent} · Admin · Voice Agent Portal`;
    if (tab === 'overview') loadOverview();
    if (tab === 'codes') loadCodes();
    if (tab === 'usage') loadUsage();
}

function tick() {
    if (document.visibilityState !== 'visible' || !store.get()) return;
    if (state.tab === 'overview') loadOverview();
    if (state.tab === 'usage' && state.usage.offset === 0) loadUsage(true);
}

// ---- traffic ------------------------------------------------------------------------

function agentName(id) {
    const a = state.agents.find((x) => x.id === id);
    return a ? a.name || id : id;
}

function hourLabel(ms) {
    return new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
}

async function loadOverview() {
    const alert = $('#overview-alert');
    let totals;
    let hourly;
    try {
        [totals, hourly] = await Promise.all([api('/api/agents/traffic'), api('/api/agents/traffic?bucket=hour')]);
    } catch (err) {
        setAlert(alert, err.message);
        $('#live-text').textContent = 'Not updating';
        $('#live-indicator').dataset.live = 'false';
        return;
    }
    setAlert(alert, '');
    $('#live-indicator').dataset.live = 'true';
    $('#live-text').textContent = `Live · updated ${formatTime(new Date())}`;
    renderStats(totals);
    renderAgentTraffic(totals, hourly);
}

function stat(label, value, id) {
    return h('div', { class: 'card stat', dataset: { stat: id, value: String(value) } }, h('span', { class: 'stat-label' }, label), h('span', { class: 'stat-value' }, String(value)));
}

function renderStats(totals) {
    const sum = (k) => totals.reduce((a, r) => a + (r[k] || 0), 0);
    const minutes = Math.round(sum('total_session_seconds') / 6) / 10;
    $('#stat-grid').replaceChildren(
        stat('Accesses', sum('total_accesses'), 'accesses'),
        stat('Unique visitors', sum('unique_users'), 'visitors'),
        stat('Voice sessions', sum('total_sessions'), 'sessions'),
        stat('Session minutes', minutes, 'minutes'),
    );
}

function renderAgentTraffic(totals, hourly) {
    const now = Date.now();
    const last = Math.floor(now / HOUR) * HOUR;
    const hours = Array.from({ length: 24 }, (_, i) => last - (23 - i) * HOUR);
    const byKey = new Map(hourly.map((r) => [`${r.agent_type}@${new Date(r.hour).getTime()}`, r]));
    const cards = totals.map((row) => {
        const series = (pick) =>
            hours.map((t, i) => {
                const r = byKey.get(`${row.agent_type}@${t}`);
                return { value: r ? pick(r) : 0, label: i % 6 === 5 ? hourLabel(t) : '', tip: `${hourLabel(t)}–${hourLabel(t + HOUR)}` };
            });
        const minutes = Math.round((row.total_session_seconds || 0) / 6) / 10;
        return h(
            'article',
            {
                class: 'card traffic-card',
                dataset: { agent: row.agent_type, accesses: String(row.total_accesses), sessions: String(row.total_sessions), seconds: String(row.total_session_seconds) },
                'aria-labelledby': `traffic-${row.agent_type}`,
            },
            h(
                'header',
                { class: 'traffic-head' },
                h('h2', { id: `traffic-${row.agent_type}` }, agentName(row.agent_type)),
                h('span', { class: 'muted' }, row.last_accessed ? `Last access ${relativeTime(row.last_accessed, now)}` : 'No access yet'),
            ),
            h(
                'dl',
                { class: 'kv' },
                h('div', {}, h('dt', {}, 'Accesses'), h('dd', {}, String(row.total_accesses))),
                h('div', {}, h('dt', {}, 'Unique visitors'), h('dd', {}, String(row.unique_users))),
                h('div', {}, h('dt', {}, 'Sessions'), h('dd', {}, String(row.total_sessions))),
                h('div', {}, h('dt', {}, 'Minutes'), h('dd', {}, String(minutes))),
            ),
            h(
                'div',
                { class: 'chart-pair' },
                barChart({ points: series((r) => r.total_accesses), title: 'Accesses per hour', unit: ['access', 'accesses'], integer: true, variant: 'a' }),
                barChart({ points: series((r) => Math.round((r.total_session_seconds / 60) * 10) / 10), title: 'Session minutes per hour', unit: ['min', 'min'], variant: 'b' }),
            ),
        );
    });
    $('#agent-traffic').replaceChildren(...cards);
}

// ---- codes --------------------------------------------------------------------------

async function loadCodes(quiet) {
    const c = state.codes;
    const alert = $('#codes-alert');
    const q = new URLSearchParams({ limit: String(c.limit + 1), offset: String(c.offset) });
    if (c.activeOnly) q.set('active', 'true');
    let rows;
    try {
        rows = await api(`/api/otps?${q}`);
    } catch (err) {
        if (!quiet) setAlert(alert, err.message);
        return;
    }
    setAlert(alert, '');
    const more = rows.length > c.limit;
    rows = rows.slice(0, c.limit);
    const body = $('#codes-body');
    if (!rows.length) {
        body.replaceChildren(h('tr', {}, h('td', { colspan: 6, class: 'empty' }, c.offset ? 'No more codes.' : 'No codes yet. Create some above.')));
    } else {
        body.replaceChildren(...rows.map(codeRow));
    }
    $('#codes-range').textContent = rows.length ? `Codes ${c.offset + 1}–${c.offset + rows.length}` : '';
    $('#codes-prev').disabled = c.offset === 0;
    $('#codes-next').disabled = !more;
}

function codeStatus(otp) {
    if (!otp.is_active) return ['Inactive', 'badge-muted'];
    if (otp.remaining_uses <= 0) return ['Used up', 'badge-warn'];
    return ['Active', 'badge-ok'];
}

function usesCell(otp) {
    const pct = otp.max_uses ? Math.round((100 * otp.used_count) / otp.max_uses) : 0;
    const bar = h('span', { class: 'usebar', 'aria-hidden': 'true' }, h('span', {}));
    bar.firstChild.style.width = `${pct}%`;
    return h(
        'div',
        { class: 'uses' },
        h('span', { class: 'uses-left' }, h('strong', {}, String(otp.remaining_uses)), ' left'),
        bar,
        h('span', { class: 'muted tiny' }, `${otp.used_count} of ${otp.max_uses} used`),
    );
}

function codeRow(otp) {
    const [statusText, statusClass] = codeStatus(otp);
    const tr = h('tr', { dataset: { id: String(otp.id), code: otp.code, remaining: String(otp.remaining_uses), maxUses: String(otp.max_uses), active: String(otp.is_active) }, class: state.codes.fresh.has(otp.id) ? 'fresh' : null });
    const usesTd = h('td', { class: 'uses-td', 'data-label': 'Uses' }, usesCell(otp));
    const actions = h(
        'div',
        { class: 'row-actions' },
        h('button', { type: 'button', class: 'btn btn-ghost btn-small', 'data-action': 'edit', 'aria-label': `Edit maximum uses of code ${otp.code}`, onclick: () => editUses(tr, usesTd, otp) }, 'Edit uses'),
        h(
            'button',
            { type: 'button', class: 'btn btn-ghost btn-small', 'data-action': 'toggle', 'aria-label': `${otp.is_active ? 'Deactivate' : 'Activate'} code ${otp.code}`, onclick: (e) => toggleActive(otp, e.currentTarget) },
            otp.is_active ? 'Deactivate' : 'Activate',
        ),
        h('button', { type: 'button', class: 'btn btn-ghost btn-small btn-danger-text', 'data-action': 'delete', 'aria-label': `Delete code ${otp.code}`, onclick: () => deleteCode(otp) }, 'Delete'),
    );
    tr.append(
        h(
            'td',
            { class: 'code-td', 'data-label': 'Code' },
            h('code', { class: 'otp-code' }, otp.code),
            h(
                'button',
                {
                    type: 'button',
                    class: 'btn btn-icon',
                    'data-action': 'copy',
                    'aria-label': `Copy code ${otp.code}`,
                    title: 'Copy code',
                    onclick: async () => toast((await copyText(otp.code)) ? `Code ${otp.code} copied` : 'Could not copy; select the code and copy it by hand', 'ok'),
                },
                copyIcon(),
            ),
        ),
        usesTd,
        h('td', { 'data-label': 'Status' }, h('span', { class: `badge ${statusClass}` }, statusText)),
        h('td', { class: 'nowrap', 'data-label': 'Created' }, formatDate(otp.created_at)),
        h('td', { class: 'nowrap', 'data-label': 'Last used' }, otp.last_used_at ? relativeTime(otp.last_used_at) : 'never'),
        h('td', { class: 'actions-td' }, actions),
    );
    return tr;
}

function copyIcon() {
    return h(
        'svg:svg',
        { viewBox: '0 0 24 24', 'aria-hidden': 'true', focusable: 'false', class: 'icon' },
        h('svg:rect', { x: 9, y: 9, width: 11, height: 11, rx: 2 }),
        h('svg:path', { d: 'M5 15H4a1 1 0 0 1-1-1V4a1 1 0 0 1 1-1h10a1 1 0 0 1 1 1v1' }),
    );
}

function editUses(tr, td, otp) {
    if (tr.classList.contains('editing')) return;
    tr.classList.add('editing');
    const inputId = `uses-${otp.id}`;
    const input = h('input', { id: inputId, type: 'number', class: 'input input-num input-small', min: String(Math.max(1, otp.used_count)), max: '100000', value: String(otp.max_uses) });
    const error = h('p', { class: 'field-error', role: 'alert', hidden: true });
    const cancel = () => {
        tr.classList.remove('editing');
        td.replaceChildren(usesCell(otp));
        tr.querySelector('[data-action="edit"]').focus();
    };
    const save = async () => {
        const n = Number(input.value);
        if (!Number.isInteger(n) || n < Math.max(1, otp.used_count) || n > 100000) {
            error.textContent = `Enter a whole number from ${Math.max(1, otp.used_count)} to 100000 (it cannot be below the ${otp.used_count} uses already spent).`;
            error.hidden = false;
            input.focus();
            return;
        }
        try {
            const updated = await api(`/api/otps/${otp.id}`, { method: 'PUT', json: { max_uses: n } });
            toast(`Code ${otp.code} now allows ${plural(updated.max_uses, 'use')}`, 'ok');
            tr.classList.remove('editing');
            await loadCodes();
            const row = document.querySelector(`#codes-body tr[data-id="${otp.id}"] [data-action="edit"]`);
            if (row) row.focus();
        } catch (err) {
            error.textContent = err.message;
            error.hidden = false;
        }
    };
    input.addEventListener('keydown', (e) => {
        if (e.key === 'Enter') {
            e.preventDefault();
            save();
        } else if (e.key === 'Escape') {
            e.preventDefault();
            cancel();
        }
    });
    td.replaceChildren(
        h(
            'div',
            { class: 'inline-edit' },
            h('label', { for: inputId, class: 'visually-hidden' }, `Maximum uses of code ${otp.code}`),
            input,
            h('button', { type: 'button', class: 'btn btn-primary btn-small', 'data-action': 'save', onclick: save }, 'Save'),
            h('button', { type: 'button', class: 'btn btn-ghost btn-small', onclick: cancel }, 'Cancel'),
        ),
        error,
    );
    input.focus();
    input.select();
}

async function toggleActive(otp, button) {
    button.disabled = true;
    try {
        await api(`/api/otps/${otp.id}`, { method: 'PUT', json: { is_active: !otp.is_active } });
        toast(otp.is_active ? `Code ${otp.code} deactivated; its visitors are signed out` : `Code ${otp.code} is active again`, 'ok');
        await loadCodes();
    } catch (err) {
        button.disabled = false;
        setAlert($('#codes-alert'), err.message);
    }
}

async function deleteCode(otp) {
    const ok = await confirmDialog({
        title: `Delete code ${otp.code}?`,
        body: 'Visitors using it are signed out at once and the code stops working for good. Its usage history is kept.',
        confirm: 'Delete code',
        danger: true,
    });
    if (!ok) return;
    try {
        await api(`/api/otps/${otp.id}`, { method: 'DELETE' });
        toast(`Code ${otp.code} deleted`, 'ok');
        await loadCodes();
    } catch (err) {
        setAlert($('#codes-alert'), err.message);
    }
}

async function createCodes(event) {
    event.preventDefault();
    const count = Number($('#create-count').value);
    const uses = Number($('#create-uses').value);
    const alert = $('#create-error');
    const problems = [];
    if (!Number.isInteger(count) || count < 1 || count > 1000) problems.push('How many codes: enter a whole number from 1 to 1000.');
    if (!Number.isInteger(uses) || uses < 1 || uses > 100000) problems.push('Uses per code: enter a whole number from 1 to 100000.');
    if (problems.length) {
        setAlert(alert, problems.join(' '));
        return;
    }
    setAlert(alert, '');
    const button = $('#create-submit');
    button.disabled = true;
    try {
        const created = await api('/api/otps', { method: 'POST', json: { count, max_uses: uses } });
        state.codes.fresh = new Set(created.map((o) => o.id));
        state.codes.offset = 0;
        $('#created-text').textContent = `Created ${plural(created.length, 'code')} with ${plural(uses, 'use')} each:`;
        const chips = created.slice(0, 50).map((o) => h('code', { class: 'otp-code chip' }, o.code));
        if (created.length > 50) chips.push(h('span', { class: 'muted' }, `and ${created.length - 50} more`));
        $('#created-codes').replaceChildren(...chips);
        $('#created').hidden = false;
        $('#created').dataset.codes = created.map((o) => o.code).join(' ');
        await loadCodes();
    } catch (err) {
        setAlert(alert, err.message);
    } finally {
        button.disabled = false;
    }
}

// ---- usage --------------------------------------------------------------------------

async function loadUsage(quiet) {
    const u = state.usage;
    const q = new URLSearchParams({ limit: String(u.limit + 1), offset: String(u.offset) });
    if (u.agent) q.set('agent_type', u.agent);
    if (u.since) q.set('since', u.since);
    const alert = $('#usage-alert');
    let rows;
    try {
        rows = await api(`/api/agents/usage?${q}`);
    } catch (err) {
        if (!quiet) setAlert(alert, err.message);
        return;
    }
    setAlert(alert, '');
    const more = rows.length > u.limit;
    rows = rows.slice(0, u.limit);
    const body = $('#usage-body');
    if (!rows.length) body.replaceChildren(h('tr', {}, h('td', { colspan: 5, class: 'empty' }, u.offset ? 'No more records.' : 'No usage matches these filters yet.')));
    else
        body.replaceChildren(
            ...rows.map((r) =>
                h(
                    'tr',
                    { dataset: { id: String(r.id), agent: r.agent_type, otp: String(r.otp_id ?? ''), session: r.session_id || '' } },
                    h('td', { class: 'nowrap', 'data-label': 'Time' }, formatDate(r.accessed_at)),
                    h('td', { 'data-label': 'Agent' }, agentName(r.agent_type)),
                    h('td', { 'data-label': 'Code id' }, r.otp_id === null || r.otp_id === undefined ? 'admin' : `#${r.otp_id}`),
                    h('td', { 'data-label': 'Session' }, r.session_id ? h('code', { class: 'session-id', title: r.session_id }, shortSession(r.session_id)) : h('span', { class: 'muted' }, 'no session yet')),
                    h('td', { class: 'num', 'data-label': 'Duration' }, formatDuration(r.duration_seconds)),
                ),
            ),
        );
    $('#usage-range').textContent = rows.length ? `Records ${u.offset + 1}–${u.offset + rows.length}` : '';
    $('#usage-prev').disabled = u.offset === 0;
    $('#usage-next').disabled = !more;
}

function shortSession(id) {
    return id.length > 18 ? `${id.slice(0, 8)}…${id.slice(-6)}` : id;
}

function applyUsageFilters(event) {
    event.preventDefault();
    const since = $('#usage-since').value;
    let iso = '';
    if (since) {
        const d = new Date(since);
        if (Number.isNaN(d.getTime())) {
            setAlert($('#usage-alert'), 'Since: enter a valid date and time.');
            return;
        }
        iso = d.toISOString().replace(/\.\d{3}Z$/, 'Z');
    }
    Object.assign(state.usage, { agent: $('#usage-agent').value, since: iso, limit: Number($('#usage-limit').value), offset: 0 });
    loadUsage();
}

// ---- account ------------------------------------------------------------------------

async function changePassword(event) {
    event.preventDefault();
    const current = $('#pw-current').value;
    const next = $('#pw-new').value;
    const again = $('#pw-confirm').value;
    const alert = $('#pw-alert');
    let problem = '';
    if (!current) problem = 'Enter your current password.';
    else if (next.length < 8 || next.length > 128) problem = 'The new password must be 8 to 128 characters long.';
    else if (next === current) problem = 'The new password must differ from the current one.';
    else if (next !== again) problem = 'The two new passwords do not match.';
    if (problem) {
        setAlert(alert, problem);
        return;
    }
    const button = $('#pw-submit');
    button.disabled = true;
    try {
        await api('/api/auth/change-password', { method: 'PUT', json: { current_password: current, new_password: next }, keep401: true });
        // Tokens issued before the change stop working: sign in again with the new one.
        const body = await request('/api/auth/login/admin', { form: { username: userStore.get() || 'admin', password: next } });
        store.set(body.access_token);
        event.target.reset();
        setAlert(alert, 'Password changed. Other sessions of this account have been signed out.', 'ok');
        toast('Password changed', 'ok');
    } catch (err) {
        if (err instanceof ApiError && err.status === 400) setAlert(alert, 'The current password is not correct.');
        else if (err instanceof ApiError && err.status === 401) signOut('Your password was changed. Please sign in with the new password.');
        else setAlert(alert, err.message);
    } finally {
        button.disabled = false;
    }
}

// ---- wiring -------------------------------------------------------------------------

function init() {
    $('#login-form').addEventListener('submit', login);
    $('#sign-out').addEventListener('click', () => signOut('You have signed out.'));
    window.addEventListener('hashchange', () => store.get() && route());
    $('#create-form').addEventListener('submit', createCodes);
    $('#copy-created').addEventListener('click', async () => {
        const codes = ($('#created').dataset.codes || '').split(' ').join('\n');
        toast((await copyText(codes)) ? 'Codes copied' : 'Could not copy; select the codes and copy them by hand', 'ok');
    });
    $('#codes-active-only').addEventListener('change', (e) => {
        state.codes.activeOnly = e.target.checked;
        state.codes.offset = 0;
        loadCodes();
    });
    $('#codes-refresh').addEventListener('click', () => loadCodes());
    $('#codes-prev').addEventListener('click', () => {
        state.codes.offset = Math.max(0, state.codes.offset - state.codes.limit);
        loadCodes();
    });
    $('#codes-next').addEventListener('click', () => {
        state.codes.offset += state.codes.limit;
        loadCodes();
    });
    $('#usage-filters').addEventListener('submit', applyUsageFilters);
    $('#usage-reset').addEventListener('click', () => {
        $('#usage-agent').value = '';
        $('#usage-since').value = '';
        $('#usage-limit').value = '25';
        Object.assign(state.usage, { agent: '', since: '', limit: 25, offset: 0 });
        loadUsage();
    });
    $('#usage-prev').addEventListener('click', () => {
        state.usage.offset = Math.max(0, state.usage.offset - state.usage.limit);
        loadUsage();
    });
    $('#usage-next').addEventListener('click', () => {
        state.usage.offset += state.usage.limit;
        loadUsage();
    });
    $('#password-form').addEventListener('submit', changePassword);
    if (store.get()) enterDashboard();
    else signOut('');
}

init();
