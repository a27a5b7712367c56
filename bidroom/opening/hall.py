"""The live opening hall (开标大厅): who sees what of an opening, and the fan-out to WebSockets.

Every participant (bidders, the agency and purchaser, supervisors) watches the same hall over
the existing WebSocket: a snapshot on joining (phase, countdown instants in server time, who
signed in, who has decrypted, objections), then every event of the opening log in order, with
its sequence number. A reconnecting client sends the last sequence number it saw and gets
exactly the missed events from the log (which is never trimmed), or a snapshot.

What each audience sees (pure projections, ``snapshot_view`` / ``event_view``):

* **Before the deadline** nobody learns who has bid (collusion risk): the agency and
  supervisors (watchers) see how many bids and sign-ins there are; suppliers not even that.
  A supplier's own facts come to it alone (``opening_you``).
* **After the deadline** the bidders are known to all, with their sign-in and decryption
  status, but **no bid content** reaches anyone until 唱标.
* **At 唱标** the full record (names, prices, the 开标一览表) goes to everyone in the same
  event, encoded once per audience and wire format: the same bytes to every connection.

Must not import: market, web.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from bidroom.opening.record import named_record
from bidroom.opening.runner import OpeningRunner
from bidroom.opening.session import (
    BID_STATUS_ZH,
    BackupCeremonyClosed,
    BackupCeremonyStarted,
    BackupRebuildFailed,
    BackupRebuilt,
    BidDecrypted,
    BidderInvited,
    BidReplaced,
    BidRevoked,
    BidsClosed,
    BidSubmitted,
    BidWithdrawn,
    DecryptionFailed,
    DecryptionWindowEnded,
    Event,
    Noted,
    ObjectionAnswered,
    ObjectionRaised,
    OpeningCreated,
    OpeningFailed,
    OpeningState,
    PlatformFaultMarked,
    RecordConfirmed,
    RecordRevealed,
    ShareSubmitted,
    SignedIn,
    can_decrypt,
    evolve,
    phase_at,
    replay,
)
from bidroom.protocol import EncodedMessage, message
from bidroom.rooms.hub import Sink, offer_or_drop
from bidroom.rooms.views import Audience
from bidroom.stores.channels import ChannelListener

__all__ = [
    "Names",
    "OpeningHall",
    "event_view",
    "named_record",
    "personal_view",
    "snapshot_view",
]

log = logging.getLogger("bidroom.hall")

#: org id → (name, English name)
Names = Mapping[str, tuple[str, str]]
NameSource = Callable[[Iterable[str]], Awaitable[dict[str, tuple[str, str]]]]
MetaSource = Callable[[str], Awaitable[dict[str, Any]]]
POLL_S: Final = 1.0


# ============================================================================ pure projections


def _name(names: Names, org_id: str) -> dict[str, Any]:
    zh, en = names.get(org_id, ("", ""))
    return {"supplier_id": org_id, "name": zh, "name_en": en}


def _bidders(state: OpeningState, names: Names) -> list[dict[str, Any]]:
    out = []
    for supplier_id in state.bidders:
        bid = state.bids[supplier_id]
        out.append({
            **_name(names, supplier_id),
            "uploaded_at_ms": bid.uploaded_at_ms,
            "sha256": bid.sha256,
            "signed_in": supplier_id in state.signed_in,
            "status": bid.status.value,
            "status_zh": BID_STATUS_ZH[bid.status],
            "reason": bid.reason,
            "attempts": bid.attempts,
            "last_failure": bid.last_failure,
            "by_backup": bid.by_backup,
            "bond": None if bid.bond is None else bid.bond.value,
            "ruling": bid.ruling,
        })
    return out


def _objections(state: OpeningState, names: Names) -> list[dict[str, Any]]:
    return [{"objection_id": o.objection_id, **_name(names, o.supplier_id), "text": o.text,
             "raised_at_ms": o.raised_at_ms, "answer": o.answer, "answered_by": o.answered_by,
             "answered_at_ms": o.answered_at_ms} for o in state.objections]


def snapshot_view(state: OpeningState, audience: Audience, now_ms: int, names: Names,
                  meta: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The hall as this audience sees it at ``now_ms`` (countdowns are server instants)."""
    s = state.settings
    watcher = audience is Audience.WATCHER
    backup = None
    if s.backup is not None:
        backup = {"k": s.backup.k, "n": s.backup.n, "submitted": len(state.shares_submitted),
                  "rebuilt": state.backup_rebuilt_at_ms is not None
                  or state.backup_closed_at_ms is not None,
                  "ceremony_restarts": state.ceremony_restarts,
                  "resubmit": sorted(state.resubmit)}
    return {
        "opening_id": s.opening_id,
        **{k: v for k, v in (meta or {}).items() if k in ("title", "title_en")},
        "seq": state.seq,
        "phase": phase_at(state, now_ms).value,
        "server_time_ms": now_ms,
        "deadline_ms": s.deadline_ms,
        "sign_in_opens_ms": s.sign_in_opens_ms,
        "window_ends_ms": s.window_ends_ms,
        "objection_ends_ms": state.objection_ends_ms,
        "min_bids": s.min_bids,
        "backup": backup,
        "bids": len(state.bids) if (watcher or state.closed) else None,
        "signed_in": len(state.signed_in) if (watcher or state.closed) else None,
        "bidders": _bidders(state, names) if state.closed else [],
        "failed": state.failed,
        "failure_reason": state.failure_reason,
        "revealed_at_ms": state.revealed_at_ms,
        "record": named_record(state.record, names),
        "objections": _objections(state, names),
        "confirmed_at_ms": state.confirmed_at_ms,
    }


def personal_view(state: OpeningState, supplier_id: str, now_ms: int) -> dict[str, Any]:
    """A supplier's own facts: its bid (digest, upload time, status), sign-in, attempts."""
    bid = state.bids.get(supplier_id)
    invited = supplier_id in state.invited
    return {
        "opening_id": state.settings.opening_id,
        "seq": state.seq,
        "invited": invited,
        "has_bid": bid is not None,
        "sha256": None if bid is None else bid.sha256,
        "size": None if bid is None else bid.size,
        "uploaded_at_ms": None if bid is None else bid.uploaded_at_ms,
        "status": None if bid is None else bid.status.value,
        "attempts": 0 if bid is None else bid.attempts,
        "last_failure": None if bid is None else bid.last_failure,
        "signed_in": supplier_id in state.signed_in,
        "decrypt_refusal": can_decrypt(state, supplier_id, now_ms) if bid else "no_bid",
    }


def event_view(event: Event, after: OpeningState, audience: Audience,
               names: Names) -> dict[str, Any]:
    """One event as this audience sees it (``after``: the state the event produced)."""
    watcher = audience is Audience.WATCHER
    seq = getattr(event, "seq", after.seq)
    at = getattr(event, "at_ms", None)
    base: dict[str, Any] = {"seq": seq}
    if isinstance(event, OpeningCreated):
        return {**base, "kind": "created", "at_ms": at}
    if isinstance(event, BidSubmitted | BidReplaced | BidWithdrawn):
        # Before the deadline nobody learns who bids; watchers see how many bids there are.
        if watcher:
            return {**base, "kind": "bid_activity", "at_ms": at, "bids": len(after.bids)}
        return {**base, "kind": "bid_activity"}
    if isinstance(event, BidderInvited):
        # Suppliers never learn who else is invited (collusion risk, DOMAIN §4).
        if watcher:
            return {**base, "kind": "bidder_invited", "at_ms": at,
                    "invited": len(after.invited)}
        return {**base, "kind": "bidder_invited"}
    if isinstance(event, SignedIn):
        if not after.closed:
            if watcher:
                return {**base, "kind": "signed_in", "at_ms": at,
                        "signed_in": len(after.signed_in)}
            return {**base, "kind": "signed_in"}
        return {**base, "kind": "signed_in", "at_ms": at, **_name(names, event.supplier_id),
                "signed_in": len(after.signed_in)}
    if isinstance(event, BidsClosed):
        return {**base, "kind": "bids_closed", "at_ms": at, "deadline_ms": event.deadline_ms,
                "window_ends_ms": event.window_ends_ms, "bids": len(event.bidders),
                "bidders": _bidders(after, names)}
    if isinstance(event, OpeningFailed):
        return {**base, "kind": "opening_failed", "at_ms": at, "reason": event.reason,
                "bids": event.bids}
    if isinstance(event, BidDecrypted):
        # Who has decrypted is public; what the bid says is not, until 唱标.
        return {**base, "kind": "bid_decrypted", "at_ms": at, **_name(names, event.supplier_id),
                "by_backup": event.by_backup}
    if isinstance(event, DecryptionFailed):
        return {**base, "kind": "decryption_failed", "at_ms": at,
                **_name(names, event.supplier_id), "reason": event.reason,
                "attempts": event.attempts}
    if isinstance(event, PlatformFaultMarked):
        return {**base, "kind": "platform_fault", "at_ms": at,
                **_name(names, event.supplier_id), "reason": "withdrawn_platform_fault",
                "ruling": {"kind": "platform_fault", "reason": event.reason, "by": event.by,
                           "at_ms": event.at_ms},
                "status": "withdrawn", "status_zh": "撤回", "bond": event.bond}
    if isinstance(event, DecryptionWindowEnded):
        return {**base, "kind": "window_ended", "at_ms": at,
                "window_ends_ms": event.window_ends_ms}
    if isinstance(event, BidRevoked):
        return {**base, "kind": "bid_revoked", "at_ms": at, **_name(names, event.supplier_id),
                "reason": event.reason, "status": "revoked", "status_zh": "撤销",
                "bond": event.bond}
    if isinstance(event, BackupCeremonyStarted):
        return {**base, "kind": "backup_ceremony_started", "at_ms": at,
                "ceremony_id": event.ceremony_id, "restarted": event.replaces is not None,
                "discarded": list(event.discarded)}
    if isinstance(event, BackupCeremonyClosed):
        return {**base, "kind": "backup_ceremony_closed", "at_ms": at,
                "opened": [_name(names, x) for x in event.opened],
                "failed": [_name(names, x) for x in event.failed]}
    if isinstance(event, ShareSubmitted):
        return {**base, "kind": "share_submitted", "at_ms": at, "official": event.official,
                "submitted": event.submitted, "needed": event.needed}
    if isinstance(event, BackupRebuilt):
        return {**base, "kind": "backup_rebuilt", "at_ms": at,
                "officials": list(event.officials)}
    if isinstance(event, BackupRebuildFailed):
        return {**base, "kind": "backup_rebuild_failed", "at_ms": at, "reason": event.reason,
                "officials": list(event.officials)}
    if isinstance(event, RecordRevealed):
        return {**base, "kind": "record_revealed", "at_ms": at,
                "record": named_record(event.record, names),
                "objection_ends_ms": event.objection_ends_ms}
    if isinstance(event, ObjectionRaised):
        return {**base, "kind": "objection_raised", "at_ms": at,
                "objection_id": event.objection_id, **_name(names, event.supplier_id),
                "text": event.text}
    if isinstance(event, ObjectionAnswered):
        return {**base, "kind": "objection_answered", "at_ms": at,
                "objection_id": event.objection_id, "text": event.text, "by": event.by}
    if isinstance(event, RecordConfirmed):
        return {**base, "kind": "record_confirmed", "at_ms": at,
                "deemed_accepted": [_name(names, s) for s in event.deemed_accepted],
                "platform_fault": [_name(names, s) for s in event.platform_fault]}
    if isinstance(event, Noted):
        return {**base, "kind": "noted", "at_ms": at, "what": event.what,
                "details": dict(event.details)}
    return {**base, "kind": "unknown"}


def _involved(events: Iterable[Event]) -> set[str]:
    found: set[str] = set()
    for event in events:
        for name in ("supplier_id", "bidders", "deemed_accepted", "platform_fault", "opened",
                     "failed"):
            value = getattr(event, name, None)
            if isinstance(value, str):
                found.add(value)
            elif isinstance(value, tuple):
                found.update(v for v in value if isinstance(v, str))
    return found


# ============================================================================ the fan-out


@dataclass
class _Room:
    opening_id: str
    state: OpeningState | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    names: dict[str, tuple[str, str]] = field(default_factory=dict)
    sinks: set[Sink] = field(default_factory=set)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    last_personal: dict[int, tuple[Any, ...]] = field(default_factory=dict)


class OpeningHall:
    """One process's opening halls: local connections, live events from the log, catch-up."""

    def __init__(self, runner: OpeningRunner, *, names: NameSource, meta: MetaSource,
                 poll_s: float = POLL_S) -> None:
        self._runner = runner
        self._names = names
        self._meta = meta
        self._poll_s = poll_s
        self._rooms: dict[str, _Room] = {}
        # the log is the truth: after a reconnect the poll below catches every hall up
        self._channels = ChannelListener(runner.redis, name="hall", on_message=self._doorbell)
        self._tasks: list[asyncio.Task[None]] = []

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        await self._channels.start()
        self._tasks = [asyncio.create_task(self._poll(), name="bidroom-hall-poll")]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._channels.stop()

    def connection_count(self) -> int:
        return sum(len(r.sinks) for r in self._rooms.values())

    # -- joining -------------------------------------------------------------------------------

    async def join(self, opening_id: str, sink: Sink, last_seq: int | None = None) -> int:
        """Attach a connection: the missed events (then ``opening_caught_up``) or a snapshot,
        then a supplier's own facts; return the hall's sequence number."""
        room = self._rooms.get(opening_id)
        if room is None:
            room = self._rooms[opening_id] = _Room(opening_id)
            await self._channels.add(self._runner.channel(opening_id), opening_id)
        async with room.lock:
            if room.state is None:
                room.meta = await self._meta(opening_id)
                room.state = await self._runner.state(opening_id)
                await self._learn_names(room, room.state.invited)
            else:
                await self._catch_up_room(room)
            state = room.state
            assert state is not None
            now = await self._runner.now_ms()
            if last_seq is not None and 0 <= last_seq <= state.seq:
                await self._send_missed(room, sink, last_seq)
            else:
                view = snapshot_view(state, sink.audience, now, room.names, room.meta)
                self._offer(sink, EncodedMessage(message(
                    "opening_snapshot", opening_id=opening_id, seq=state.seq, opening=view)))
            room.sinks.add(sink)
            self._send_personal(room, sink, now, force=True)
            return state.seq

    async def leave(self, opening_id: str, sink: Sink) -> None:
        room = self._rooms.get(opening_id)
        if room is None:
            return
        room.sinks.discard(sink)
        room.last_personal.pop(id(sink), None)
        if not room.sinks:
            del self._rooms[opening_id]
            await self._channels.remove(self._runner.channel(opening_id))

    async def refresh(self, opening_id: str) -> None:
        """Fan out what this process just appended (no need to wait for pub/sub)."""
        room = self._rooms.get(opening_id)
        if room is not None and room.state is not None:
            async with room.lock:
                await self._catch_up_room(room)

    # -- internals -----------------------------------------------------------------------------

    async def _learn_names(self, room: _Room, org_ids: Iterable[str]) -> None:
        missing = [o for o in org_ids if o not in room.names]
        if missing:
            room.names.update(await self._names(missing))

    async def _send_missed(self, room: _Room, sink: Sink, last_seq: int) -> None:
        events = await self._runner.store.events(room.opening_id)
        state: OpeningState | None = None
        sent = 0
        for event in events:
            state = replay([event]) if state is None else evolve(state, event)
            if last_seq < state.seq <= (room.state.seq if room.state else 0):
                view = event_view(event, state, sink.audience, room.names)
                self._offer(sink, EncodedMessage(message(
                    "opening_event", opening_id=room.opening_id, seq=state.seq, event=view)))
                sent += 1
        seq = room.state.seq if room.state else 0
        self._offer(sink, EncodedMessage(message(
            "opening_caught_up", opening_id=room.opening_id, seq=seq, missed=sent)))

    async def _catch_up_room(self, room: _Room) -> None:
        assert room.state is not None
        events = await self._runner.store.events(room.opening_id, room.state.seq)
        if not events:
            return
        await self._learn_names(room, _involved(events))
        now = await self._runner.now_ms()
        for event in events:
            if getattr(event, "seq", 0) != room.state.seq + 1:
                continue
            room.state = evolve(room.state, event)
            by_audience = {
                audience: EncodedMessage(message("opening_event", opening_id=room.opening_id,
                                           seq=room.state.seq,
                                           event=event_view(event, room.state, audience,
                                                            room.names)))
                for audience in Audience
            }
            for sink in list(room.sinks):
                self._offer(sink, by_audience[sink.audience])
        for sink in list(room.sinks):
            self._send_personal(room, sink, now, force=False)

    def _send_personal(self, room: _Room, sink: Sink, now: int, *, force: bool) -> None:
        if sink.supplier_id is None or room.state is None:
            return
        view = personal_view(room.state, sink.supplier_id, now)
        key = tuple(v for k, v in view.items() if k != "seq")
        if not force and room.last_personal.get(id(sink)) == key:
            return
        room.last_personal[id(sink)] = key
        self._offer(sink, EncodedMessage(message("opening_you", **view)))

    def _offer(self, sink: Sink, msg: EncodedMessage) -> None:
        offer_or_drop(sink, msg, (room.sinks for room in self._rooms.values()))

    async def _doorbell(self, opening_id: str, _payload: bytes) -> None:
        """A new entry in this opening's log (the payload is its seq): read what is new."""
        await self.refresh(opening_id)

    async def _poll(self) -> None:
        """A lost pub/sub message delays an event by at most ``poll_s``: the log is the truth."""
        while True:
            await asyncio.sleep(self._poll_s)
            for opening_id in list(self._rooms):
                try:
                    await self.refresh(opening_id)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("hall poll of %s failed: %s", opening_id, exc)
