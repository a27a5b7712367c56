"""The demo's opening walkthrough works as printed: a newcomer copies the commands (the real
``bidroom`` CLI and curl) into a shell and gets from supplier 4's sealed upload to the signed
opening record. The server runs on the test clock, which the test moves between the steps."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

from bidroom.config import Settings
from bidroom.opening.ca import PlatformCA
from bidroom.stores.redis import redis_time_ms
from tests.live import live_server
from web.demo_opening import OpeningTimes, seed_demo_opening, walkthrough

MIN = 60_000
REPO = Path(__file__).resolve().parents[2]


def steps(text: str) -> dict[str, list[str]]:
    """The walkthrough's shell lines, by step number (continuation lines joined)."""
    found: dict[str, list[str]] = {}
    current = ""
    pending = ""
    for line in text.splitlines():
        heading = re.match(r"^(\d)\. ", line)
        if heading:
            current = heading.group(1)
            continue
        stripped = line.strip()
        if not current or not stripped or stripped.startswith("#"):
            continue
        if not (stripped.startswith(("curl ", "KEY=", sys.executable)) or pending):
            continue
        pending += stripped.removesuffix("\\") + " "
        if not stripped.endswith("\\"):
            found.setdefault(current, []).append(pending.split("   #")[0].strip())
            pending = ""
    return found


async def shell(lines: list[str], cwd: Path) -> str:
    """Run the lines in bash in a worker thread (the server shares this event loop)."""
    return await asyncio.to_thread(_shell, lines, cwd)


def _shell(lines: list[str], cwd: Path) -> str:
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", "\n".join(lines)], cwd=cwd,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.skipif(shutil.which("curl") is None, reason="the walkthrough uses curl")
async def test_the_demo_walkthrough_runs_as_printed(
    tmp_path: Path, redis_url: str, migrated_database_url: str
) -> None:
    data_dir = tmp_path / "demo"
    # The server creates its CA at start-up on its clock: make it here, on the real clock the
    # demo seeds with (a test clock left by another test must not date it).
    PlatformCA.init(data_dir / "ca", now=datetime.now(UTC) - timedelta(days=1))
    settings = Settings(data_dir=data_dir, redis_url=redis_url,
                        database_url=migrated_database_url, test_clock=True)
    async with live_server(settings) as live:
        now = await redis_time_ms(live.services.redis)
        await live.set_clock(now)  # the demo seeds on Redis' clock; the server agrees
        await live.seed(suppliers=4)
        accounts = [SimpleNamespace(role=a.role, org_id=a.org_id, org_name=a.name,
                                    user_id=a.user_id, token=a.token)
                    for key, a in live.accounts.items() if key != "outsider"]
        demo = await seed_demo_opening(settings, accounts)
        await live.set_clock(await redis_time_ms(live.services.redis))  # time moves on
        text = walkthrough(demo, base_url=live.base_url, command=f"{sys.executable} -m web.cli",
                           data_dir=data_dir)
        commands = steps(text)
        repo = REPO

        upload = json.loads((await shell(commands["1"], repo)).splitlines()[-1])
        assert upload["status"] == "submitted"
        assert json.loads(await shell(commands["2"], repo))["seq"] > 0

        await live.set_clock(demo.deadline_ms + MIN)
        for supplier in range(4):
            sign_in, unwrap, decrypt = commands["4"][3 * supplier: 3 * supplier + 3]
            await shell([sign_in], repo)  # supplier 4 signed in already: refused, harmless
            answer = json.loads(await shell([unwrap, decrypt], repo))
            assert answer["status"] == "decrypted", answer

        reveal, confirm, export, save, verify = commands["5"]
        record = json.loads(await shell([reveal], repo))["record"]
        await live.set_clock(demo.deadline_ms + 7 * MIN)
        assert json.loads(await shell([confirm], repo))["record_sha256"]
        await shell([export], tmp_path)
        page = await asyncio.to_thread((tmp_path / "record.html").read_text, encoding="utf-8")
        # The signed record, saved as printed, verifies offline with the printed command.
        verified = await shell([save, verify], tmp_path)

        async with httpx.AsyncClient(base_url=live.base_url) as http:
            view = await http.get(f"/api/openings/{demo.opening_id}", headers={
                "Authorization": f"Bearer {demo.agency_token}"})
        await live.services.redis.zrem(live.services.openings.schedule_key, demo.opening_id)

    assert len(record["opened"]) == 4 and record["not_opened"] == []
    assert sorted(e["form"]["total_price_fen"] for e in record["opened"]) == [
        23_560_000, 23_880_000, 23_990_000, 24_150_000]
    assert "开标记录" in page and "¥235,600.00" in page
    assert view.json()["phase"] == "concluded"
    assert verified.startswith(
        f"有效 / valid: 开标记录 / opening record: opening {demo.opening_id}")


async def test_the_demo_opening_takes_its_times_and_prints_them_in_beijing_time(
    tmp_path: Path, redis_url: str, migrated_database_url: str
) -> None:
    """A newcomer arriving after 15 minutes restarts the demo with a later deadline; the
    walkthrough prints Beijing time (as the pages do), labelled, on a machine in any zone."""
    data_dir = tmp_path / "demo"
    PlatformCA.init(data_dir / "ca", now=datetime.now(UTC) - timedelta(days=1))
    settings = Settings(data_dir=data_dir, redis_url=redis_url,
                        database_url=migrated_database_url, test_clock=True)
    async with live_server(settings) as live:
        await live.set_clock(await redis_time_ms(live.services.redis))
        await live.seed(suppliers=4)
        accounts = [SimpleNamespace(role=a.role, org_id=a.org_id, org_name=a.name,
                                    user_id=a.user_id, token=a.token)
                    for key, a in live.accounts.items() if key != "outsider"]
        before = await redis_time_ms(live.services.redis)
        demo = await seed_demo_opening(settings, accounts,
                                       OpeningTimes(deadline=120, window=45, objections=10))
        row = await live.services.openings.store.get(demo.opening_id)
        await live.services.redis.zrem(live.services.openings.schedule_key, demo.opening_id)
    assert row is not None
    assert 120 * MIN <= demo.deadline_ms - before < 121 * MIN
    assert demo.window_ends_ms - demo.deadline_ms == 45 * MIN
    assert row.settings["objection_window_ms"] == 10 * MIN
    assert row.settings["sign_in_ms"] == 120 * MIN  # sign-in is open from the start

    text = walkthrough(demo, base_url="http://127.0.0.1:1", command="bidroom", data_dir=data_dir)
    beijing = datetime.fromtimestamp(demo.deadline_ms / 1000, tz=timezone(timedelta(hours=8)))
    assert f"deadline = opening: {beijing:%Y-%m-%d %H:%M:%S}" in text
    assert "北京时间 / Beijing time (UTC+8)" in text
    assert "bidroom demo-opening --data-dir" in text and "--opening-deadline 60" in text
