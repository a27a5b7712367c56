// The auction room over the WebSocket (docs/protocol.md §1): JSON text frames, subprotocol
// bidroom.v1.json, an `auth` message first, `join` with the last sequence number seen after a
// reconnect, exponential backoff with jitter, and the clock offset from `time` messages.
//
// The socket keeps no room state of its own: it hands every server message to the page, which
// only ever shows what the server sent (no optimistic changes).

const PROTOCOL = 'bidroom.v1.json';
const HEARTBEAT_MS = 5_000; // a `time` request this often: clock sync and liveness
const SILENCE_MS = 25_000; // nothing heard for this long: the connection is dead
const BACKOFF_FIRST_MS = 500;
const BACKOFF_MAX_MS = 15_000;
const TIME_SAMPLES = 5;

export class RoomSocket {
  /**
   * handlers: onMessage(msg) for room messages (snapshot, event, you, caught_up, joined, result
   * of requests), onStatus({state, attempt, delayMs}), onWelcome(msg).
   * state: 'connecting' | 'live' | 'reconnecting' | 'offline' | 'unauthorized' | 'closed'.
   */
  constructor({ auctionId, openingId, token, onMessage, onStatus, onWelcome }) {
    // An auction room (join / snapshot / event / joined) or an opening hall (join_opening /
    // opening_snapshot / opening_event / opening_joined): the same protocol, other names.
    this.kind = openingId ? 'opening' : 'auction';
    this.roomId = openingId || auctionId;
    this.idField = openingId ? 'opening_id' : 'auction_id';
    this.types = openingId
      ? { join: 'join_opening', snapshot: 'opening_snapshot', event: 'opening_event',
        joined: 'opening_joined', tick: null }
      : { join: 'join', snapshot: 'snapshot', event: 'event', joined: 'joined', tick: 'tick' };
    this.auctionId = auctionId;
    this.token = token;
    this.onMessage = onMessage || (() => {});
    this.onStatus = onStatus || (() => {});
    this.onWelcome = onWelcome || (() => {});
    this.ws = null;
    this.lastSeq = null;
    this.attempt = 0;
    this.counter = 0;
    this.pending = new Map(); // id -> {msg, resolve, resend}
    this.timeSamples = [];
    this.offsetMs = 0;
    this.state = 'closed';
    this.everLive = false;
    this.stopped = false;
    this._timer = null;
    this._heartbeat = null;
    this._lastHeard = 0;
    this._lastSync = 0;
    this._onOffline = () => this._drop('offline');
    this._onOnline = () => { if (this.state !== 'live') this._reconnectNow(); };
  }

  start() {
    window.addEventListener('offline', this._onOffline);
    window.addEventListener('online', this._onOnline);
    this._connect();
    this._heartbeat = setInterval(() => this._tick(), 1000);
  }

  stop() {
    this.stopped = true;
    window.removeEventListener('offline', this._onOffline);
    window.removeEventListener('online', this._onOnline);
    clearInterval(this._heartbeat);
    clearTimeout(this._timer);
    this._detach(1000);
    this._setState('closed');
  }

  /** Server time now, corrected for the clock offset (and half the round trip). */
  serverNow() {
    return Date.now() + this.offsetMs;
  }

  /** Send a request; resolves with the reply carrying its id. `resend`: repeat after a
   * reconnect until answered (a bid, with the same bid_id). */
  request(type, fields = {}, { resend = false } = {}) {
    this.counter += 1;
    const id = `c${this.counter}`;
    const msg = { v: 1, type, id, ...fields };
    return new Promise((resolve) => {
      this.pending.set(id, { msg, resolve, resend });
      if (this.state === 'live') this._send(msg);
      else if (!resend) {
        this.pending.delete(id);
        resolve({ type: 'error', code: 'not_connected', re: id, request: type });
      }
    });
  }

  // -- internals --------------------------------------------------------------------------

  _setState(state, extra = {}) {
    this.state = state;
    this.onStatus({ state, attempt: this.attempt, everLive: this.everLive, ...extra });
  }

  _url() {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    return `${scheme}//${location.host}/ws`;
  }

  _connect() {
    if (this.stopped) return;
    clearTimeout(this._timer);
    this._setState(this.everLive ? 'reconnecting' : 'connecting', { connecting: true });
    let ws;
    try {
      ws = new WebSocket(this._url(), PROTOCOL);
    } catch {
      this._scheduleReconnect();
      return;
    }
    this.ws = ws;
    this._lastHeard = Date.now();
    ws.onopen = () => {
      this._lastHeard = Date.now();
      this._send({ v: 1, type: 'auth', id: 'auth', token: this.token });
    };
    ws.onmessage = (ev) => {
      this._lastHeard = Date.now();
      let msg;
      try { msg = JSON.parse(ev.data); } catch { return; }
      this._handle(msg);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (ev.code === 4001) {
        this._setState('unauthorized');
        return;
      }
      this._scheduleReconnect();
    };
    ws.onerror = () => {};
  }

  _send(msg) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify(msg));
      return true;
    }
    return false;
  }

  _detach(code = 4000) {
    const ws = this.ws;
    this.ws = null;
    if (!ws) return;
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    try { ws.close(code === 1000 ? 1000 : 4000); } catch { /* already closing */ }
  }

  _drop(reason) {
    if (this.stopped) return;
    this._detach();
    this._scheduleReconnect(reason);
  }

  _scheduleReconnect(reason) {
    if (this.stopped) return;
    clearTimeout(this._timer);
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** this.attempt);
    const delayMs = Math.round(base * (0.75 + Math.random() * 0.5));
    this.attempt += 1;
    const offline = navigator.onLine === false;
    this._setState(offline ? 'offline' : 'reconnecting', { delayMs, reason });
    this._timer = setTimeout(() => this._connect(), delayMs);
  }

  _reconnectNow() {
    if (this.stopped) return;
    this._detach();
    this.attempt = 0;
    this._connect();
  }

  _tick() {
    if (this.stopped || !this.ws) return;
    const now = Date.now();
    if (now - this._lastHeard > SILENCE_MS) {
      this._drop('silence');
      return;
    }
    if (this.state === 'live' && now - this._lastSync >= HEARTBEAT_MS) this.syncClock();
  }

  /** Ask the server for its time (at most every 2 s unless forced). */
  syncClock(force = false) {
    const now = Date.now();
    if (!force && now - this._lastSync < 2000) return;
    this._lastSync = now;
    this.counter += 1;
    this._send({ v: 1, type: 'time', id: `t${this.counter}`, client_time_ms: now });
  }

  _onTime(msg) {
    const received = Date.now();
    const sent = msg.client_time_ms;
    if (typeof sent !== 'number' || typeof msg.server_time_ms !== 'number') return;
    const rtt = received - sent;
    const offset = msg.server_time_ms - (sent + received) / 2;
    this.timeSamples.push({ rtt, offset, at: received });
    if (this.timeSamples.length > TIME_SAMPLES) this.timeSamples.shift();
    // The newest sample wins unless an older one had a much shorter round trip (less error);
    // the newest always wins when the server clock jumped (a test clock, a corrected clock).
    const newest = this.timeSamples[this.timeSamples.length - 1];
    const best = this.timeSamples.reduce((a, b) => (b.rtt < a.rtt ? b : a));
    const chosen = Math.abs(best.offset - newest.offset) > 1000 + newest.rtt ? newest : best;
    if (chosen !== best) this.timeSamples = [newest];
    this.offsetMs = Math.round(chosen.offset);
    this.onMessage({ type: 'clock', offsetMs: this.offsetMs, rttMs: rtt });
  }

  _handle(msg) {
    switch (msg.type) {
      case 'welcome':
        this.offsetMs = msg.server_time_ms - Date.now();
        this.onWelcome(msg);
        this.syncClock(true);
        this._rejoin();
        return;
      case 'time':
        this._onTime(msg);
        return;
      case 'pong':
        return;
      case this.types.snapshot:
        if (msg[this.idField] !== this.roomId) return;
        this.lastSeq = msg.seq;
        this.onMessage(msg);
        return;
      case this.types.event:
        if (msg[this.idField] !== this.roomId) return;
        if (this.lastSeq !== null && msg.seq <= this.lastSeq) return; // seen already
        if (this.lastSeq !== null && msg.seq !== this.lastSeq + 1) {
          this._rejoin(); // a hole: never guess, ask the server again
          return;
        }
        this.lastSeq = msg.seq;
        this.onMessage(msg);
        this.syncClock();
        return;
      case this.types.tick:
        // This page fell behind (a slow network): the server sent the room as it is now in
        // place of the events it skipped (latest value wins); live events follow from here.
        if (msg[this.idField] !== this.roomId) return;
        this.lastSeq = msg.seq;
        this.onMessage(msg);
        return;
      case this.types.joined:
        this.attempt = 0;
        this.everLive = true;
        this._setState('live');
        for (const p of this.pending.values()) this._send(p.msg); // unanswered bids, same ids
        this.onMessage(msg);
        return;
      default:
        break;
    }
    if (msg.type === 'error' && msg.re === 'auth') {
      this.onMessage(msg);
      return;
    }
    if (msg.re !== undefined && this.pending.has(msg.re)) {
      const p = this.pending.get(msg.re);
      this.pending.delete(msg.re);
      p.resolve(msg);
    }
    this.onMessage(msg);
  }

  _rejoin() {
    this.counter += 1;
    this._send({
      v: 1, type: this.types.join, id: `j${this.counter}`, [this.idField]: this.roomId,
      ...(this.lastSeq !== null ? { last_seq: this.lastSeq } : {}),
    });
  }
}
