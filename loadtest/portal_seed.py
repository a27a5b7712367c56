"""Synthetic announcements for the portal benchmark (B7): deterministic Chinese titles and
bodies, written in bulk straight into a migrated database (SQLite: ``executemany`` in one
transaction, the FTS5 triggers filling the index; PostgreSQL: ``COPY``, the trigram index
rebuilt after).

The same ``n`` and ``seed`` give the same rows on both databases. Announcements are spread
over ten months (Guangdong's count after ten months is 1,100,000: PRODUCT.md), about one in
twenty sharing its publication time with the one before it, so the order's tie-break on ``id``
is exercised. Each carries its project number (``GD2026`` and seven digits) in the body and
as its ``reference`` (migration 0011), as a real announcement carries its project's id.
"""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Iterator
from typing import Any, Final

__all__ = ["COLUMNS", "T0_MS", "rows", "seed_postgres", "seed_sqlite"]

T0_MS: Final = 1_767_225_600_000  # 2026-01-01 00:00 UTC
SPAN_MS: Final = 304 * 86_400_000  # ten months
COLUMNS: Final = ("project_id", "lot_id", "kind", "title", "body", "region_code", "method",
                  "category_code", "dates", "published_at_ms", "reference")

_REGIONS: Final = (  # (code, name): Guangdong's cities and some counties, and a few others
    ("440000", "广东省"), ("440100", "广州市"), ("440103", "广州市荔湾区"),
    ("440106", "广州市天河区"), ("440111", "广州市白云区"), ("440300", "深圳市"),
    ("440304", "深圳市福田区"), ("440305", "深圳市南山区"), ("440400", "珠海市"),
    ("440600", "佛山市"), ("440604", "佛山市禅城区"),
    ("441900", "东莞市"), ("442000", "中山市"), ("440500", "汕头市"), ("440700", "江门市"),
    ("440800", "湛江市"), ("441300", "惠州市"), ("445100", "潮州市"), ("430100", "长沙市"),
    ("450100", "南宁市"),
)
_UNITS: Final = ("教育局", "卫生健康委员会", "人民医院", "第一中学", "公安局", "财政局",
                 "交通运输局", "自然资源局", "中心小学", "职业技术学院", "水务局", "图书馆",
                 "疾病预防控制中心")
_ITEMS: Final = (  # (category, item)
    ("A02010104", "台式计算机"), ("A02010105", "便携式计算机"), ("A02021001", "激光打印机"),
    ("A032201", "医疗设备"), ("A032202", "彩色超声诊断仪"), ("A02061802", "空调机"),
    ("A05010201", "办公桌椅"), ("A02100301", "复印纸"), ("A02091001", "多媒体投影仪"),
    ("A02050901", "交互式智能平板"), ("B0101", "办公楼维修改造工程"), ("B0201", "道路修缮工程"),
    ("C1204", "物业管理服务"), ("C1603", "信息系统运维服务"), ("C0601", "食堂餐饮服务"),
    ("C1301", "保安服务"), ("C0901", "法律咨询服务"), ("C1801", "印刷服务"),
)
_METHODS: Final = ("open_tender", "open_tender", "open_tender", "competitive_consultation",
                   "competitive_negotiation", "inquiry", "single_source", "invited_tender")
_KINDS: Final = (("procurement", "采购公告"),) * 7 + (
    ("correction", "更正公告"), ("failure", "废标公告"), ("termination", "终止公告"))
_EXTRAS: Final = ("含三年上门保修", "交货期30日", "须提供原厂授权", "专门面向中小企业采购",
                  "接受联合体投标", "不接受进口产品", "分两个包采购", "履约保证金为合同金额的5%")


def rows(n: int, seed: int = 11) -> Iterator[tuple[Any, ...]]:
    """``n`` announcements in publication order, as tuples of ``COLUMNS``."""
    rnd = random.Random(seed)
    step = SPAN_MS // max(n, 1)
    at = T0_MS
    for i in range(n):
        code, region = _REGIONS[rnd.randrange(len(_REGIONS))]
        unit = _UNITS[rnd.randrange(len(_UNITS))]
        category, item = _ITEMS[rnd.randrange(len(_ITEMS))]
        kind, kind_word = _KINDS[rnd.randrange(len(_KINDS))]
        title = f"{region}{unit}{item}采购项目{kind_word}"
        number = f"GD{2026}{i:07d}"  # the project number: in the body and the reference
        body = (f"{region}{unit}就{item}进行采购，数量{rnd.randint(1, 500)}，预算金额"
                f"{rnd.randint(5, 900)}万元，{_EXTRAS[rnd.randrange(len(_EXTRAS))]}。"
                f"项目编号{number}。")
        if rnd.random() >= 0.05:  # one in twenty shares the previous one's time
            at += step
        yield (f"P{i:09d}", f"P{i:09d}-1", kind, title, body, code,
               _METHODS[rnd.randrange(len(_METHODS))], category, "[]", at, number)


def seed_sqlite(path: str, n: int, seed: int = 11, batch: int = 50_000) -> None:
    """Insert ``n`` rows into a migrated SQLite database (the triggers index them)."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=OFF")
        sql = (f"INSERT INTO announcements ({', '.join(COLUMNS)}) "
               f"VALUES ({', '.join('?' * len(COLUMNS))})")
        buffer: list[tuple[Any, ...]] = []
        with conn:
            for row in rows(n, seed):
                buffer.append(row)
                if len(buffer) >= batch:
                    conn.executemany(sql, buffer)
                    buffer.clear()
            if buffer:
                conn.executemany(sql, buffer)
        conn.execute("ANALYZE")
        conn.execute("INSERT INTO announcements_fts(announcements_fts) VALUES ('optimize')")
        conn.commit()
    finally:
        conn.close()


async def seed_postgres(dsn: str, n: int, seed: int = 11) -> None:
    """COPY ``n`` rows into a migrated PostgreSQL database; the trigram index is dropped for
    the load and built again after it (the same definition as migration 0009)."""
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("DROP INDEX IF EXISTS ix_announcements_text_trgm")
        records = list(rows(n, seed))
        await conn.copy_records_to_table("announcements", records=records, columns=COLUMNS)
        await conn.execute("SET maintenance_work_mem = '256MB'")
        await conn.execute("CREATE INDEX ix_announcements_text_trgm ON announcements "
                           "USING gin (lower(title || ' ' || body) gin_trgm_ops)")
        await conn.execute("ANALYZE announcements")
    finally:
        await conn.close()
