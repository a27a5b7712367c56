"""The registries on SQL (issue #11 item 1): regions, purchasing units, suppliers and their
persons, Reg 18 ties, scoped listing, and the procurement catalogue's import and search."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bidroom.errors import ConflictError, NotFoundError, ValidationError
from market.catalog import Catalog, shipped_catalog_text
from market.registry import PersonInput, Registry, shipped_regions_text
from market.registry.rules import RegionScope

Sessions = async_sessionmaker[AsyncSession]
NOW = 1_767_225_600_000
HUAWEI = "914403001922038216"
ID_NUMBER = "11010519491231002X"  # the worked example of GB 11643


@pytest.fixture
async def registry(session_factory: Sessions) -> Registry:
    registry = Registry(session_factory)
    await registry.import_regions_csv(shipped_regions_text())
    return registry


@pytest.fixture
def catalog(session_factory: Sessions) -> Catalog:
    return Catalog(session_factory)


async def test_the_shipped_region_tree_imports_and_browses(registry: Registry) -> None:
    assert await registry.import_regions_csv(shipped_regions_text()) == (0, 0)
    provinces = [r.code for r in await registry.list_regions()]
    assert provinces == ["110000", "330000", "440000"]
    detail = await registry.get_region("440106")
    assert detail is not None
    assert (detail.region.name, detail.region.level) == ("天河区", "county")
    assert [r.code for r in detail.ancestors] == ["440000", "440100"]
    guangdong = await registry.get_region("440000")
    assert guangdong is not None and [r.code for r in guangdong.children] == ["440100", "440300"]
    assert [r.code for r in await registry.list_regions("440300")] == [
        "440303", "440304", "440305"]
    assert [r.code for r in await registry.list_regions(query="天河")] == ["440106"]
    assert await registry.get_region("449999") is None


async def test_a_region_without_its_parent_is_refused_and_nothing_is_written(
    registry: Registry,
) -> None:
    with pytest.raises(ValidationError) as caught:
        await registry.import_regions_csv("code,name\n450000,广西壮族自治区\n450300,桂林市\n"
                                          "460105,秀英区\n")
    assert caught.value.code == "region_parent_missing"
    assert caught.value.details["parent"] == "460100"
    assert await registry.get_region("450000") is None  # all or nothing


async def test_a_purchasing_unit_has_its_region_level_and_budget_unit_code(
    registry: Registry,
) -> None:
    unit = await registry.create_organisation(
        "广州市天河区某某中学", "purchaser", region_code="440106", budget_unit_code="106001",
        now_ms=NOW)
    assert (unit.region_code, unit.level, unit.budget_unit_code) == ("440106", "county",
                                                                     "106001")
    province_unit = await registry.create_organisation(
        "广东省某某厅", "purchaser", region_code="440000", level="province", now_ms=NOW)
    assert province_unit.level == "province"
    with pytest.raises(ValidationError) as too_low:
        await registry.create_organisation("某县级单位", "purchaser", region_code="440100",
                                           level="county", now_ms=NOW)
    assert too_low.value.code == "invalid_level"
    with pytest.raises(ConflictError) as taken:
        await registry.create_organisation("另一单位", "purchaser", region_code="440106",
                                           budget_unit_code="106001", now_ms=NOW)
    assert taken.value.code == "budget_unit_code_taken"
    # The same budget unit code in another region is another unit.
    await registry.create_organisation("越秀某单位", "purchaser", region_code="440104",
                                       budget_unit_code="106001", now_ms=NOW)
    with pytest.raises(ValidationError) as not_a_unit:
        await registry.create_organisation("某代理", "agency", budget_unit_code="1", now_ms=NOW)
    assert not_a_unit.value.code == "invalid_budget_unit_code"


async def test_regions_must_be_well_formed_and_in_the_tree(registry: Registry) -> None:
    with pytest.raises(ValidationError) as malformed:
        await registry.create_organisation("某代理", "agency", region_code="44010", now_ms=NOW)
    assert malformed.value.code == "invalid_region"
    with pytest.raises(NotFoundError) as unknown:
        await registry.create_organisation("某代理", "agency", region_code="450100", now_ms=NOW)
    assert unknown.value.code == "region_not_found"


async def test_credit_codes_are_checked_with_their_check_character(registry: Registry) -> None:
    org = await registry.create_organisation(
        "华为技术有限公司", "supplier", size_class="large", credit_code=HUAWEI.lower(),
        region_code="440300", now_ms=NOW)
    assert org.credit_code == HUAWEI
    with pytest.raises(ValidationError) as caught:
        await registry.create_organisation("某公司", "supplier", size_class="small",
                                           credit_code=HUAWEI[:17] + "7", now_ms=NOW)
    assert caught.value.code == "invalid_credit_code"
    assert caught.value.details["expected_check_character"] == "6"


async def test_persons_are_stored_as_hashes_only(
    registry: Registry, session_factory: Sessions,
) -> None:
    org = await registry.create_organisation(
        "深圳某某科技有限公司", "supplier", size_class="small", region_code="440305",
        persons=[PersonInput("legal_representative", "张三", ID_NUMBER.lower()),
                 PersonInput("controlling_person", "John Smith", "E12345678", resident=False)],
        now_ms=NOW)
    detail = await registry.get_organisation_detail(org.id)
    assert detail is not None
    assert [(p.role, p.name) for p in detail.persons] == [
        ("legal_representative", "张三"), ("controlling_person", "John Smith")]
    async with session_factory() as session:
        dump = " ".join(str(row) for row in (await session.execute(
            text("SELECT * FROM organisation_persons"))).all())
    assert ID_NUMBER not in dump.upper() and "E12345678" not in dump
    assert len(detail.persons[0].id_hash) == 64


async def test_a_bad_person_writes_no_organisation(registry: Registry) -> None:
    before = len(await registry.list_organisations())
    for person, code in [
        (PersonInput("legal_representative", "李四", "110105194912310021"), "invalid_id_number"),
        (PersonInput("uncle", "李四", ID_NUMBER), "invalid_person"),
    ]:
        with pytest.raises(ValidationError) as caught:
            await registry.create_organisation("某公司", "supplier", size_class="micro",
                                               persons=[person], now_ms=NOW)
        assert caught.value.code == code
        assert "110105194912310021" not in caught.value.message
    assert len(await registry.list_organisations()) == before


async def test_reg18_ties_are_found_across_suppliers(registry: Registry) -> None:
    def boss(role: str) -> PersonInput:
        return PersonInput(role, "王五", ID_NUMBER)

    a = await registry.create_organisation("甲公司", "supplier", size_class="small",
                                           persons=[boss("legal_representative")], now_ms=NOW)
    b = await registry.create_organisation("乙公司", "supplier", size_class="small",
                                           persons=[boss("person_in_charge")], now_ms=NOW)
    c = await registry.create_organisation("丙公司", "supplier", size_class="small",
                                           persons=[boss("controlling_person")], now_ms=NOW)
    d = await registry.create_organisation("丁公司", "supplier", size_class="small", now_ms=NOW)
    same = await registry.reg18_relation(a.id, b.id)
    assert same is not None and same.reason == "same_person_in_charge"
    control = await registry.reg18_relation(c.id, a.id)
    assert control is not None and control.reason == "control_tie"
    assert await registry.reg18_relation(a.id, d.id) is None


async def test_listing_is_scoped_by_region(registry: Registry) -> None:
    made = {}
    for region in ("440000", "440100", "440106", "440305", "330106", None):
        org = await registry.create_organisation(f"单位{region}", "agency", region_code=region,
                                                 now_ms=NOW)
        made[org.id] = region

    async def listed(scope: RegionScope, within: str | None = None) -> set[str | None]:
        orgs = await registry.list_organisations(scope=scope, within=within)
        return {made[o.id] for o in orgs if o.id in made}

    assert await listed(RegionScope(True, None)) == set(made.values())
    assert await listed(RegionScope(False, "440000")) == {"440000", "440100", "440106",
                                                          "440305"}
    assert await listed(RegionScope(False, "440100")) == {"440100", "440106"}
    assert await listed(RegionScope(False, "440106")) == {"440106"}
    assert await listed(RegionScope(False, None)) == set()
    assert await listed(RegionScope(False, "440000"), within="440300") == {"440305"}
    assert await listed(RegionScope(False, "440100"), within="330000") == set()


# --------------------------------------------------------------------------- the catalogue


async def test_the_catalogue_imports_browses_and_searches(catalog: Catalog) -> None:
    first = await catalog.import_csv(shipped_catalog_text())
    assert first.created >= 17 and first.updated == 0
    again = await catalog.import_csv(shipped_catalog_text())
    assert (again.created, again.updated) == (0, 0)
    detail = await catalog.get("a02010105")
    assert (detail.category.name, detail.category.kind) == ("台式计算机", "goods")
    assert [r.code for r in detail.ancestors] == ["A", "A02", "A0201", "A020101"]
    computers = await catalog.get("A020101")
    assert [r.code for r in computers.children] == ["A02010104", "A02010105", "A02010108"]
    roots, more = await catalog.search(parent="")
    assert [r.code for r in roots] == ["A", "B", "C"] and not more
    by_name, _ = await catalog.search(query="计算机")
    assert {r.code for r in by_name} == {"A020101", "A02010105", "A02010108"}
    by_prefix, _ = await catalog.search(query="A0201")
    assert all(r.code.startswith("A0201") for r in by_prefix) and len(by_prefix) >= 6
    page, more = await catalog.search(kind="goods", limit=2)
    assert len(page) == 2 and more
    wildcard, _ = await catalog.search(query="%")
    assert wildcard == []
    with pytest.raises(NotFoundError) as missing:
        await catalog.get("A99")
    assert missing.value.code == "category_not_found"


async def test_a_catalogue_import_is_all_or_nothing(catalog: Catalog) -> None:
    await catalog.import_csv("code,name\nA,货物\n")
    with pytest.raises(ValidationError) as orphan:
        await catalog.import_csv("code,name\nA,货物（更名）\nA02,设备\nA030101,某品目\n")
    assert orphan.value.code == "category_parent_missing"
    assert orphan.value.details["parent"] == "A0301"
    assert (await catalog.get("A")).category.name == "货物"
    with pytest.raises(NotFoundError):
        await catalog.get("A02")
    with pytest.raises(ValidationError) as bad:
        await catalog.import_csv("code,name\nA02,设备\nX,y\n")
    assert (bad.value.code, bad.value.details["line"]) == ("invalid_catalog_file", 3)
    renamed = await catalog.import_csv("code,name\nA,货物类\nA02,设备\n")
    assert (renamed.created, renamed.updated) == (1, 1)


async def test_a_file_without_english_names_keeps_the_stored_ones(catalog: Catalog) -> None:
    await catalog.import_csv(shipped_catalog_text())
    result = await catalog.import_csv("code,name\nA02,设备\nA0201,信息化设备（新）\n")
    assert (result.created, result.updated) == (0, 1)
    assert (await catalog.get("A02")).category.name_en == "Equipment"
    renamed = (await catalog.get("A0201")).category
    assert (renamed.name, renamed.name_en) == ("信息化设备（新）", "Information equipment")
    cleared = await catalog.import_csv("code,name,name_en\nA02,设备,\n")
    assert cleared.updated == 1 and (await catalog.get("A02")).category.name_en == ""
