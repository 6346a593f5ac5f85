"""Property tests of the importer: damaged, shuffled and random texts never crash it, never half-write.

Inputs are the real plan texts (the seed and the fixtures) mutated the way copying and scraping
damage them — truncated, lines reordered or dropped, garbage lines inserted, ASCII and full-width
punctuation swapped, re-encoded as GB18030 — plus texts assembled from the genre's line shapes and
plain random bytes. The parser may refuse any of them, but only with `PlanTextError` and a Chinese
message; whatever it accepts fits the tables and imports exactly, on SQLite and PostgreSQL.

Hypothesis profiles (tests/conftest.py): `ci` (derandomized: the same examples on every run) under CI,
`dev` elsewhere; `HYPOTHESIS_PROFILE=ci` reproduces a CI run locally.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text as sql
from sqlmodel import Session, col, func, select

from app.importer.loader import UnknownUnitsError
from app.importer.parsed import ParsedPlan
from app.importer.parser import PlanTextError, decode_plan_bytes, parse_plan
from app.importer.service import import_file
from app.models import Plan, Responsibility, Section, Task
from app.services.unit_names import UnitResolver, name_key
from tests.factories import SEED_PLAN, SEED_SLUG, SEED_UNITS_DIR, XIJI

FIXTURES = Path(__file__).parent / "fixtures"
BASES = [SEED_PLAN.read_text(encoding="utf-8")] + [
    path.read_text(encoding="utf-8") for path in sorted(FIXTURES.glob("*.txt"))
]

# The lengths of the columns the parsed values go to (app/models/plan.py, task.py, unit.py).
COLUMN_LIMITS = {"plan.title": 200, "plan.issuer": 100, "plan.doc_index": 64, "section.title": 200}
TASK_TITLE_LIMIT, CODE_LIMIT, UNIT_NAME_LIMIT = 200, 16, 100

_CJK = re.compile(r"[\u4e00-\u9fff]")

# Example counts are kept modest for the suite; PLAN_API_FUZZ_SCALE=20 hunts twenty times longer.
SCALE = int(os.environ.get("PLAN_API_FUZZ_SCALE", "1"))

# ---------------------------------------------------------------------------------------------
# Strategies

# Text without surrogates (no encoding can write them), control characters (decoding refuses those;
# `test_any_string_parses_or_is_refused` feeds them to the parser directly) or line breaks (the
# line-shaped strategies place those), weighted towards Chinese and the genre's punctuation.
_chars = st.one_of(
    st.characters(min_codepoint=0x4E00, max_codepoint=0x4FFF),
    st.sampled_from(list("()（）:：;；,，、。.．-—【】《》“” \u3000\u00a0\u200b年月日0123456789")),
    st.characters(exclude_categories=("Cs", "Cc")),
)
_words = st.text(_chars, max_size=30)
_long_words = st.text(_chars, min_size=100, max_size=400)  # a heading or title line that runs on
_genre_words = st.sampled_from(
    [
        "加强组织领导",
        "总体目标",
        "县司法局",
        "各乡镇、各部门(单位)",
        "2021-2025年",
        "到2030年",
        "2016年至2020年",
        "2024年底前完成",
        "。",
        ",",
        "、",
    ]
)
_markers = st.sampled_from(
    [
        "一、",
        "二、",
        "三、",
        "十二、",
        "(一)",
        "(二)",
        "（三）",
        ")",
        "()",
        "三)",
        "1.",
        "2、",
        "3．",
        "(1)",
        "（2）",
        "①",
        "",
    ]
)
_unit_clauses = st.builds(
    lambda label, colon, names, paren: f"({label}{colon}{names})" if paren else f"{label}{colon}{names}",
    st.sampled_from(["牵头单位", "配合单位", "责任单位", "牵头部门", "协办单位"]),
    st.sampled_from([":", "：", ""]),
    # Names the resolver cannot tell apart (`县Ａ局`/`县A局`) once made an import crash.
    st.lists(
        st.one_of(st.sampled_from(["县司法局", "各乡镇", "各部门(单位)", "县Ａ局", "县A局", "县 A局"]), _words),
        max_size=4,
    ).map("、".join),
    st.booleans(),
)
_header_lines = st.builds(
    lambda label, value: f"{label}{value}",
    st.sampled_from(
        [
            "【发布部门】",
            "发文字号:",
            "【公布日期】",
            "施行日期:",
            "引证码:",
            "原文链接:",
            "索引号:",
            "发文时间 ",
            "标 题:",
            "发布机构 ",
        ]
    ),
    st.one_of(st.sampled_from(["2012.05.10", "2022-13-45", "某某市人民政府", "《某某方案(2021-2025年)》"]), _words),
)
_titles = st.one_of(
    st.sampled_from(
        ["某某县测试实施方案(2021-2025年)", "标题:关于印发《某某方案(2022—2024年)》的通知", "某某县2023年工作要点"]
    ),
    st.builds(lambda words: f"标题:{words}实施方案(2021-2025年)", _long_words),
)
genre_lines = st.one_of(
    st.builds(lambda m, parts: m + "".join(parts), _markers, st.lists(st.one_of(_genre_words, _words), max_size=5)),
    st.builds(lambda m, words: m + words, _markers, _long_words),
    st.builds(lambda m, body, units: m + body + units, _markers, _words, _unit_clauses),
    _unit_clauses,
    _header_lines,
    _words,
)
_CHAPTER_NUMERALS = ["一", "二", "三", "四", "五", "六", "七", "八", "九", "十", "十一", "十二"]


@st.composite
def generated_texts(draw: st.DrawFn) -> str:
    """A text in the genre's shape: preamble lines, then chapters `一、` `二、` … of random lines."""
    lines = draw(st.lists(st.one_of(_header_lines, _titles, _words, genre_lines), max_size=6))
    for numeral in _CHAPTER_NUMERALS[: draw(st.integers(0, len(_CHAPTER_NUMERALS)))]:
        lines.append(f"{numeral}、{draw(_words)}")
        lines += draw(st.lists(genre_lines, max_size=8))
    return "\n".join(lines)


_TO_FULL_WIDTH = {"(": "\uff08", ")": "\uff09", ":": "\uff1a", ";": "\uff1b", ",": "\uff0c", ".": "\uff0e"}
_TO_ASCII = {v: k for k, v in _TO_FULL_WIDTH.items()}


@st.composite
def mutated_texts(draw: st.DrawFn) -> str:
    """A real plan text, damaged by a few random edits."""
    lines = draw(st.sampled_from(BASES)).split("\n")
    for _ in range(draw(st.integers(0, 6))):
        edit = draw(st.sampled_from(["truncate", "swap", "move", "drop", "insert", "duplicate", "punctuation"]))
        if not lines:
            break
        i = draw(st.integers(0, len(lines) - 1))
        j = draw(st.integers(0, len(lines) - 1))
        if edit == "truncate":
            text = "\n".join(lines)
            lines = text[: draw(st.integers(len(text) // 10, len(text)))].split("\n")
        elif edit == "swap":
            lines[i], lines[j] = lines[j], lines[i]
        elif edit == "move":
            lines.insert(j, lines.pop(i))
        elif edit == "drop":
            del lines[i : i + draw(st.integers(1, 20))]
        elif edit == "insert":
            lines[i:i] = draw(st.lists(genre_lines, min_size=1, max_size=3))
        elif edit == "duplicate":
            lines[j:j] = lines[i : i + draw(st.integers(1, 10))]
        else:
            table = draw(st.sampled_from([_TO_FULL_WIDTH, _TO_ASCII]))
            lines[i] = (
                "".join(table.get(ch, ch) if draw(st.booleans()) else ch for ch in lines[i][:200]) + lines[i][200:]
            )
    return "\n".join(lines)


def encoded(texts: st.SearchStrategy[str]) -> st.SearchStrategy[bytes]:
    """The text as a county would upload it: UTF-8 (with or without BOM) or GB18030."""
    return st.builds(
        lambda text, encoding: text.encode(encoding), texts, st.sampled_from(["utf-8", "utf-8-sig", "gb18030"])
    )


@st.composite
def damaged_bytes(draw: st.DrawFn) -> bytes:
    """An encoded plan with a few bytes overwritten: broken multi-byte sequences, stray controls."""
    data = bytearray(draw(encoded(st.sampled_from(BASES))))
    for _ in range(draw(st.integers(1, 8))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data)


any_plan_bytes = st.one_of(
    encoded(mutated_texts()), encoded(generated_texts()), damaged_bytes(), st.binary(max_size=2000)
)

# ---------------------------------------------------------------------------------------------
# The parser


def parse_bytes(data: bytes, *, default_title: str | None = "fuzz") -> ParsedPlan | None:
    """The parsed plan, or None when it was refused the one allowed way: PlanTextError, in Chinese."""
    try:
        text, _ = decode_plan_bytes(data)
        return parse_plan(text, default_title=default_title)
    except PlanTextError as error:
        assert _CJK.search(str(error)[:12]), f"refusal does not start in Chinese: {error}"
        return None


def check_structure(plan: ParsedPlan) -> None:
    """What the loader relies on: unique codes, tasks in existing subsections, values that fit."""
    section_codes = [s.code for s in plan.sections]
    assert len(section_codes) == len(set(section_codes))
    subsections = {s.code for s in plan.sections if s.level == 2}
    codes = [t.code for t in plan.tasks]
    assert len(codes) == len(set(codes)) and plan.tasks
    for task in plan.tasks:
        assert task.section_code in subsections and task.code.startswith(task.section_code + ".")
        assert len(task.code) <= CODE_LIMIT
        assert task.title is None or len(task.title) <= TASK_TITLE_LIMIT
        assert plan.period_start <= task.due.year <= plan.period_end and (task.due.month, task.due.day) == (12, 31)
        for mention in task.units:
            assert 0 < len(mention.as_written) <= UNIT_NAME_LIMIT
    assert 1949 <= plan.period_start <= plan.period_end <= 2100
    assert len(plan.title) <= COLUMN_LIMITS["plan.title"] and plan.title
    assert plan.issuer is None or len(plan.issuer) <= COLUMN_LIMITS["plan.issuer"]
    assert plan.doc_index is None or len(plan.doc_index) <= COLUMN_LIMITS["plan.doc_index"]
    assert all(len(s.title) <= COLUMN_LIMITS["section.title"] for s in plan.sections)  # `(一)` alone: ""
    assert all(isinstance(w, str) and w for w in plan.warnings)


@settings(max_examples=150 * SCALE)
@given(mutated_texts())
def test_mutated_plans_parse_or_are_refused(text: str) -> None:
    for data in (text.encode("utf-8"), text.encode("gb18030")):
        plan = parse_bytes(data)
        if plan is not None:
            check_structure(plan)


@settings(max_examples=200 * SCALE)
@given(generated_texts(), st.sampled_from([None, "fuzz"]))
def test_generated_plans_parse_or_are_refused(text: str, default_title: str | None) -> None:
    plan = parse_bytes(text.encode("utf-8"), default_title=default_title)
    if plan is not None:
        check_structure(plan)
        assert parse_plan(text, default_title=default_title) == plan  # deterministic


@settings(max_examples=150 * SCALE)
@given(st.one_of(damaged_bytes(), st.binary(max_size=2000)))
def test_damaged_and_random_bytes_parse_or_are_refused(data: bytes) -> None:
    plan = parse_bytes(data)
    if plan is not None:
        check_structure(plan)


@settings(max_examples=100 * SCALE)
@given(st.text(st.characters(exclude_categories=("Cs",)), max_size=300))
def test_any_string_parses_or_is_refused(text: str) -> None:
    # parse_plan itself takes any str (control characters included: only decoding refuses those).
    try:
        plan = parse_plan(text, default_title="fuzz")
    except PlanTextError:
        return
    check_structure(plan)


# ---------------------------------------------------------------------------------------------
# Through import_file, on a real database (both engines): all or nothing

_IMPORTER_TABLES = (
    "plan",
    "section",
    "task",
    "responsibility",
    "unit",
    "unit_alias",
    "group_member",
    "plan_import",
    "change_event",
)


def snapshot(session: Session) -> dict[str, list[tuple[object, ...]]]:
    """Every row of the tables an import writes, in id order."""
    session.flush()
    return {
        table: [tuple(row) for row in session.execute(sql(f"SELECT * FROM {table} ORDER BY 1"))]
        for table in _IMPORTER_TABLES
    }


@pytest.fixture
def plan_file(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "fuzz.txt"


def check_import(db: Session, path: Path, data: bytes, strict: bool, slug: str = "fuzz") -> None:
    path.write_bytes(data)
    before = snapshot(db)
    savepoint = db.begin_nested()
    try:
        try:
            parsed, summary = import_file(
                session=db, path=path, slug=slug, units_path=SEED_UNITS_DIR, strict=strict, jurisdiction=XIJI
            )
        except (PlanTextError, UnknownUnitsError):
            # Refused before anything was written: the tables are as they were, even before the rollback.
            assert snapshot(db) == before
            return
        plan = db.exec(select(Plan).where(Plan.slug == slug)).one()
        tasks = db.exec(select(func.count()).select_from(Task).where(Task.plan_id == plan.id)).one()
        links = db.exec(
            select(func.count()).select_from(Responsibility).join(Task).where(col(Task.plan_id) == plan.id)
        ).one()
        sections = db.exec(select(func.count()).select_from(Section).where(Section.plan_id == plan.id)).one()
        resolver = UnitResolver(db, plan.jurisdiction)
        expected_links = sum(
            len({(resolver.resolve(m.as_written).id, m.role) for m in task.units})  # type: ignore[union-attr]
            for task in parsed.tasks
        )
        # Over an existing plan, tasks with progress history stay (and are reported); the seed has none.
        kept = [w for w in summary.warnings if "已有进展报告" in w]
        assert (tasks, links) == (len(parsed.tasks) + len(kept), expected_links) and not kept
        assert sections == len(parsed.sections)
        assert (summary.tasks, summary.links) == (tasks, links)
    finally:
        savepoint.rollback()
    assert snapshot(db) == before  # and each example leaves the database as it found it


FUZZ_DB = settings(
    max_examples=25 * SCALE, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)


@FUZZ_DB
@given(data=any_plan_bytes, strict=st.booleans(), slug=st.sampled_from(["fuzz", SEED_SLUG]))
def test_import_is_all_or_nothing(db: Session, plan_file: Path, data: bytes, strict: bool, slug: str) -> None:
    # A new plan, or a damaged text re-imported over the seed plan (updates, removals, new units).
    check_import(db, plan_file, data, strict, slug)


# ---------------------------------------------------------------------------------------------
# What fuzzing found, kept as explicit regressions

SHORT_HEADER = "某县测试实施方案(2021-2025年)\n"


def test_run_on_heading_is_cut_to_a_title_and_kept_as_text() -> None:
    # Found: a 200+ character heading line became a 200+ character section title (PostgreSQL: error).
    line = "0" * 250
    plan = parse_plan(SHORT_HEADER + f"一、任务\n(一){line}\n1.甲。\n责任单位:县甲局\n")
    section = plan.sections[1]
    assert (section.title, section.body) == ("0" * 200, line)
    assert plan.warnings == [f"第3行:小节标题与正文连写,推定标题为“{'0' * 200}”"]


def test_overlong_plan_title_is_cut_with_a_warning() -> None:
    title = "某" * 190 + "实施方案(2021-2025年)"
    plan = parse_plan(f"标题:{title}\n一、任务\n(一)甲组\n1.甲。\n责任单位:县甲局\n")
    assert plan.title == title[:200]
    assert plan.warnings == [
        f"第1行:方案标题过长({len(title)} 字),只保留前 200 字 / title cut to 200 characters",
        # The cut took the term with it; the line still names it.
        "第1行:实施期限取自正文前“2021-2025年”:2021-2025 / term taken from this line: 2021-2025",
    ]


def test_overlong_issuer_and_index_are_ignored_with_a_warning() -> None:
    text = (
        f"索引号:{'1' * 65}\n发布机构:{'某' * 101}\n" + SHORT_HEADER + "一、任务\n(一)甲组\n1.甲。\n责任单位:县甲局\n"
    )
    plan = parse_plan(text)
    assert (plan.issuer, plan.doc_index) == (None, None)
    assert plan.warnings == [
        "发布机构过长(101 字,上限 100),已忽略 / issuer longer than 100: ignored",
        "索引号过长(65 字,上限 64),已忽略 / document index longer than 64: ignored",
    ]


def test_unit_names_are_written_as_the_resolver_compares_them() -> None:
    # Found: `县Ａ局` and `县A局` were two unknown names with one key: the second insert broke the import.
    plan = parse_plan(SHORT_HEADER + "一、任务\n1.甲。(牵头单位:县Ａ局;配合单位:县A局、县 A 局)\n")
    assert [u.as_written for u in plan.tasks[0].units] == ["县A局", "县A局", "县A局"]
    # A space between a letter and its combining mark hides a composed character until removed.
    plan = parse_plan(SHORT_HEADER + "一、任务\n1.甲。(牵头单位:县A\u3000\u0308局;配合单位:县\u00c4局)\n")
    assert [u.as_written for u in plan.tasks[0].units] == ["县\u00c4局", "县\u00c4局"]


def test_a_name_that_unfolds_past_the_limit_is_not_a_unit() -> None:
    # U+FDFA is one character that NFKC (the resolver's form) spells with eighteen.
    with pytest.raises(PlanTextError):
        parse_plan(SHORT_HEADER + "一、任务\n1.甲。\n责任单位:县\ufdfa\ufdfa局\n")


def test_table_columns_hold_what_the_parser_produces() -> None:
    # The parser's limits are the columns' sizes; a migration that narrows one must change both.
    assert {
        "plan.title": Plan.__table__.c.title.type.length,  # type: ignore[attr-defined]
        "plan.issuer": Plan.__table__.c.issuer.type.length,  # type: ignore[attr-defined]
        "plan.doc_index": Plan.__table__.c.doc_index.type.length,  # type: ignore[attr-defined]
        "section.title": Section.__table__.c.title.type.length,  # type: ignore[attr-defined]
    } == COLUMN_LIMITS
    assert Task.__table__.c.title.type.length == TASK_TITLE_LIMIT  # type: ignore[attr-defined]
    assert Task.__table__.c.code.type.length == CODE_LIMIT  # type: ignore[attr-defined]
    assert Responsibility.__table__.c.as_written.type.length == UNIT_NAME_LIMIT  # type: ignore[attr-defined]


def test_names_one_key_apart_import_as_one_unit(db: Session, plan_file: Path) -> None:
    text = SHORT_HEADER + "一、任务\n1.甲。(牵头单位:县Ａ局;配合单位:县A局)\n2.乙。(责任单位:县\ufdfa局)\n"
    check_import(db, plan_file, text.encode("gb18030"), strict=False)
    plan_file.write_text(text, encoding="utf-8")
    _, summary = import_file(session=db, path=plan_file, slug="fuzz", units_path=SEED_UNITS_DIR, jurisdiction=XIJI)
    # Each name is created in the form the resolver compares in: `县Ａ局` and `县A局` are one unit.
    assert summary.units_created == ["县A局", name_key("县\ufdfa局")]
    assert summary.links == 3
