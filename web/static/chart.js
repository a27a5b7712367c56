// The price-over-time chart of the watch room, drawn as plain SVG (no library).
//
// x: server time from the start to the (current, possibly extended) end; y: price in yuan.
// Every accepted bid is a dot coloured by its anonymous bidder (供应商N); the current lowest
// price is a step line; the ceiling is dashed; each anti-sniping extension is a marked
// vertical line; the original and current ends are marked.

import { clock, yuan } from './format.js';

const NS = 'http://www.w3.org/2000/svg';
// Distinguishable on white (>= 3:1 against it), also for common colour-vision deficiencies.
const PALETTE = ['#0b4f9c', '#c2410c', '#15803d', '#7e22ce', '#b91c1c', '#0e7490', '#a16207',
  '#be185d'];

function node(tag, attrs = {}, text) {
  const n = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== null && v !== undefined) n.setAttribute(k, String(v));
  if (text !== undefined) n.textContent = text;
  return n;
}

export function colourOf(alias) {
  return PALETTE[(alias - 1) % PALETTE.length];
}

function shortYuan(fen) {
  const text = yuan(fen);
  return text.endsWith('.00') ? text.slice(0, -3) : text;
}

function niceStep(span, count) {
  const raw = span / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * mag >= raw) return m * mag;
  return 10 * mag;
}

/**
 * Draw into `svg`. data: {bids, start_ms, end_ms, original_end_ms, ceiling_fen, window_ms,
 * extensions: [{at_ms, end_ms, n}], now_ms, closed, labels: {ceiling, end, originalEnd,
 * extension(n), window, empty, alias(n)}}.
 */
export function drawChart(svg, data) {
  const keep = [...svg.children].filter((c) => c.tagName === 'title' || c.tagName === 'desc');
  svg.replaceChildren(...keep);
  const width = Math.max(280, svg.clientWidth || 600);
  const height = Math.max(200, svg.clientHeight || 300);
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
  const narrow = width < 480;
  const m = { top: 22, right: narrow ? 12 : 20, bottom: 30, left: narrow ? 66 : 84 };
  const pw = width - m.left - m.right;
  const ph = height - m.top - m.bottom;

  const bids = data.bids;
  const firstAt = bids.length ? bids[0].at_ms : data.start_ms;
  const lastAt = bids.length ? bids[bids.length - 1].at_ms : data.start_ms;
  const x0 = Math.min(data.start_ms, firstAt);
  const x1 = Math.max(data.end_ms, lastAt, x0 + 1000);
  const prices = bids.map((b) => b.price_fen);
  const minPrice = prices.length ? Math.min(...prices) : data.ceiling_fen;
  const span = Math.max(data.ceiling_fen - minPrice, Math.round(data.ceiling_fen * 0.02), 100);
  const y0 = Math.max(0, minPrice - span * 0.12);
  const y1 = data.ceiling_fen + span * 0.08;
  const sx = (t) => m.left + ((t - x0) / (x1 - x0)) * pw;
  const sy = (p) => m.top + (1 - (p - y0) / (y1 - y0)) * ph;

  // y grid and ticks
  const yStep = niceStep(y1 - y0, narrow ? 4 : 5);
  const yAxis = node('g', { class: 'axis y' });
  for (let v = Math.ceil(y0 / yStep) * yStep; v <= y1; v += yStep) {
    const y = sy(v);
    yAxis.append(node('line', { class: 'grid-line', x1: m.left, x2: m.left + pw, y1: y, y2: y }));
    yAxis.append(node('text', { x: m.left - 6, y: y + 4, 'text-anchor': 'end' }, shortYuan(Math.round(v))));
  }
  svg.append(yAxis);

  // x ticks
  const xAxis = node('g', { class: 'axis x' });
  const ticks = narrow ? 3 : 5;
  for (let i = 0; i <= ticks; i += 1) {
    const t = x0 + ((x1 - x0) * i) / ticks;
    const x = sx(t);
    xAxis.append(node('line', { class: 'grid-line', x1: x, x2: x, y1: m.top, y2: m.top + ph }));
    const label = clock(Math.round(t));
    xAxis.append(node('text', {
      x, y: height - 10, 'text-anchor': i === 0 ? 'start' : i === ticks ? 'end' : 'middle',
    }, (x1 - x0) > 3600_000 ? label.slice(0, 5) : label));
  }
  svg.append(xAxis);

  // the anti-sniping window before the current end
  if (data.window_ms > 0 && !data.closed) {
    const wx = Math.max(m.left, sx(data.end_ms - data.window_ms));
    const zone = node('g', { class: 'window' });
    zone.append(node('rect', { class: 'window-zone', x: wx, y: m.top, width: Math.max(0, sx(data.end_ms) - wx), height: ph }));
    zone.append(node('title', {}, data.labels.window));
    svg.insertBefore(zone, yAxis);
  }

  // ceiling
  const cy = sy(data.ceiling_fen);
  svg.append(node('line', { class: 'ceiling-line', x1: m.left, x2: m.left + pw, y1: cy, y2: cy }));
  svg.append(node('text', { class: 'tick', x: m.left + 4, y: cy - 5, 'text-anchor': 'start' },
    `${data.labels.ceiling} ${yuan(data.ceiling_fen)}`));

  // ends
  const ends = node('g', { class: 'end-marker' });
  if (data.original_end_ms !== data.end_ms && data.original_end_ms > x0) {
    const xo = sx(data.original_end_ms);
    ends.append(node('line', { x1: xo, x2: xo, y1: m.top, y2: m.top + ph, 'stroke-dasharray': '2 3' }));
    ends.append(node('text', { x: xo - 3, y: m.top + ph - 4, 'text-anchor': 'end' }, data.labels.originalEnd));
  }
  const xe = sx(data.end_ms);
  ends.append(node('line', { x1: xe, x2: xe, y1: m.top, y2: m.top + ph }));
  ends.append(node('text', { x: xe - 3, y: m.top + 12, 'text-anchor': 'end' }, data.labels.end));
  svg.append(ends);

  // extensions
  for (const ext of data.extensions) {
    const x = sx(ext.at_ms);
    const g = node('g', { class: 'ext-marker', 'data-n': ext.n });
    g.append(node('line', { x1: x, x2: x, y1: m.top - 6, y2: m.top + ph }));
    g.append(node('text', { x: x + 3, y: m.top - 8 }, data.labels.extension(ext.n)));
    g.append(node('title', {}, `${data.labels.extension(ext.n)} ${clock(ext.at_ms)} → ${clock(ext.end_ms)}`));
    svg.append(g);
  }

  // now
  if (!data.closed && data.now_ms > x0 && data.now_ms < x1) {
    const xn = sx(data.now_ms);
    const g = node('g', { class: 'now-marker' });
    g.append(node('line', { x1: xn, x2: xn, y1: m.top, y2: m.top + ph }));
    svg.append(g);
  }

  if (!bids.length) {
    svg.append(node('text', { class: 'chart-empty', x: m.left + pw / 2, y: m.top + ph / 2, 'text-anchor': 'middle' },
      data.labels.empty));
    return;
  }

  // lowest price as a step line
  let lowest = Infinity;
  let d = '';
  for (const b of bids) {
    if (b.price_fen < lowest) {
      const x = sx(b.at_ms);
      if (d === '') d = `M${x.toFixed(1)},${sy(b.price_fen).toFixed(1)}`;
      else d += ` H${x.toFixed(1)} V${sy(b.price_fen).toFixed(1)}`;
      lowest = b.price_fen;
    }
  }
  const until = data.closed ? data.end_ms : Math.min(Math.max(data.now_ms, lastAt), x1);
  d += ` H${sx(until).toFixed(1)}`;
  svg.append(node('path', { class: 'lowest-line', d }));

  // every bid
  const points = node('g', { class: 'points' });
  for (const b of bids) {
    const c = node('circle', {
      class: 'bid-point', cx: sx(b.at_ms).toFixed(1), cy: sy(b.price_fen).toFixed(1),
      r: narrow ? 4 : 5, fill: colourOf(b.alias), 'data-seq': b.seq, 'data-alias': b.alias,
    });
    c.append(node('title', {}, `${data.labels.alias(b.alias)} ${yuan(b.price_fen)} ${clock(b.at_ms)}`));
    points.append(c);
  }
  svg.append(points);
}
