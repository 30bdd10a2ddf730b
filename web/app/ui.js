// Small DOM helpers shared by the visitor page and the admin dashboard.

// h('button', {class: 'btn', onclick: fn}, 'Text', child...) -> element.
// Attributes starting with "on" become listeners; "dataset" and boolean props are set as
// properties; null/false attributes are skipped. Children may be strings, nodes or arrays.
export function h(tag, attrs, ...children) {
    const svg = tag.startsWith('svg:');
    const el = svg ? document.createElementNS('http://www.w3.org/2000/svg', tag.slice(4)) : document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
        if (value === null || value === undefined || value === false) continue;
        if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
        else if (key === 'dataset') Object.assign(el.dataset, value);
        else if (key === 'text') el.textContent = value;
        else if (!svg && (key === 'value' || key === 'checked' || key === 'disabled' || key === 'hidden')) el[key] = value;
        else el.setAttribute(key, value === true ? '' : String(value));
    }
    append(el, children);
    return el;
}

function append(el, children) {
    for (const child of children) {
        if (child === null || child === undefined || child === false) continue;
        if (Array.isArray(child)) append(el, child);
        else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
}

export function $(selector, root = document) {
    return root.querySelector(selector);
}

export function show(el, visible = true) {
    el.hidden = !visible;
}

// Puts a message into an alert box (role=alert) or hides it when text is empty.
export function setAlert(el, text, kind = 'error') {
    el.textContent = text || '';
    el.hidden = !text;
    el.dataset.kind = kind;
}

let toastTimer = 0;
// A short-lived status message at the bottom of the screen (role=status, polite).
export function toast(text, kind = 'info') {
    let el = document.getElementById('toast');
    if (!el) {
        el = h('div', { id: 'toast', class: 'toast', role: 'status', 'aria-live': 'polite' });
        document.body.append(el);
    }
    el.textContent = text;
    el.dataset.kind = kind;
    el.classList.add('visible');
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => el.classList.remove('visible'), 3500);
}

const dateFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const timeFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });

export function formatDate(iso) {
    if (!iso) return '—';
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? '—' : dateFmt.format(d);
}

export function formatTime(date) {
    return timeFmt.format(date);
}

export function relativeTime(iso, now = Date.now()) {
    if (!iso) return 'never';
    const s = Math.round((now - new Date(iso).getTime()) / 1000);
    if (!Number.isFinite(s)) return '—';
    if (s < 45) return 'just now';
    if (s < 90) return '1 minute ago';
    if (s < 3600) return `${Math.round(s / 60)} minutes ago`;
    if (s < 5400) return '1 hour ago';
    if (s < 86400) return `${Math.round(s / 3600)} hours ago`;
    return formatDate(iso);
}

export function formatDuration(seconds) {
    if (seconds === null || seconds === undefined) return '—';
    const s = Math.round(seconds);
    if (s < 60) return `${s} s`;
    const m = Math.floor(s / 60);
    if (m < 60) return `${m} min ${String(s % 60).padStart(2, '0')} s`;
    return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} min`;
}

export function plural(n, one, many = `${one}s`) {
    return `${n} ${n === 1 ? one : many}`;
}

// Copies text to the clipboard; falls back to a hidden textarea where the async
// clipboard is unavailable (plain http on another host). Resolves true on success.
export async function copyText(text) {
    try {
        if (navigator.clipboard && window.isSecureContext) {
            await navigator.clipboard.writeText(text);
            return true;
        }
    } catch {
        /* fall through */
    }
    const area = h('textarea', { class: 'offscreen', 'aria-hidden': 'true', readonly: true });
    area.value = text;
    document.body.append(area);
    area.select();
    let ok = false;
    try {
        ok = document.execCommand('copy');
    } catch {
        ok = false;
    }
    area.remove();
    return ok;
}

// A modal confirmation (<dialog>): resolves true when the confirm button is chosen.
export function confirmDialog({ title, body, confirm = 'Confirm', danger = false }) {
    return new Promise((resolve) => {
        const cancelBtn = h('button', { type: 'button', class: 'btn btn-secondary', value: 'cancel' }, 'Cancel');
        const okBtn = h('button', { type: 'button', class: `btn ${danger ? 'btn-danger' : 'btn-primary'}`, value: 'ok' }, confirm);
        const titleId = `dlg-${Math.random().toString(36).slice(2)}`;
        const dialog = h(
            'dialog',
            { class: 'dialog', 'aria-labelledby': titleId },
            h('h2', { id: titleId }, title),
            h('p', {}, body),
            h('div', { class: 'dialog-actions' }, cancelBtn, okBtn),
        );
        const finish = (result) => {
            dialog.close();
            dialog.remove();
            resolve(result);
        };
        cancelBtn.addEventListener('click', () => finish(false));
        okBtn.addEventListener('click', () => finish(true));
        dialog.addEventListener('cancel', (e) => {
            e.preventDefault();
            finish(false);
        });
        document.body.append(dialog);
        dialog.showModal();
        cancelBtn.focus();
    });
}
