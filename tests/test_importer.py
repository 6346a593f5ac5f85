"""The importer against a real database: canonical units, idempotent re-import, refusals."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select

from app.importer.loader import UnknownUnitsError
from app.importer.parser import PlanTextError
from app.models import GroupMember, Plan, PlanImport, Responsibility, Section, Task, Unit, UnitAlias, UnitKind
from tests.factories import SEED_PLAN, SEED_SLUG, import_text

FIXTURES = Path(__file__).parent / "fixtures"

# Every spelling on the seed plan's unit lines, and the canonical unit it must resolve to.
SEED_SPELLINGS = {
    "委宣传部": "县委宣传部",
    "县委宣传部": "县委宣传部",
    "县人大办": "县人大办",
    "人大办": "县人大办",
    "县教育体育局": "县教育体育局",
    "教育体育局": "县教育体育局",
    "司法局": "县司法局",
    "县司法局": "县司法局",
    "法院": "县法院",
    "县法院": "县法院",
    "县委政法委": "县委政法委",
    "政法委": "县委政法委",
    "县委组织部": "县委组织部",
    "人力资源社会保障局": "县人力资源社会保障局",
    "商务工业信息化局": "县商务工业信息化局",
    "工商联": "县工商联",
    "县工商联": "县工商联",
    "检察院": "县检察院",
    "县检察院": "县检察院",
    "文化旅游广电局": "县文化旅游广电局",
    "自然资源局": "县自然资源局",
    "发展改革局": "县发展改革局",
    "县发展改革局": "县发展改革局",
    "民政局": "县民政局",
    "县民政局": "县民政局",
    "市场监管局": "县市场监管局",
    "卫生健康局": "县卫生健康局",
    "县卫生健康局": "县卫生健康局",
    "政府办": "县政府办",
    "审批局": "县审批局",
    "公安局": "县公安局",
    "财政局": "县财政局",
    "县委编办": "县委编办",
    "农业农村局": "县农业农村局",
    "县委统战部": "县委统战部",
    "团县委": "团县委",
    "应急局": "县应急局",
    "县交通运输局": "县交通运输局",
    "信访局": "县信访局",
    "县委网信办": "县委网信办",
    "网信办": "县委网信办",
    "各乡镇": "各乡镇",
    "各部门(单位)": "各部门(单位)",
    "各行政执法部门(单位)": "各行政执法部门(单位)",
    "各人民团体": "各人民团体",
}


def _count(session: Session, model: type) -> int:
    return session.exec(select(func.count()).select_from(model)).one()


def _links(session: Session, slug: str, code: str) -> list[tuple[str, str, str]]:
    rows = session.exec(
        select(Responsibility.role, Unit.name, Responsibility.as_written)
        .join(Unit, col(Unit.id) == col(Responsibility.unit_id))
        .join(Task, col(Task.id) == col(Responsibility.task_id))
        .join(Plan, col(Plan.id) == col(Task.plan_id))
        .where(Plan.slug == slug, Task.code == code)
        .order_by(col(Responsibility.role), col(Responsibility.position))
    )
    return [(str(r), n, w) for r, n, w in rows]


def test_seed_spellings_resolve_to_canonical_units(db: Session) -> None:
    rows = db.exec(
        select(Responsibility.as_written, Unit.name).join(Unit, col(Unit.id) == col(Responsibility.unit_id))
    ).all()
    seen = dict(rows)
    assert seen == SEED_SPELLINGS
    # Nothing in the seed is unknown: no unit had to be invented.
    assert db.exec(select(Unit).where(Unit.kind == UnitKind.other)).all() == []


def test_seed_tasks_links_and_provenance(db: Session) -> None:
    plan = db.exec(select(Plan).where(Plan.slug == SEED_SLUG)).one()
    assert (plan.title, plan.issuer, plan.doc_index, str(plan.issued_on)) == (
        "西吉县法治社会建设实施方案(2021-2025年)",
        "西吉县政府办公室",
        "640422001/2022-00081",
        "2022-07-15",
    )
    assert (plan.period_start, plan.period_end) == (2021, 2025)
    assert plan.goals is not None and plan.goals.startswith("2025年,“八五”普法规划实施完成")
    tasks = db.exec(select(Task).where(Task.plan_id == plan.id).order_by(col(Task.position))).all()
    assert len(tasks) == 76
    assert [t.code for t in tasks if t.number_inferred] == ["2.1.3", "4.3.3"]
    assert {t.code: str(t.due) for t in tasks if str(t.due) != "2025-12-31"} == {"5.2.5": "2023-12-31"}
    assert _links(db, SEED_SLUG, "2.1.1") == [
        ("cooperating", "各乡镇", "各乡镇"),
        ("cooperating", "各部门(单位)", "各部门(单位)"),
        ("lead", "县委宣传部", "委宣传部"),
    ]
    assert _links(db, SEED_SLUG, "5.5.2") == [
        ("cooperating", "县法院", "县法院"),
        ("cooperating", "县检察院", "检察院"),
        ("cooperating", "县公安局", "公安局"),
        ("cooperating", "县司法局", "司法局"),
        ("cooperating", "各乡镇", "各乡镇"),
        ("lead", "县委政法委", "县委政法委"),
    ]
    assert _links(db, SEED_SLUG, "5.3.1") == [("responsible", "各人民团体", "各人民团体")]
    sections = db.exec(select(Section).where(Section.plan_id == plan.id)).all()
    assert len([s for s in sections if s.level == 1]) == 7
    with_body = {s.code: s.title for s in sections if s.body}
    assert with_body == {
        "1.1": "指导思想",
        "1.2": "总体目标",
        "7.1": "强化组织领导",
        "7.2": "加强统筹协调",
        "7.3": "强化督查考评",
    }
    assert db.exec(select(PlanImport).where(PlanImport.plan_id == plan.id)).first() is not None


def test_group_memberships_from_unit_file(db: Session) -> None:
    def members(group: str) -> set[str]:
        group_id = db.exec(select(Unit.id).where(Unit.name == group)).one()
        rows = db.exec(
            select(Unit.name)
            .join(GroupMember, col(GroupMember.member_id) == col(Unit.id))
            .where(GroupMember.group_id == group_id)
        )
        return set(rows)

    assert members("各人民团体") == {"团县委", "县工商联"}
    assert "县司法局" in members("各部门(单位)") and "各乡镇" not in members("各部门(单位)")
    assert members("各乡镇") == set()  # the plan names no township: the county's to fill
    assert {"县公安局", "县市场监管局"} <= members("各行政执法部门(单位)")


def test_reimport_same_text_changes_nothing(fresh_engine: Engine, tmp_path: Path) -> None:
    text = SEED_PLAN.read_bytes()
    with Session(fresh_engine) as session:
        first = import_text(session, tmp_path, text, slug="p")
        session.commit()
        ids = {t.code: t.id for t in session.exec(select(Task))}
        unit_ids = {u.name: u.id for u in session.exec(select(Unit))}
        counts = (
            _count(session, Task),
            _count(session, Responsibility),
            _count(session, Unit),
            _count(session, Section),
        )
    with Session(fresh_engine) as session:
        again = import_text(session, tmp_path, text, slug="p")
        session.commit()
        assert {t.code: t.id for t in session.exec(select(Task))} == ids
        assert {u.name: u.id for u in session.exec(select(Unit))} == unit_ids
        assert (
            _count(session, Task),
            _count(session, Responsibility),
            _count(session, Unit),
            _count(session, Section),
        ) == counts
    assert first.plan_created and len(first.tasks_added) == 76
    assert not again.plan_created
    assert (again.tasks_added, again.tasks_changed, again.tasks_removed) == ([], [], [])
    assert (again.links_added, again.links_removed) == (0, 0)
    assert again.links == first.links == counts[1]


def test_reimport_corrected_text_updates_in_place(fresh_engine: Engine, tmp_path: Path) -> None:
    original = SEED_PLAN.read_text(encoding="utf-8")
    with Session(fresh_engine) as session:
        import_text(session, tmp_path, original, slug="p")
        session.commit()
        task_id = session.exec(select(Task.id).where(Task.code == "2.2.5")).one()
    # The county corrects 2.2.5: 工商联 drops out, 县市场监管局 joins; the text gains a sentence.
    corrected = original.replace(
        "责任单位:县司法局、商务工业信息化局、工商联", "责任单位:县司法局、商务工业信息化局、县市场监管局"
    )
    corrected = corrected.replace(
        "切实增强企业管理者和职工的法治观念。", "切实增强企业管理者和职工的法治观念。每年评选法治企业。"
    )
    assert corrected != original
    with Session(fresh_engine) as session:
        summary = import_text(session, tmp_path, corrected, slug="p")
        session.commit()
        assert summary.tasks_changed == ["2.2.5"]
        assert (summary.links_added, summary.links_removed) == (1, 1)
        assert session.exec(select(Task.id).where(Task.code == "2.2.5")).one() == task_id
        assert [name for _, name, _ in _links(session, "p", "2.2.5")] == [
            "县司法局",
            "县商务工业信息化局",
            "县市场监管局",
        ]


def test_unknown_unit_is_created_with_a_warning(db: Session, tmp_path: Path) -> None:
    text = (FIXTURES / "inline_units.txt").read_text(encoding="utf-8")
    summary = import_text(db, tmp_path, text, slug="inline")
    assert "县政务服务管理局" in summary.units_created
    assert any("县政务服务管理局" in w for w in summary.warnings)
    unit = db.exec(select(Unit).where(Unit.name == "县政务服务管理局")).one()
    assert unit.kind == UnitKind.other
    # Known names in the same file still resolve through aliases and the county prefix.
    assert _links(db, "inline", "2.1.2") == [
        ("cooperating", "县法院", "县法院"),
        ("cooperating", "县检察院", "县检察院"),
        ("lead", "县人大办", "县人大办"),
    ]


def test_strict_refuses_unknown_units_and_writes_nothing(db: Session, tmp_path: Path) -> None:
    before = (_count(db, Plan), _count(db, Unit), _count(db, UnitAlias))
    text = (FIXTURES / "inline_units.txt").read_text(encoding="utf-8")
    with pytest.raises(UnknownUnitsError) as info:
        import_text(db, tmp_path, text, slug="inline", strict=True)
    assert "县政务服务管理局" in info.value.names
    assert (_count(db, Plan), _count(db, Unit), _count(db, UnitAlias)) == before


def test_paren_item_layout_imports(db: Session, tmp_path: Path) -> None:
    text = (FIXTURES / "paren_items.txt").read_text(encoding="utf-8")
    summary = import_text(db, tmp_path, text, slug="pufa")
    assert summary.tasks > 0
    assert _links(db, "pufa", "1.2.1") == [
        ("responsible", "县司法局", "县司法局"),
        ("responsible", "县教育体育局", "县教育体育局"),
    ]


def test_gb18030_file_imports_like_utf8(db: Session, tmp_path: Path) -> None:
    text = (FIXTURES / "inline_units.txt").read_text(encoding="utf-8")
    summary = import_text(db, tmp_path, text.encode("gb18030"), slug="gbk")
    plan = db.exec(select(Plan).where(Plan.slug == "gbk")).one()
    assert plan.source_encoding == "gb18030"
    assert summary.tasks == import_text(db, tmp_path, text, slug="utf8").tasks


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"", "空"),
        (b"   \n\n  ", "空"),
        (bytes(range(256)) * 4, "编码"),
        ("某县方案(2021-2025年)\n一、总体要求\n\n这是一段没有任务的文字。\n".encode(), "任务"),
        ("一、总体要求\n\n1.一项任务。\n\n牵头单位:县司法局\n".encode(), "实施期限"),
    ],
)
def test_unusable_files_are_refused_without_writing(db: Session, tmp_path: Path, content: bytes, needle: str) -> None:
    before = _count(db, Plan)
    with pytest.raises(PlanTextError) as info:
        import_text(db, tmp_path, content, slug="bad")
    assert needle in str(info.value)
    assert _count(db, Plan) == before


def test_plan_without_a_term_in_its_title_imports_and_reports_where_the_term_came_from(
    db: Session, tmp_path: Path
) -> None:
    text = (FIXTURES / "fabao_city_opinion.txt").read_text(encoding="utf-8")
    summary = import_text(db, tmp_path, text, slug="city-opinion")
    plan = db.exec(select(Plan).where(Plan.slug == "city-opinion")).one()
    assert (plan.title, plan.issuer, plan.period_start, plan.period_end) == (
        "关于推进民主法治建设的实施意见",
        "某某市人民政府",
        2012,
        2016,
    )
    assert summary.tasks == 14 and summary.links == 29  # one link per unit mention: none repeats in a task
    assert summary.warnings[0].startswith("第18行:实施期限取自发布日期(2012年)和总体目标“到2016年”")
    # The closing chapter's `(三)强化督查考核(牵头单位:…)` is a task with both its units.
    assert [(role, name) for role, name, _ in _links(db, "city-opinion", "3.3.1")] == [
        ("cooperating", "市政府督查室"),
        ("lead", "市委督查室"),
    ]


def test_given_term_is_stored_and_reported(db: Session, tmp_path: Path) -> None:
    text = (FIXTURES / "fabao_city_opinion.txt").read_text(encoding="utf-8")
    summary = import_text(db, tmp_path, text, slug="city-opinion", term=(2012, 2017))
    plan = db.exec(select(Plan).where(Plan.slug == "city-opinion")).one()
    assert (plan.period_start, plan.period_end) == (2012, 2017)
    assert summary.warnings[0] == "实施期限取自 --term 2012-2017 / term taken from --term"
    record = db.exec(select(PlanImport).where(PlanImport.plan_id == plan.id)).one()
    assert record.warnings.startswith("实施期限取自 --term 2012-2017")


def test_plan_without_any_term_is_refused_naming_the_option(db: Session, tmp_path: Path) -> None:
    before = (_count(db, Plan), _count(db, Task), _count(db, Unit))
    text = "关于推进法治建设的实施意见\n一、任务\n(一)甲组\n1.甲。(牵头单位:市新设局)\n"
    with pytest.raises(PlanTextError) as info:
        import_text(db, tmp_path, text, slug="no-term")
    assert "找不到实施期限" in str(info.value) and "--term" in str(info.value)
    assert (_count(db, Plan), _count(db, Task), _count(db, Unit)) == before


@pytest.mark.parametrize(
    ("fixture", "tasks", "links"),
    [("fabao_city_opinion.txt", 14, 29), ("unnumbered_paragraphs.txt", 11, 24), ("restart_groups.txt", 10, 18)],
)
def test_other_provinces_layouts_import(db: Session, tmp_path: Path, fixture: str, tasks: int, links: int) -> None:
    summary = import_text(db, tmp_path, (FIXTURES / fixture).read_bytes(), slug="layout")
    plan_id = db.exec(select(Plan.id).where(Plan.slug == "layout")).one()
    codes = db.exec(select(Task.code).where(Task.plan_id == plan_id).order_by(col(Task.position))).all()
    assert (summary.tasks, summary.links, len(codes)) == (tasks, links, tasks)
    stored_links = db.exec(
        select(func.count()).select_from(Responsibility).join(Task).where(col(Task.plan_id) == plan_id)
    ).one()
    assert stored_links == links
