// One auction room as the server described it: a snapshot, then every event in order.
//
// Nothing here invents state. The only derived value is the phase between events, which the
// server's own rule computes from its clock (scheduled → sign_in → open → closing): the page
// applies the same rule to the server's time (corrected for the clock offset). Events decide
// everything else: paused, resumed, extended, closed, the result.

export class RoomState {
  constructor() {
    this.room = null; // the snapshot's `room`, kept up to date by events
    this.you = null; // a supplier's own facts (`you`)
    this.ownBids = []; // a supplier's own accepted bids
    this.extensions = []; // [{at_ms, end_ms, n, observed}] for the chart and banners
  }

  get ready() {
    return this.room !== null;
  }

  applySnapshot(room) {
    this.room = { ...room, ladder: room.ladder || [], bids: room.bids || [] };
    this.extensions = inferExtensions(this.room);
  }

  /** The room as it is now after skipped events (a `tick`): everything but the bid list,
   * which keeps the bids this page saw. */
  applyTick(room) {
    if (!this.room) return;
    const { bids, ...now } = room;
    this.room = { ...this.room, ...now, ladder: now.ladder || this.room.ladder };
  }

  /** Apply one event (already in order); returns a short description for banners. */
  applyEvent(ev) {
    const r = this.room;
    if (!r) return null;
    r.seq = ev.seq;
    switch (ev.kind) {
      case 'bid':
        r.lowest_fen = ev.lowest_fen;
        r.bidders = ev.bidders;
        if (ev.ladder) r.ladder = ev.ladder;
        if (ev.price_fen !== undefined) {
          r.bids.push({ seq: ev.seq, alias: ev.alias, price_fen: ev.price_fen, at_ms: ev.at_ms });
        }
        break;
      case 'extended':
        r.end_ms = ev.end_ms;
        r.extensions = ev.extensions;
        r.extended_ms = ev.extended_ms;
        this.extensions = this.extensions.filter((x) => x.n !== ev.extensions);
        this.extensions.push({ at_ms: ev.at_ms, end_ms: ev.end_ms, n: ev.extensions,
          observed: true });
        break;
      case 'paused':
        r.paused = { at_ms: ev.at_ms, reason: ev.reason };
        break;
      case 'resumed':
        r.paused = null;
        r.end_ms = ev.end_ms;
        break;
      case 'signed_in':
        r.signed_in = ev.signed_in;
        break;
      case 'invited':
        r.invited = ev.invited;
        break;
      case 'closed':
        r.closed_at_ms = ev.at_ms;
        r.end_ms = ev.end_ms;
        r.closed_failed = ev.failed;
        r.bidders = ev.valid_bidders;
        break;
      case 'result':
        r.result = ev.result;
        break;
      default:
        break;
    }
    return ev.kind;
  }

  applyYou(you) {
    const prev = this.you;
    this.you = { ...you };
    if (Array.isArray(you.own_bids)) this.ownBids = you.own_bids.slice();
    return prev;
  }

  /** The server's phase rule at server time `now`. */
  phase(now) {
    const r = this.room;
    if (!r) return null;
    if (r.closed_at_ms !== null && r.closed_at_ms !== undefined) {
      if (r.result) return r.result.failed ? 'failed' : 'closed';
      if (r.closed_failed !== undefined) return r.closed_failed ? 'failed' : 'closed';
      return r.phase === 'failed' ? 'failed' : 'closed';
    }
    if (r.paused) return 'paused';
    const signIn = r.rules.sign_in_ms || 0;
    if (now < r.start_ms - signIn) return 'scheduled';
    if (now < r.start_ms) return 'sign_in';
    if (now < r.end_ms) return r.extensions > 0 ? 'extended' : 'open';
    return 'closing';
  }

  /** The instant the countdown runs to (the start before the start, else the end). */
  target(now) {
    const r = this.room;
    const p = this.phase(now);
    if (p === 'scheduled') {
      const signIn = r.rules.sign_in_ms || 0;
      return { kind: signIn ? 'start_sign_in' : 'start', at: r.start_ms - signIn };
    }
    if (p === 'sign_in') return { kind: 'start', at: r.start_ms };
    if (p === 'open' || p === 'extended') return { kind: 'end', at: r.end_ms };
    return null;
  }
}

/**
 * Extensions before the page joined are not in the snapshot (only their count). Every
 * extension is triggered by a bid at that bid's instant, so replaying the anti-sniping rule over
 * the bids finds them — as long as no pause moved the end. When the replay does not reproduce
 * the snapshot's count, positions are left unknown rather than guessed.
 */
export function inferExtensions(room) {
  const rules = room.rules;
  if (!room.extensions || !rules.sniping_window_ms || !room.bids || room.bids.length === 0) {
    return [];
  }
  let end = room.original_end_ms;
  let count = 0;
  let total = 0;
  let lowest = null;
  let leaderAlias = null;
  const best = new Map();
  const found = [];
  for (const b of room.bids) {
    const prevBest = best.get(b.alias);
    best.set(b.alias, prevBest === undefined ? b.price_fen : Math.min(prevBest, b.price_fen));
    let newLeader = leaderAlias;
    if (lowest === null || b.price_fen < lowest) {
      lowest = b.price_fen;
      newLeader = b.alias;
    }
    const leadChanged = newLeader !== leaderAlias;
    leaderAlias = newLeader;
    const inWindow = b.at_ms >= end - rules.sniping_window_ms && b.at_ms < end;
    const triggered = rules.sniping_trigger === 'lead_change' ? leadChanged : true;
    if (!inWindow || !triggered) continue;
    if (rules.max_extensions !== null && count >= rules.max_extensions) continue;
    let add = rules.extension_ms;
    if (rules.max_total_extension_ms !== null) {
      add = Math.min(add, rules.max_total_extension_ms - total);
    }
    if (add <= 0) continue;
    end += add;
    total += add;
    count += 1;
    found.push({ at_ms: b.at_ms, end_ms: end, n: count, observed: false });
  }
  return count === room.extensions && total === room.extended_ms ? found : [];
}
