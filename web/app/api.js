// The portal's REST client: fetch with a bearer token, JSON or form bodies, and every
// failure turned into a sentence a person can act on (ApiError.message).

export class ApiError extends Error {
    constructor(status, message, body) {
        super(message);
        this.name = 'ApiError';
        this.status = status;
        this.body = body;
    }
}

const FIELD_NAMES = {
    count: 'Number of codes',
    max_uses: 'Maximum uses',
    is_active: 'Active',
    username: 'Username',
    password: 'Password',
    current_password: 'Current password',
    new_password: 'New password',
    otp_code: 'Code',
    agent_type: 'Agent',
    since: 'Since',
    limit: 'Rows per page',
    offset: 'Offset',
};

function capitalise(text) {
    return text ? text[0].toUpperCase() + text.slice(1) : text;
}

// "must be between 1 and 1000" at ["body", "count"] -> "Number of codes: must be ...".
function describeValidation(items) {
    return items
        .map((item) => {
            const loc = Array.isArray(item.loc) ? item.loc.filter((p) => p !== 'body' && p !== 'query') : [];
            const field = loc.length ? FIELD_NAMES[loc[loc.length - 1]] || String(loc[loc.length - 1]) : '';
            const msg = item.msg || 'is not valid';
            return field ? `${field}: ${msg}` : capitalise(msg);
        })
        .join('. ');
}

// Words for a failed response: the API's own detail when it has one, else the status.
export function describeFailure(status, body, retryAfter) {
    const detail = body && typeof body === 'object' ? body.detail : null;
    if (Array.isArray(detail) && detail.length) return describeValidation(detail);
    if (status === 429) {
        const wait = Number(retryAfter);
        const when = wait > 0 ? ` in ${wait} second${wait === 1 ? '' : 's'}` : ' in a moment';
        return `Too many attempts. Please try again${when}.`;
    }
    if (status === 503 || status === 502 || status === 504)
        return 'The service is temporarily unavailable. Please try again in a moment.';
    if (typeof detail === 'string' && detail) return capitalise(detail.replace(/\.$/, '')) + '.';
    if (status === 401) return 'Your session has expired. Please sign in again.';
    if (status === 403) return 'You are not allowed to do that.';
    if (status === 404) return 'Not found. It may have been deleted.';
    if (status === 413) return 'The request is too large.';
    if (status >= 500) return `The server had a problem (error ${status}). Please try again.`;
    return `The request failed (error ${status}).`;
}

// request(path, {method, json, form, token, signal}) -> parsed JSON (or null).
// Throws ApiError with a readable message; status 0 means the server was not reached.
export async function request(path, opts = {}) {
    const headers = { Accept: 'application/json' };
    let body;
    if (opts.json !== undefined) {
        headers['Content-Type'] = 'application/json';
        body = JSON.stringify(opts.json);
    } else if (opts.form !== undefined) {
        headers['Content-Type'] = 'application/x-www-form-urlencoded';
        body = new URLSearchParams(opts.form).toString();
    }
    if (opts.token) headers.Authorization = `Bearer ${opts.token}`;
    let resp;
    try {
        resp = await fetch(path, {
            method: opts.method || (body !== undefined ? 'POST' : 'GET'),
            headers,
            body,
            signal: opts.signal,
            cache: 'no-store',
            credentials: 'same-origin',
        });
    } catch (err) {
        if (err && err.name === 'AbortError') throw err;
        throw new ApiError(0, 'Cannot reach the server. Check your connection and try again.', null);
    }
    const text = await resp.text();
    let data = null;
    if (text) {
        try {
            data = JSON.parse(text);
        } catch {
            data = text;
        }
    }
    if (!resp.ok) throw new ApiError(resp.status, describeFailure(resp.status, data, resp.headers.get('Retry-After')), data);
    return data;
}

// A token kept for this browser tab only (sessionStorage), under one name per role.
export function tokenStore(name) {
    const key = `vap.${name}.token`;
    return {
        get() {
            try {
                return sessionStorage.getItem(key);
            } catch {
                return null;
            }
        },
        set(value) {
            try {
                if (value) sessionStorage.setItem(key, value);
                else sessionStorage.removeItem(key);
            } catch {
                /* private mode: the token lives in memory only */
            }
        },
    };
}
