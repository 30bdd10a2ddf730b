// A small SVG bar chart for hourly series (no library). Scales with its container;
// every bar has a tooltip (<title>), and the chart is an image with a text summary
// for screen readers.
import { h } from './ui.js';

const W = 480;
const H = 170;
const PAD = { left: 36, right: 8, top: 12, bottom: 24 };

function niceMax(v, integer) {
    if (integer && v <= 4) return 4; // whole-number ticks for small counts
    if (v <= 0) return 1;
    const p = 10 ** Math.floor(Math.log10(v));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
    return 10 * p;
}

function fmt(v) {
    if (v >= 100 || Number.isInteger(v)) return String(Math.round(v));
    return String(Number(v.toFixed(v < 1 ? 2 : 1)));
}

// barChart({points: [{label, tip, value}], title, unit: [one, many], integer, variant})
// -> <figure>.
export function barChart({ points, title, unit, integer = false, variant = 'a' }) {
    const max = niceMax(Math.max(0, ...points.map((p) => p.value)), integer);
    const units = (v) => (v === 1 ? unit[0] : unit[1]);
    const iw = W - PAD.left - PAD.right;
    const ih = H - PAD.top - PAD.bottom;
    const slot = iw / Math.max(1, points.length);
    const bw = Math.max(2, slot * 0.7);
    const total = points.reduce((a, p) => a + p.value, 0);
    const peak = points.reduce((best, p) => (p.value > best.value ? p : best), { value: -1 });
    const summary = total > 0 ? `${title}: ${fmt(total)} ${units(total)} in total; the busiest hour was ${peak.tip} with ${fmt(peak.value)}.` : `${title}: none in the last 24 hours.`;
    const svg = h('svg:svg', { viewBox: `0 0 ${W} ${H}`, class: `chart chart-${variant}`, role: 'img', 'aria-label': summary, focusable: 'false' });
    for (let i = 0; i <= 4; i++) {
        const v = (max * i) / 4;
        const y = PAD.top + ih - (ih * i) / 4;
        svg.append(h('svg:line', { x1: PAD.left, x2: W - PAD.right, y1: y, y2: y, class: i === 0 ? 'axis' : 'grid' }));
        svg.append(h('svg:text', { x: PAD.left - 6, y: y + 4, class: 'tick', 'text-anchor': 'end' }, fmt(v)));
    }
    points.forEach((p, i) => {
        const x = PAD.left + i * slot + (slot - bw) / 2;
        const bh = p.value > 0 ? Math.max(2, (ih * p.value) / max) : 0;
        const bar = h('svg:rect', { x: x.toFixed(1), y: (PAD.top + ih - bh).toFixed(1), width: bw.toFixed(1), height: bh.toFixed(1), rx: 2, class: 'bar' }, h('svg:title', {}, `${p.tip}: ${fmt(p.value)} ${units(p.value)}`));
        svg.append(bar);
        const last = i === points.length - 1;
        if (p.label) svg.append(h('svg:text', { x: (last ? W - PAD.right : x + bw / 2).toFixed(1), y: H - 6, class: 'tick', 'text-anchor': last ? 'end' : 'middle' }, p.label));
    });
    return h('figure', { class: 'chart-figure', dataset: { total: fmt(total) } }, h('figcaption', {}, h('span', {}, title), h('strong', {}, `${fmt(total)} ${units(total)}`)), svg);
}
