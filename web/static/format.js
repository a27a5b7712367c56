// Money, percentages and times: integer fen in, text out; text in, integer fen out (exactly).
//
// Money is integer fen everywhere (the server's unit). Yuan text is parsed as a decimal string,
// never through a float, so "0.29" is 29 fen and "12.345" is refused, not rounded.
// Times are server instants (ms since the epoch, UTC) shown in Asia/Shanghai.

export const MAX_FEN = 10_000_000_000_000; // 10^13, the server's limit
export const TIME_ZONE = 'Asia/Shanghai';
const SHANGHAI_OFFSET_MS = 8 * 3600 * 1000; // UTC+8, no daylight saving since 1991

function group(digits) {
  return digits.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/** 123450 -> "¥1,234.50"; null -> "—". */
export function yuan(fen) {
  if (fen === null || fen === undefined) return '—';
  const negative = fen < 0;
  const abs = Math.abs(fen);
  const text = `¥${group(String(Math.floor(abs / 100)))}.${String(abs % 100).padStart(2, '0')}`;
  return negative ? `-${text}` : text;
}

/** 123450 -> "1234.50" (for an input's value). */
export function yuanPlain(fen) {
  return `${Math.floor(fen / 100)}.${String(fen % 100).padStart(2, '0')}`;
}

const YUAN_RE = /^(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d*))?$/;

/**
 * Parse yuan text into integer fen, exactly. Accepts "1234.5", "1,234.50", "¥1234", full-width
 * digits. Returns {fen} or {error}: 'empty', 'format', 'decimals' (more than 2), 'zero',
 * 'too_large'.
 */
export function parseYuan(text) {
  let s = String(text ?? '')
    .replace(/[\uFF10-\uFF19]/g, (c) => String.fromCharCode(c.charCodeAt(0) - 0xFEE0))
    .replace(/\uFF0E/g, '.').replace(/\uFF0C/g, ',')
    .trim().replace(/^[¥￥]\s*/, '').replace(/\s*元$/, '');
  if (s === '') return { error: 'empty' };
  const m = YUAN_RE.exec(s);
  if (!m) return { error: 'format' };
  const whole = m[1].replace(/,/g, '');
  const frac = m[2] ?? '';
  if (frac.length > 2) return { error: 'decimals' };
  const fen = BigInt(whole) * 100n + BigInt((frac + '00').slice(0, 2));
  if (fen === 0n) return { error: 'zero' };
  if (fen > BigInt(MAX_FEN)) return { error: 'too_large' };
  return { fen: Number(fen) };
}

/** Percent text ("0.5", "0.50%") -> basis points, exactly; {bp} or {error}. */
export function parsePercent(text) {
  const s = String(text ?? '').trim().replace(/%$/, '').trim();
  if (s === '') return { error: 'empty' };
  const m = /^(\d+)(?:\.(\d*))?$/.exec(s);
  if (!m) return { error: 'format' };
  const frac = m[2] ?? '';
  if (frac.length > 2) return { error: 'decimals' };
  const bp = Number(m[1]) * 100 + Number((frac + '00').slice(0, 2));
  return { bp };
}

/** 600 -> "6.00%". */
export function percent(bp) {
  if (bp === null || bp === undefined) return '—';
  const sign = bp < 0 ? '-' : '';
  const abs = Math.abs(bp);
  return `${sign}${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, '0')}%`;
}

/** Saving of `lowest` against `ceiling` in basis points, rounded down (as the server does). */
export function savingsBp(ceiling, lowest) {
  if (lowest === null || lowest === undefined || !ceiling) return null;
  return Math.floor(((ceiling - lowest) * 10000) / ceiling);
}

const dateTimeFmt = new Intl.DateTimeFormat('en-CA', {
  timeZone: TIME_ZONE, year: 'numeric', month: '2-digit', day: '2-digit',
  hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23',
});

function parts(ms) {
  const out = {};
  for (const p of dateTimeFmt.formatToParts(new Date(ms))) out[p.type] = p.value;
  return out;
}

/** "2026-01-01 10:00:00" in Asia/Shanghai. */
export function dateTime(ms) {
  if (ms === null || ms === undefined) return '—';
  const p = parts(ms);
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second}`;
}

/** "10:00:00" in Asia/Shanghai. */
export function clock(ms) {
  if (ms === null || ms === undefined) return '—';
  const p = parts(ms);
  return `${p.hour}:${p.minute}:${p.second}`;
}

/** "10:00:00.123" in Asia/Shanghai (receipts, bid logs). */
export function clockMs(ms) {
  return `${clock(ms)}.${String(((ms % 1000) + 1000) % 1000).padStart(3, '0')}`;
}

/** The value of an <input type="datetime-local"> for an instant, in Asia/Shanghai. */
export function toLocalInput(ms) {
  const p = parts(ms);
  return `${p.year}-${p.month}-${p.day}T${p.hour}:${p.minute}`;
}

/** An <input type="datetime-local"> value read as Asia/Shanghai time -> ms (or null). */
export function fromLocalInput(value) {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?$/.exec(value || '');
  if (!m) return null;
  const utc = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +(m[6] || 0));
  return utc - SHANGHAI_OFFSET_MS;
}

/** A countdown: "09:59", "1:02:03", "2天 03:04:05" / "2d 03:04:05". */
export function countdown(ms, dayUnit = 'd') {
  const total = Math.max(0, Math.ceil(ms / 1000));
  const days = Math.floor(total / 86400);
  const h = Math.floor((total % 86400) / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const pad = (n) => String(n).padStart(2, '0');
  if (days > 0) return `${days}${dayUnit} ${pad(h)}:${pad(m)}:${pad(s)}`;
  if (h > 0) return `${h}:${pad(m)}:${pad(s)}`;
  return `${pad(m)}:${pad(s)}`;
}

/** A length of time in words: 120000 -> "2 分钟" / "2 min", 6000 -> "6 秒" / "6 s". */
export function span(ms, en = false) {
  if (ms === null || ms === undefined) return '—';
  const total = Math.round(ms / 1000);
  const m = Math.floor(total / 60);
  const s = total % 60;
  if (en) return m && s ? `${m} min ${s} s` : m ? `${m} min` : `${s} s`;
  return m && s ? `${m} 分 ${s} 秒` : m ? `${m} 分钟` : `${s} 秒`;
}

/** Milliseconds as minutes text: 120000 -> "2", 90000 -> "1.5". */
export function minutes(ms) {
  if (ms === null || ms === undefined) return '—';
  return String(Math.round((ms / 60000) * 100) / 100);
}

/** Minutes text -> whole milliseconds (to the second); {ms} or {error}. */
export function parseMinutes(text, { allowEmpty = false } = {}) {
  const s = String(text ?? '').trim();
  if (s === '') return allowEmpty ? { ms: null } : { error: 'empty' };
  if (!/^\d+(?:\.\d{1,2})?$/.test(s)) return { error: 'format' };
  return { ms: Math.round(Number(s) * 60) * 1000 };
}

/** A whole number text -> integer; {value} or {error}. */
export function parseWhole(text, { allowEmpty = false } = {}) {
  const s = String(text ?? '').trim();
  if (s === '') return allowEmpty ? { value: null } : { error: 'empty' };
  if (!/^\d{1,7}$/.test(s)) return { error: 'format' };
  return { value: Number(s) };
}
