"""Pure rules of the registries: GB 32100 credit codes, GB 11643 ID numbers, the region tree
and its scoping rule, Reg 18 related suppliers, the regions CSV reader."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from market.registry.rules import (
    CREDIT_ALPHABET,
    CREDIT_WEIGHTS,
    CreditCodeProblem,
    IdNumberProblem,
    PersonFact,
    PersonRole,
    RegionEntry,
    RegionLevel,
    RegionScope,
    RegionsProblem,
    check_credit_code,
    credit_check_character,
    may_see,
    normalise_id_number,
    parse_regions_csv,
    person_id_hash,
    reg18_relation,
    region_ancestors,
    region_bounds,
    region_contains,
    region_level,
    region_parent,
    viewer_scope,
)

# Published unified social credit codes of well-known companies (from their business licences
# as shown in public registries): worked cases the check must accept.
REAL_CODES = {
    "914403001922038216": "华为技术有限公司",
    "91440300708461136T": "深圳市腾讯计算机系统有限公司",
    "91330100716105852F": "阿里巴巴（中国）有限公司",
    "91110108551385082Q": "小米科技有限责任公司",
    "91110000802100433B": "百度在线网络技术（北京）有限公司",
}


def test_the_weights_are_the_powers_of_three_mod_31() -> None:
    assert CREDIT_WEIGHTS == tuple(pow(3, i, 31) for i in range(17))
    assert len(CREDIT_ALPHABET) == 31 and not set("IOSVZ") & set(CREDIT_ALPHABET)


@pytest.mark.parametrize("code", sorted(REAL_CODES))
def test_real_credit_codes_pass(code: str) -> None:
    assert check_credit_code(code) is None
    assert credit_check_character(code[:17]) == code[17]


def test_a_wrong_check_character_names_the_expected_one() -> None:
    assert check_credit_code("914403001922038217") == CreditCodeProblem("check", "6")
    # Huawei's: the sum mod 31 gives check 6; a worked case of the formula itself.
    body = "91440300192203821"
    total = sum(CREDIT_ALPHABET.index(c) * w for c, w in zip(body, CREDIT_WEIGHTS, strict=True))
    assert CREDIT_ALPHABET[(31 - total % 31) % 31] == "6"


@pytest.mark.parametrize("code", [
    "", "91440300192203821", "9144030019220382166", "91440300192203821I",  # length, letter I
    "9144O3001922038216",  # a letter where the region code's digits are
    "91440300192203821z",  # lower case is normalised by the service, not here
])
def test_malformed_credit_codes_are_shape_problems(code: str) -> None:
    assert check_credit_code(code) == CreditCodeProblem("shape")


@given(
    code=st.sampled_from(sorted(REAL_CODES)),
    position=st.integers(0, 17),
    replacement=st.sampled_from(CREDIT_ALPHABET),
)
def test_a_code_with_one_changed_character_fails(code: str, position: int,
                                                 replacement: str) -> None:
    changed = code[:position] + replacement + code[position + 1:]
    if changed == code:
        return
    assert check_credit_code(changed) is not None


@given(st.text(alphabet=CREDIT_ALPHABET, min_size=2, max_size=2),
       st.text(alphabet="0123456789", min_size=6, max_size=6),
       st.text(alphabet=CREDIT_ALPHABET, min_size=9, max_size=9))
def test_every_body_has_exactly_one_check_character(head: str, region: str, tail: str) -> None:
    body = head + region + tail
    passing = [c for c in CREDIT_ALPHABET if check_credit_code(body + c) is None]
    assert passing == [credit_check_character(body)]


def test_resident_id_numbers_are_checked_and_normalised() -> None:
    # The worked example of GB 11643-1999.
    assert normalise_id_number(" 11010519491231002x ") == "11010519491231002X"
    assert normalise_id_number("110105194912310021") == IdNumberProblem("check", "X")
    assert normalise_id_number("1101051949123100") == IdNumberProblem("shape")
    assert normalise_id_number("E12345678", resident=False) == "E12345678"
    assert normalise_id_number("??", resident=False) == IdNumberProblem("shape")


def test_the_person_hash_is_stable_and_never_the_number() -> None:
    first = person_id_hash("11010519491231002X")
    assert first == person_id_hash("11010519491231002X")
    assert len(first) == 64 and "11010519491231002X" not in first
    assert first != person_id_hash("11010519491231002X", resident=False)


# --------------------------------------------------------------------------- the region tree


@pytest.mark.parametrize(("code", "level", "parent"), [
    ("440000", RegionLevel.PROVINCE, None),
    ("440100", RegionLevel.CITY, "440000"),
    ("440106", RegionLevel.COUNTY, "440100"),
    ("110101", RegionLevel.COUNTY, "110100"),
    ("429004", RegionLevel.COUNTY, "429000"),  # 仙桃, under 省直辖县级行政区划
])
def test_level_and_parent_come_from_the_code(code: str, level: RegionLevel,
                                             parent: str | None) -> None:
    assert region_level(code) is level
    assert region_parent(code) == parent


@pytest.mark.parametrize("code", ["", "44010", "4401060", "040000", "440006", "44a100", 440100])
def test_malformed_region_codes(code: object) -> None:
    assert region_level(code) is None  # type: ignore[arg-type]
    assert region_parent(code) is None  # type: ignore[arg-type]


def test_ancestors_run_from_the_province_down() -> None:
    assert region_ancestors("440106") == ("440000", "440100")
    assert region_ancestors("440100") == ("440000",)
    assert region_ancestors("440000") == ()


@pytest.mark.parametrize(("scope", "region", "inside"), [
    ("440000", "440000", True), ("440000", "440100", True), ("440000", "440106", True),
    ("440000", "330106", False),
    ("440100", "440100", True), ("440100", "440106", True), ("440100", "440305", False),
    ("440100", "440000", False),  # a city does not see its province
    ("440106", "440106", True), ("440106", "440104", False), ("440106", "440100", False),
    ("440000", "44010", False), ("4400", "440100", False),
])
def test_region_contains(scope: str, region: str, inside: bool) -> None:
    assert region_contains(scope, region) is inside


_CODES = st.builds(
    lambda p, c, d: f"{p:02d}{c:02d}{d:02d}",
    st.integers(11, 12), st.sampled_from([0, 1, 2]), st.sampled_from([0, 1, 2]),
).filter(lambda code: region_level(code) is not None)


@given(_CODES, _CODES)
def test_the_sql_range_is_the_containment_rule(scope: str, region: str) -> None:
    low, high = region_bounds(scope)
    assert region_contains(scope, region) == (low <= region <= high)


def test_region_bounds() -> None:
    assert region_bounds("440000") == ("440000", "449999")
    assert region_bounds("440100") == ("440100", "440199")
    assert region_bounds("440106") == ("440106", "440106")


@given(_CODES, _CODES, _CODES)
def test_containment_is_transitive_and_follows_the_parent_chain(a: str, b: str, c: str) -> None:
    if region_contains(a, b) and region_contains(b, c):
        assert region_contains(a, c)
    assert region_contains(b, c) == (c == b or b in region_ancestors(c))


def test_who_sees_what() -> None:
    platform = viewer_scope(admin=True, supervisor=False, platform_org=True, org_region=None)
    assert platform == RegionScope(True, None)
    assert platform.sees(None) and platform.sees("330106")
    city_admin = viewer_scope(admin=True, supervisor=False, platform_org=True,
                              org_region="440100")
    assert city_admin == RegionScope(False, "440100")
    assert city_admin.sees("440106") and not city_admin.sees("440000")
    assert not city_admin.sees(None)  # records without a region: platform-wide only
    bureau = viewer_scope(admin=False, supervisor=True, platform_org=False, org_region=None)
    assert bureau == RegionScope(False, None) and not bureau.sees("440106")
    assert viewer_scope(admin=False, supervisor=False, platform_org=False,
                        org_region="440106") is None
    assert may_see("440000", "440305", platform_wide=False)
    assert not may_see(None, "440305", platform_wide=False)


# --------------------------------------------------------------------------- Reg 18


def _p(role: PersonRole, who: str) -> PersonFact:
    return PersonFact(role, person_id_hash(who, resident=False))


def test_reg18_same_person_in_charge() -> None:
    a = [_p(PersonRole.LEGAL_REPRESENTATIVE, "P1")]
    b = [_p(PersonRole.PERSON_IN_CHARGE, "P1")]
    relation = reg18_relation(a, b)
    assert relation is not None and relation.reason == "same_person_in_charge"


def test_reg18_control_ties() -> None:
    controller = [_p(PersonRole.CONTROLLING_PERSON, "P2")]
    headed = [_p(PersonRole.LEGAL_REPRESENTATIVE, "P2")]
    tie = reg18_relation(controller, headed)
    assert tie is not None and tie.reason == "control_tie"
    assert reg18_relation(headed, controller) == tie
    both_controlled = reg18_relation(controller, [_p(PersonRole.CONTROLLING_PERSON, "P2")])
    assert both_controlled is not None and both_controlled.reason == "control_tie"


def test_reg18_no_tie() -> None:
    # Managers alone are an EXP 16 fact, not a Reg 18 tie; different persons are unrelated.
    assert reg18_relation([_p(PersonRole.MANAGER, "P3")], [_p(PersonRole.MANAGER, "P3")]) is None
    assert reg18_relation([_p(PersonRole.LEGAL_REPRESENTATIVE, "P4")],
                          [_p(PersonRole.LEGAL_REPRESENTATIVE, "P5")]) is None


# --------------------------------------------------------------------------- the CSV reader


def test_the_regions_csv_reader() -> None:
    text = "\ufeff# a comment\ncode,name,name_en\n440000,广东省,Guangdong\n\n440100,广州市,\n"
    assert parse_regions_csv(text) == [RegionEntry("440000", "广东省", "Guangdong"),
                                       RegionEntry("440100", "广州市", "")]
    assert parse_regions_csv("name\nx\n") == RegionsProblem(1, "the header must name the "
                                                               "columns code and name")
    assert parse_regions_csv("code,name\n440000,广东省\n44000,x\n") == RegionsProblem(
        3, "'44000' is not a six-digit 行政区划 code")
    problem = parse_regions_csv("code,name\n440000,a\n440000,b\n")
    assert isinstance(problem, RegionsProblem) and problem.line == 3
