"""The demo's sealed-bid opening (不见面开标): certificates, an opening, three sealed bids, and
a walkthrough a newcomer can copy and paste. Called by ``bidroom demo`` after its own seeding.

What it sets up, in the demo's data dir:

* the platform CA in ``DATA_DIR/ca`` (the server uses the same directory);
* dual certificates (signing + encryption) for the four demo suppliers, written to
  ``DATA_DIR/suppliers/<n>/`` — in real life each supplier keeps these on its own machine; the
  demo keeps them together so one person can play every supplier;
* an opening run by the demo agency for the demo purchaser, all four suppliers invited, the
  deadline 15 minutes away (sign-in open already, a 30-minute decryption window, 5 minutes
  for objections) — ``bidroom demo --opening-deadline 120 --opening-window 60
  --opening-objections 10`` sets those lengths (``OpeningTimes``), and a newcomer who arrives
  after the deadline runs ``bidroom demo-opening --opening-deadline 60`` to create a fresh
  opening in the running demo (same accounts and tokens);
* bids of suppliers 1–3, sealed and uploaded through the same code path as ``PUT
  /api/openings/{id}/bid`` (receipts signed by the platform); supplier 4 seals and uploads its
  own with the printed commands.

The walkthrough is also written to ``DATA_DIR/demo-opening.json``. Its times are Beijing time,
labelled, like the pages.
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bidroom.clock import TIME_LABEL, beijing_time
from bidroom.config import Settings
from bidroom.opening.ca import PlatformCA
from bidroom.opening.client import seal_bid_files
from bidroom.opening.runner import CA_DIR, OpeningRunner, load_or_init_ca, server_trust_store
from bidroom.opening.session import OpeningSettings
from bidroom.opening.store import CiphertextFiles, OpeningRow, OpeningStore
from bidroom.receipts import PlatformKey
from bidroom.stores.redis import connect_redis, redis_time_ms
from bidroom.stores.sql import make_engine, make_session_factory

__all__ = ["DEMO_OPENING_FILE", "DemoOpening", "OpeningTimes", "announce", "seed_demo_opening",
           "walkthrough"]

DEMO_OPENING_FILE = "demo-opening.json"
MINUTE = 60_000
_PRICES = (23_880_000, 24_150_000, 23_560_000, 23_990_000)  # fen, suppliers 1..4
_TITLE = ("西湖区中小学多媒体教室设备采购项目", "Multimedia classroom equipment, Xihu schools")


@dataclass(frozen=True)
class OpeningTimes:
    """The demo opening's lengths, in minutes: the deadline (= the opening) after the demo
    starts (sign-in opens at once), the decryption window after it, the objection window."""

    deadline: int = 15
    window: int = 30
    objections: int = 5


@dataclass
class DemoOpening:
    opening_id: str
    title: str
    title_en: str
    deadline_ms: int
    window_ends_ms: int
    suppliers: list[dict[str, Any]] = field(default_factory=list)
    agency_token: str = ""
    commands: list[str] = field(default_factory=list)


def _when(ms: int) -> str:
    """Beijing time, as the pages show it (the zone is named once, in the walkthrough)."""
    return beijing_time(ms)


def _form(n: int) -> dict[str, Any]:
    return {
        "total_price_fen": _PRICES[n - 1],
        "delivery_days": 20 + 5 * n,
        "warranty_months": 36,
        "items": [{"name": "交互式智能平板 86 英寸", "value": f"型号 IFP-86{n}"},
                  {"name": "数量 quantity", "value": "120 台"}],
    }


async def seed_demo_opening(settings: Settings, accounts: list[Any],
                            times: OpeningTimes = OpeningTimes()) -> DemoOpening:
    """Create the demo opening (see the module doc). ``accounts`` are the demo's accounts
    (objects with ``role``, ``org_id``, ``org_name``, ``user_id``, ``token``)."""
    assert settings.redis_url is not None
    data_dir = settings.data_dir
    redis = connect_redis(settings.redis_url)
    engine = make_engine(settings.resolved_database_url())
    try:
        now = await redis_time_ms(redis)
        ca = load_or_init_ca(data_dir / CA_DIR, now_ms=now)
        store = OpeningStore(make_session_factory(engine))

        async def clock() -> int:
            return await redis_time_ms(redis)

        runner = OpeningRunner(store, redis, CiphertextFiles(data_dir), now_ms=clock,
                               trust=lambda: server_trust_store(data_dir))
        platform_key = PlatformKey.load_or_create(data_dir / "platform-key.pem")
        by_role = {a.role: a for a in accounts}
        suppliers = [a for a in accounts if a.role == "supplier"]
        agency, purchaser = by_role["agency"], by_role["purchaser"]

        opening_id = f"opn_{os.urandom(16).hex()}"
        deadline = now + times.deadline * MINUTE
        opening = OpeningSettings(opening_id=opening_id, deadline_ms=deadline,
                                  sign_in_ms=times.deadline * MINUTE,  # open from now on
                                  decryption_window_ms=times.window * MINUTE,
                                  objection_window_ms=times.objections * MINUTE)
        row = OpeningRow(id=opening_id, title=_TITLE[0], title_en=_TITLE[1],
                         purchaser_org_id=purchaser.org_id, agency_org_id=agency.org_id,
                         created_by_user_id=agency.user_id, settings=opening.to_dict(),
                         deadline_ms=deadline, created_at_ms=now, concluded_at_ms=None,
                         backup_certificate_pem=None)
        await runner.create(row, opening, [s.org_id for s in suppliers], actor=agency.user_id,
                            now_ms=now)
        demo = DemoOpening(opening_id, _TITLE[0], _TITLE[1], deadline, opening.window_ends_ms,
                           agency_token=agency.token)
        for n, supplier in enumerate(suppliers, start=1):
            folder = data_dir / "suppliers" / str(n)
            _issue(ca, supplier.org_id, supplier.org_name, folder, now)
            (folder / "form.json").write_text(json.dumps(_form(n), ensure_ascii=False, indent=2),
                                              encoding="utf-8")
            (folder / "技术方案.txt").write_text(
                f"{supplier.org_name} 技术方案（演示）\nTechnical proposal (demo)\n",
                encoding="utf-8")
            entry = {"n": n, "org_id": supplier.org_id, "name": supplier.org_name,
                     "token": supplier.token, "folder": str(folder), "uploaded": n <= 3}
            if n <= 3:
                entry["sha256"] = await _seal_and_upload(runner, platform_key, opening_id,
                                                         supplier, folder, now)
            demo.suppliers.append(entry)
        return demo
    finally:
        await engine.dispose()
        try:
            await redis.aclose()
        except Exception:  # pragma: no cover - closing must not hide the real error
            pass


def _issue(ca: PlatformCA, org_id: str, name: str, folder: Path, now_ms: int) -> None:
    if folder.exists():
        shutil.rmtree(folder)
    pair = ca.issue_dual(org_id, name[:64], now=datetime.fromtimestamp(now_ms / 1000, tz=UTC))
    pair.write(folder)


async def _seal_and_upload(runner: OpeningRunner, platform_key: PlatformKey, opening_id: str,
                           supplier: Any, folder: Path, now_ms: int) -> str:
    from web.api.openings import record_upload

    sealed = folder / "bid.cms"
    result = seal_bid_files(
        form=folder / "form.json", documents=[folder / "技术方案.txt"],
        sign_cert=folder / "sign-cert.pem", sign_key=folder / "sign-key.pem",
        enc_cert=folder / "enc-cert.pem", out=sealed,
        now=datetime.fromtimestamp(now_ms / 1000, tz=UTC))
    # The server's copy, content-addressed; the supplier keeps its own (bid.cms) to unwrap
    # the content key at the opening.
    copy = folder / ".upload.cms"
    shutil.copyfile(sealed, copy)
    relative = runner.files.keep(opening_id, result.sha256, copy)
    decision = await record_upload(runner, platform_key, opening_id, supplier.org_id,
                                   sha256=result.sha256, size=result.size, relative=relative,
                                   actor=supplier.user_id)
    if decision.refusal is not None:  # pragma: no cover - a fresh opening accepts it
        raise RuntimeError(f"demo upload refused: {decision.refusal}")
    return result.sha256


def walkthrough(demo: DemoOpening, *, base_url: str, command: str, data_dir: Path) -> str:
    """The printed walkthrough (Chinese first), also stored in ``DATA_DIR/demo-opening.json``."""
    q = shlex.quote
    api = f"{base_url}/api/openings/{demo.opening_id}"
    s4 = demo.suppliers[3]
    f4 = Path(s4["folder"])
    auth4 = q(f"Authorization: Bearer {s4['token']}")
    agency = q(f"Authorization: Bearer {demo.agency_token}")
    rule = "=" * 100
    lines = [
        "",
        rule,
        "不见面开标演示 / sealed remote bid opening demo (docs/opening.md)",
        rule,
        f"  {demo.opening_id}  {demo.title} / {demo.title_en}",
        f"  投标截止 = 开标 / deadline = opening: {_when(demo.deadline_ms)}; "
        f"解密截止 / decryption until {_when(demo.window_ends_ms)}  ({TIME_LABEL})",
        "  来晚了？只重开开标演示（账号、令牌不变）/ arriving after the deadline? restart just "
        f"the opening (same accounts and tokens): {command} demo-opening --data-dir "
        f"{q(str(data_dir))} --opening-deadline 60  (分钟 / minutes from now; --opening-window, "
        "--opening-objections likewise; `demo` takes the same flags)",
        "  供应商1–3 已上传密封投标文件；供应商4 请自己完成 / suppliers 1–3 have uploaded sealed "
        "bids; play supplier 4 yourself",
        f"  证书与私钥 / certificates and keys: {data_dir}/suppliers/<n>/ "
        "(sign-cert.pem, sign-key.pem, enc-cert.pem, enc-key.pem)",
        "",
        "1. 供应商4 加密并上传投标文件（截止前）/ supplier 4 seals and uploads its bid:",
        f"  {command} bid seal --form {q(str(f4 / 'form.json'))} "
        f"--document {q(str(f4 / '技术方案.txt'))} \\",
        f"      --sign-cert {q(str(f4 / 'sign-cert.pem'))} --sign-key "
        f"{q(str(f4 / 'sign-key.pem'))} \\",
        f"      --enc-cert {q(str(f4 / 'enc-cert.pem'))} --out {q(str(f4 / 'bid.cms'))}",
        f"  curl -s -T {q(str(f4 / 'bid.cms'))} -H {auth4} {api}/bid",
        "  # 回执另存为 upload.json 时可离线验证 / with `-o upload.json`, verify the receipt "
        f"offline: {command} verify upload.json --server {base_url}",
        "",
        "2. 签到（现已开放）/ sign in (open now), e.g. supplier 4:",
        f"  curl -s -X POST -H {auth4} {api}/sign-in",
        "",
        f"3. 开标大厅（浏览器）/ the opening hall in a browser: {base_url}/app/openings/"
        f"{demo.opening_id}",
        "   （供应商可在页面中选择 enc-key.pem 自行解密 / a supplier decrypts there with its"
        " enc-key.pem, read locally)",
        "   或 / or: WebSocket /ws, "
        f'{{"type":"join_opening","opening_id":"{demo.opening_id}"}}',
        f"  curl -s -H {agency} {api}   # 代理机构视角 / as the agency",
        "",
        f"4. {_when(demo.deadline_ms)} 之后解密（每个供应商各自）/ after the deadline each "
        "supplier decrypts its own bid, e.g. supplier N (1–4):",
    ]
    for entry in demo.suppliers:
        folder = Path(entry["folder"])
        auth = q(f"Authorization: Bearer {entry['token']}")
        lines += [
            f"  # 供应商{entry['n']} / supplier {entry['n']}: {entry['name']}",
            f"  curl -s -X POST -H {auth} {api}/sign-in",
            f"  KEY=$({command} bid unwrap-key --envelope {q(str(folder / 'bid.cms'))} "
            f"--enc-cert {q(str(folder / 'enc-cert.pem'))} "
            f"--enc-key {q(str(folder / 'enc-key.pem'))})",
            f"  curl -s -X POST -H {auth} -H 'Content-Type: application/json' "
            f"-d \"{{\\\"content_key_hex\\\":\\\"$KEY\\\"}}\" {api}/decrypt",
        ]
    lines += [
        "",
        "5. 代理机构唱标、确认，导出开标记录 / the agency reveals (唱标), confirms after the "
        "objection window, exports the record:",
        f"  curl -s -X POST -H {agency} {api}/reveal",
        f"  curl -s -X POST -H {agency} {api}/confirm",
        f"  curl -s -H {agency} {api}/record.html -o record.html",
        f"  curl -s -H {agency} {api}/record -o record.json",
        f"  {command} verify record.json --server {base_url}   # 离线验证签名 / verify offline",
        "",
        "  证书登录 / CA login: POST /api/auth/ca/challenge, sign it with sign-key.pem, "
        "POST /api/auth/ca/login (docs/opening.md)",
        rule,
    ]
    demo.commands = lines
    return "\n".join(lines)


def announce(settings: Settings, accounts: list[Any], base_url: str, command: str,
             times: OpeningTimes = OpeningTimes()) -> str:
    """Seed, write ``demo-opening.json`` and return the walkthrough (the CLI prints it);
    ``command`` is how to run ``bidroom`` again; ``times`` the opening's lengths."""
    demo = asyncio.run(seed_demo_opening(settings, accounts, times))
    text = walkthrough(demo, base_url=base_url, command=command, data_dir=settings.data_dir)
    path = settings.data_dir / DEMO_OPENING_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # it holds tokens
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump({"opening_id": demo.opening_id, "deadline_ms": demo.deadline_ms,
                   "window_ends_ms": demo.window_ends_ms, "suppliers": demo.suppliers,
                   "walkthrough": demo.commands}, out, ensure_ascii=False, indent=2)
    return text
