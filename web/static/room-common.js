// What the supplier room and the watch room share: the socket, the room state, the header
// (title, phase, countdown on server time), the banners (extension, pause, connection) and the
// result once it is published. Each page renders its own body from the same state.

import { api, getToken, signInUrl } from './api.js';
import { clock, countdown, dateTime, percent, span, yuan } from './format.js';
import { lang, onLangChange, t } from './i18n.js';
import { announce, clearBanner, el, orgName, setBanner, titleOf } from './layout.js';
import { RoomState } from './room-state.js';
import { RoomSocket } from './socket.js';

const ANNOUNCE_AT_S = [600, 300, 240, 180, 120, 60, 30, 10];

function dur(ms) {
  return span(ms, lang() === 'en');
}

export class RoomPage {
  /**
   * render(): redraw the page body from this.state; onMessage(msg): page-specific handling
   * (called after the state is updated).
   */
  constructor({ auctionId, user, auction, render, onMessage }) {
    this.auctionId = auctionId;
    this.user = user;
    this.auction = auction;
    this.renderBody = render;
    this.pageMessage = onMessage || (() => {});
    this.state = new RoomState();
    this.lastPhase = null;
    this.lastAnnounced = null;
    this.connection = { state: 'connecting' };
    this.socket = new RoomSocket({
      auctionId,
      token: getToken(),
      onMessage: (msg) => this.onMessage(msg),
      onStatus: (status) => this.onStatus(status),
    });
  }

  start() {
    this.renderHeader();
    this.socket.start();
    this._tick = setInterval(() => this.tick(), 250);
    onLangChange(() => this.renderAll());
    window.bidroomRoom = this; // for people debugging in the console, and for tests to read
  }

  now() {
    return this.socket.serverNow();
  }

  phase() {
    return this.state.phase(this.now());
  }

  // -- messages ----------------------------------------------------------------------------

  onMessage(msg) {
    const st = this.state;
    switch (msg.type) {
      case 'snapshot':
        st.applySnapshot(msg.room);
        if (st.room.closed_at_ms !== null) st.room.closed_failed = st.room.phase === 'failed';
        this.syncBanners();
        break;
      case 'event':
        st.applyEvent(msg.event);
        this.onEvent(msg.event);
        break;
      case 'you':
        st.applyYou(msg);
        break;
      case 'caught_up':
        break;
      case 'tick':
        st.applyTick(msg.room);
        this.syncBanners();
        setBanner('coalesced', 'info', t('banner.coalesced', { n: msg.skipped }));
        break;
      case 'joined':
        document.getElementById('main').removeAttribute('aria-busy');
        break;
      case 'error':
        if (msg.request === 'join') this.fatal(msg);
        break;
      default:
        break;
    }
    this.pageMessage(msg);
    if (st.ready && ['snapshot', 'tick', 'event', 'you', 'joined', 'clock'].includes(msg.type)) {
      this.renderAll();
    }
  }

  onEvent(ev) {
    const r = this.state.room;
    switch (ev.kind) {
      case 'extended':
        setBanner('ext', 'warn', t('banner.extended', {
          n: ev.extensions, end: clock(ev.end_ms), window: dur(r.rules.sniping_window_ms),
          add: dur(r.rules.extension_ms),
        }));
        announce(t('banner.extended', {
          n: ev.extensions, end: clock(ev.end_ms), window: dur(r.rules.sniping_window_ms),
          add: dur(r.rules.extension_ms),
        }));
        break;
      case 'paused':
        clearBanner('resumed');
        break;
      case 'resumed':
        setBanner('resumed', 'info', t('banner.resumed', { end: clock(ev.end_ms) }));
        break;
      case 'closed':
        clearBanner('resumed');
        break;
      default:
        break;
    }
    this.syncBanners();
  }

  /** Banners that follow the room's state (so a snapshot after a reconnect sets them right). */
  syncBanners() {
    const r = this.state.room;
    if (!r) return;
    const closed = r.closed_at_ms !== null && r.closed_at_ms !== undefined;
    if (r.paused && !closed) {
      setBanner('paused', 'warn', t('banner.paused', {
        reason: r.paused.reason || '—', at: clock(r.paused.at_ms),
      }), { alert: true });
    } else clearBanner('paused');
    if (r.extensions > 0 && !closed) {
      const node = document.querySelector('#banners [data-banner="ext"]');
      if (!node) {
        setBanner('ext', 'warn', t('banner.extended.count', {
          n: r.extensions, end: clock(r.end_ms), total: dur(r.extended_ms),
        }));
      }
    } else clearBanner('ext');
    if (closed) {
      const failed = r.result ? r.result.failed : r.closed_failed;
      setBanner('closed', failed ? 'bad' : 'info',
        t(failed ? 'banner.failed' : 'banner.closed', { at: clock(r.closed_at_ms) }));
    } else clearBanner('closed');
  }

  onStatus(status) {
    this.connection = status;
    const main = document.getElementById('main');
    if (status.state === 'live') {
      main.classList.remove('stale');
      if (status.everLive && this.wasDown) {
        setBanner('conn', 'ok', t('banner.reconnected'));
        announce(t('banner.reconnected'));
        clearTimeout(this._connTimer);
        this._connTimer = setTimeout(() => clearBanner('conn'), 8000);
      } else clearBanner('conn');
      this.wasDown = false;
    } else if (status.state === 'reconnecting' || status.state === 'offline') {
      if (status.connecting && !this.wasDown) return; // the first attempt after a drop
      this.wasDown = true;
      main.classList.add('stale');
      clearTimeout(this._connTimer);
      const key = status.state === 'offline' ? 'banner.offline' : 'banner.disconnected';
      setBanner('conn', 'bad', t(key, { n: Math.max(1, status.attempt) }), { alert: true });
    } else if (status.state === 'unauthorized') {
      main.classList.add('stale');
      setBanner('conn', 'bad', t('banner.unauthorized'), { alert: true });
      setTimeout(() => location.assign(signInUrl()), 4000);
    }
    this.renderConn();
    if (this.state.ready) this.renderAll();
  }

  fatal(msg) {
    this.socket.stop();
    setBanner('conn', 'bad', t(`err.${msg.code}`, {}, msg.message), { alert: true });
    document.getElementById('main').removeAttribute('aria-busy');
  }

  // -- rendering ---------------------------------------------------------------------------

  renderAll() {
    this.renderHeader();
    this.renderConn();
    if (!this.state.ready) return;
    this.renderPhase();
    this.renderCountdown();
    this.renderResult();
    this.renderBody();
    document.getElementById('clock-note').textContent = t('room.clock_note', {
      offset: Math.round(this.socket.offsetMs / 100) / 10,
    });
  }

  renderHeader() {
    const a = this.auction;
    document.getElementById('room-title').textContent = titleOf(a);
    document.title = `${titleOf(a)} · ${t('brand')} Bidroom`;
    const sub = [];
    if (a.purchaser) sub.push(`${t('f.purchaser')}：${orgName(a.purchaser)}`);
    if (a.agency) sub.push(`${t('f.agency')}：${orgName(a.agency)}`);
    sub.push(a.id);
    document.getElementById('room-sub').textContent = sub.join(' · ');
  }

  renderConn() {
    const node = document.getElementById('conn-state');
    const s = this.connection.state;
    node.textContent = t(`conn.${s}`);
  }

  renderPhase() {
    const phase = this.phase();
    const badge = document.getElementById('phase');
    badge.className = `badge phase-${phase}`;
    badge.textContent = t(`phase.${phase}`);
    if (phase !== this.lastPhase) {
      if (this.lastPhase !== null) announce(t('announce.phase', { phase: t(`phase.${phase}`) }));
      this.lastPhase = phase;
    }
  }

  renderCountdown() {
    const r = this.state.room;
    const now = this.now();
    const target = this.state.target(now);
    const label = document.getElementById('countdown-label');
    const box = document.getElementById('countdown');
    const endLine = document.getElementById('end-line');
    const phase = this.phase();
    if (target) {
      const left = target.at - now;
      label.textContent = t(`countdown.${target.kind}`);
      const text = countdown(left, lang() === 'zh' ? '天' : 'd');
      if (box.textContent !== text) box.textContent = text;
      box.classList.toggle('urgent', target.kind === 'end' && left <= 60_000);
      const secs = Math.ceil(left / 1000);
      const mark = ANNOUNCE_AT_S.find((m) => secs <= m && secs > m - 1);
      if (target.kind === 'end' && mark && this.lastAnnounced !== mark) {
        this.lastAnnounced = mark;
        announce(t('announce.left', { left: countdown(mark * 1000, lang() === 'zh' ? '天' : 'd') }));
      }
    } else {
      label.textContent = t(`countdown.none.${phase}`);
      box.textContent = phase === 'closing' ? '00:00' : '—';
      box.classList.remove('urgent');
    }
    const parts = [`${t('f.end')} ${dateTime(r.end_ms)}`];
    if (r.end_ms !== r.original_end_ms) parts.push(t('room.original_end', { end: clock(r.original_end_ms) }));
    if (r.extensions) parts.push(t('room.extensions', { n: r.extensions }));
    endLine.textContent = parts.join(' · ');
  }

  tick() {
    if (!this.state.ready) return;
    const before = this.lastPhase;
    this.renderPhase();
    this.renderCountdown();
    if (this.lastPhase !== before) this.renderBody();
  }

  renderResult() {
    const r = this.state.room;
    const box = document.getElementById('result-box');
    if (!r.result) {
      box.hidden = true;
      return;
    }
    box.hidden = false;
    const res = r.result;
    const body = document.getElementById('result-body');
    const link = el('a', { href: `/app/auctions/${encodeURIComponent(this.auctionId)}/result`,
      id: 'result-link' }, t('result.open'));
    if (res.failed) {
      body.replaceChildren(
        el('p', { class: 'result-hero' }, el('span', { class: 'winner' }, t('result.failed')),
          el('span', {}, t('result.failed.why', { n: res.valid_bidders, min: r.rules.min_valid_bidders }))),
        el('p', {}, link));
      return;
    }
    const winnerName = lang() === 'en' && res.winner_name_en ? res.winner_name_en : res.winner_name;
    const mine = this.user.roles.includes('supplier')
      ? res.ranking.find((x) => x.supplier_id === this.user.org_id) : null;
    body.replaceChildren(...[
      el('div', { class: 'result-hero' },
        el('span', {}, `${t('result.winner')}：`, el('span', { class: 'winner', id: 'winner-name' }, winnerName)),
        el('span', {}, `${t('result.price')}：`, el('b', { class: 'num' }, yuan(res.winning_fen))),
        el('span', {}, `${t('result.savings')}：`, el('b', { class: 'num' },
          `${yuan(res.savings_fen)}（${percent(res.savings_bp)}）`))),
      mine ? el('p', { id: 'my-final' }, mine.rank === 1 ? t('result.you_won') : t('result.your_rank', { rank: mine.rank })) : null,
      el('p', {}, link),
    ].filter(Boolean));
  }
}

/** Load the auction (HTTP) for the header; the room itself comes from the socket. */
export async function loadAuction(auctionId) {
  return api(`/api/auctions/${encodeURIComponent(auctionId)}`);
}

/** Rules in words: step, improvement rule, anti-sniping. */
export function rulesText(rules) {
  const step = rules.step_kind === 'amount' ? yuan(rules.step_value) : percent(rules.step_value);
  const parts = [t(`rule.${rules.improvement}.long`, { step })];
  if (rules.sniping_window_ms > 0) {
    const cap = [];
    if (rules.max_extensions !== null) cap.push(t('rule.cap.count', { n: rules.max_extensions }));
    if (rules.max_total_extension_ms !== null) cap.push(t('rule.cap.total', { m: dur(rules.max_total_extension_ms) }));
    parts.push(t('rule.sniping', {
      window: dur(rules.sniping_window_ms), add: dur(rules.extension_ms),
      trigger: t(`rule.${rules.sniping_trigger}`), cap: !cap.length ? '' : lang() === 'en' ? ` (${cap.join(', ')})` : `（${cap.join('，')}）`,
    }));
  } else parts.push(t('rule.no_sniping'));
  parts.push(t('rule.min_bidders', { n: rules.min_valid_bidders }));
  return parts.join(' ');
}

export function stepText(rules) {
  return rules.step_kind === 'amount' ? yuan(rules.step_value) : percent(rules.step_value);
}
