"""Jurisdictions as data: the national table, inferring a plan's jurisdiction, units resolved within
it and up its ancestors, local additions and the boundary rule."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session, select

from app.errors import OutsideJurisdiction, ProblemError
from app.importer.jurisdiction import JurisdictionNotInferred, place_plan
from app.importer.parser import parse_plan
from app.models import Jurisdiction, JurisdictionLevel, Unit, UnitKind
from app.services import jurisdictions
from app.services.keys import Principal, create_key
from app.services.permissions import check_jurisdiction
from app.services.unit_names import UnitResolver, candidate_keys
from tests.factories import QU, XIJI, import_text, qu_plan_text

PLAIN = "某方案(2021-2025年)\n一、主要任务\n(一)基层治理\n1.推进乡村依法治理。\n牵头单位:{unit}\n"


def test_national_table_reaches_every_county_we_need() -> None:
    xiji = jurisdictions.national_division(XIJI)
    qu = jurisdictions.national_division(QU)
    assert xiji is not None and (xiji.name, xiji.level, xiji.parent) == ("西吉县", JurisdictionLevel.county, "640400")
    assert qu is not None and (qu.name, qu.parent) == ("渠县", "511700")
    assert jurisdictions.national_division("640400").name == "固原市"  # type: ignore[union-attr]
    assert jurisdictions.national_division("510000").level == JurisdictionLevel.province  # type: ignore[union-attr]
    beijing_district = jurisdictions.national_division("110105")
    assert beijing_district is not None and beijing_district.parent == "110000"  # a municipality has no prefecture
    assert jurisdictions.national_division("999999") is None


def test_ensure_stores_the_division_and_its_ancestors_once(db: Session) -> None:
    qu = jurisdictions.ensure(session=db, code=QU)
    assert qu is not None
    chain = [qu, *jurisdictions.ancestors(session=db, jurisdiction=qu)]
    assert [(j.code, j.name) for j in chain] == [(QU, "渠县"), ("511700", "达州市"), ("510000", "四川省")]
    assert jurisdictions.ensure(session=db, code=QU) is qu
    assert len(db.exec(select(Jurisdiction).where(Jurisdiction.code == "510000")).all()) == 1


def test_reads_never_store_but_writes_do(db: Session) -> None:
    assert jurisdictions.find(session=db, ref="渠县") == []
    with pytest.raises(ProblemError) as missing:
        jurisdictions.resolve(session=db, ref="渠县")
    assert missing.value.status == 404 and "尚无" in missing.value.detail
    assert [j.code for j in jurisdictions.find(session=db, ref="渠县", store=True)] == [QU]
    with pytest.raises(ProblemError) as ambiguous:  # 朝阳区: in 北京市 and in 长春市
        jurisdictions.resolve(session=db, ref="朝阳区", store=True)
    assert ambiguous.value.code == "ambiguous-jurisdiction" and len(ambiguous.value.extra["candidates"]) == 2


@pytest.mark.parametrize(
    ("header", "how"),
    [
        ("索 引 号 511725001/2022-00081 发文时间 2022-07-15\n发布机构 渠县政府办公室\n", "索引号"),
        ("发布机构 渠县政府办公室 文 号\n", "发布机构"),
        ("", "标题"),
    ],
)
def test_plan_jurisdiction_is_read_off_the_document(db: Session, header: str, how: str) -> None:
    parsed = parse_plan(header + "标 题: 渠县法治社会建设实施方案(2021-2025年)\n" + PLAIN.format(unit="县司法局"))
    placement = place_plan(session=db, parsed=parsed, override=None)
    assert placement.jurisdiction.code == QU and placement.how.startswith(how), placement.how
    assert placement.warnings == []


def test_disagreeing_evidence_is_warned_about_and_override_wins(db: Session) -> None:
    parsed = parse_plan(qu_plan_text().replace("511725001", "640422001", 1))
    placement = place_plan(session=db, parsed=parsed, override=None)
    assert placement.jurisdiction.code == XIJI  # the index number is the strongest evidence
    assert any("渠县" in w for w in placement.warnings)
    assert place_plan(session=db, parsed=parsed, override="渠县").jurisdiction.code == QU


def test_no_evidence_is_an_error_never_a_default(db: Session) -> None:
    parsed = parse_plan(PLAIN.format(unit="县司法局"))
    with pytest.raises(JurisdictionNotInferred, match="--jurisdiction"):
        place_plan(session=db, parsed=parsed, override=None)
    with pytest.raises(JurisdictionNotInferred, match="火星县"):
        place_plan(session=db, parsed=parsed, override="火星县")


def test_candidate_keys_follow_the_level() -> None:
    assert candidate_keys("司法局", ("县",)) == ["司法局", "县司法局"]
    assert candidate_keys("委宣传部", ("市",)) == ["委宣传部", "市委宣传部", "市宣传部"]


def test_a_county_plan_links_a_prefecture_unit_to_the_prefecture(db: Session, tmp_path: Path) -> None:
    summary = import_text(db, tmp_path, PLAIN.format(unit="市委政法委、县司法局"), slug="up")
    xiji = db.exec(select(Jurisdiction).where(Jurisdiction.code == XIJI)).one()
    prefecture = db.exec(select(Jurisdiction).where(Jurisdiction.code == "640400")).one()
    city = db.exec(select(Unit).where(Unit.name == "市委政法委")).one()
    assert city.jurisdiction_id == prefecture.id and "市委政法委" in summary.units_created
    # A second county plan naming it reaches the same unit, up its ancestors.
    assert UnitResolver(db, xiji).resolve("市委政法委") == city
    sfj = UnitResolver(db, xiji).resolve("司法局")
    assert sfj is not None and sfj.jurisdiction_id == xiji.id


def test_unknown_names_become_units_of_the_plans_jurisdiction(db: Session, tmp_path: Path) -> None:
    summary = import_text(db, tmp_path, PLAIN.format(unit="县数据局"), slug="qu-new", jurisdiction=QU)
    assert summary.jurisdiction == QU and "县数据局" in summary.units_created
    unit = db.exec(select(Unit).where(Unit.name == "县数据局")).one()
    assert unit.jurisdiction.code == QU and unit.kind == UnitKind.other


def test_local_township_rules(db: Session) -> None:
    xiji = db.exec(select(Jurisdiction).where(Jurisdiction.code == XIJI)).one()
    town = jurisdictions.create_local(
        session=db, code="640422100", name="吉强镇", level=JurisdictionLevel.township, parent=xiji
    )
    assert jurisdictions.subtree_ids(session=db, root_id=xiji.id or 0) >= {xiji.id, town.id}
    bad = [
        dict(code="640422100", name="重复", level=JurisdictionLevel.township, parent=xiji),  # taken
        dict(code="511725100", name="错县", level=JurisdictionLevel.township, parent=xiji),  # not 西吉县's code
        dict(code="640423", name="隆德县", level=JurisdictionLevel.county, parent=xiji),  # national: not local
        dict(code="640422101", name="某镇", level=JurisdictionLevel.county, parent=xiji),  # level not below
        dict(code="64042", name="短", level=JurisdictionLevel.township, parent=xiji),  # malformed
    ]
    for kwargs in bad:
        with pytest.raises(ProblemError):
            jurisdictions.create_local(session=db, **kwargs)  # type: ignore[arg-type]


def test_the_boundary_rule(db: Session) -> None:
    xiji = db.exec(select(Jurisdiction).where(Jurisdiction.code == XIJI)).one()
    town = jurisdictions.create_local(
        session=db, code="640422100", name="吉强镇", level=JurisdictionLevel.township, parent=xiji
    )
    qu = jurisdictions.ensure(session=db, code=QU)
    prefecture = db.exec(select(Jurisdiction).where(Jurisdiction.code == "640400")).one()
    assert qu is not None
    sfj = db.exec(select(Unit).where(Unit.name == "县司法局", Unit.jurisdiction_id == xiji.id)).one()

    def principal(**kwargs: object) -> Principal:
        key, _ = create_key(session=db, name="k", **kwargs)  # type: ignore[arg-type]
        unit = kwargs.get("unit")
        return Principal(key=key, unit=unit if isinstance(unit, Unit) else None)

    cases = {
        # Its own county and the levels above (where it may be linked), never a sibling or a township below.
        "unit key": (principal(unit=sfj, is_admin=False), {xiji.id, prefecture.id}),
        "county admin": (principal(unit=None, is_admin=True, jurisdiction=xiji), {xiji.id, town.id}),
        "prefecture admin": (
            principal(unit=None, is_admin=True, jurisdiction=prefecture),
            {prefecture.id, xiji.id, town.id},
        ),
        "platform admin": (principal(unit=None, is_admin=True), {xiji.id, town.id, qu.id, prefecture.id, None}),
    }
    for name, (who, allowed) in cases.items():
        for target in (xiji.id, town.id, qu.id, prefecture.id, None):
            if target in allowed:
                check_jurisdiction(session=db, principal=who, jurisdiction_id=target)
            else:
                with pytest.raises(OutsideJurisdiction):
                    check_jurisdiction(session=db, principal=who, jurisdiction_id=target)
                    pytest.fail(f"{name} crossed into {target}")
