"""Tests for the plan text parser (app/importer/parser.py). Pure: no database, no network.

The seed expectations below were derived by reading seed/xiji-fzsh-2021-2025.txt line by line.
"""

from __future__ import annotations

import codecs
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from app.importer.parsed import ParsedPlan, ParsedTask, Role
from app.importer.parser import PlanTextError, decode_plan_bytes, parse_plan, parse_term

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "seed" / "xiji-fzsh-2021-2025.txt"
FIXTURES = Path(__file__).resolve().parent / "fixtures"

# The seed uses ASCII punctuation inside Chinese text; the fixtures mix in full-width forms.
# `fw()` spells a string with full-width ( ) : ; , so the expectations read like the source.
_FULL_WIDTH = str.maketrans({"(": "\uff08", ")": "\uff09", ":": "\uff1a", ";": "\uff1b", ",": "\uff0c"})


def fw(text: str) -> str:
    return text.translate(_FULL_WIDTH)


def units_by_role(task: ParsedTask) -> tuple[str, str, str]:
    """(lead, cooperating, responsible) names, each role's names joined with 、 in source order."""

    def names(role: Role) -> str:
        return "、".join(u.as_written for u in task.units if u.role is role)

    return names(Role.lead), names(Role.cooperating), names(Role.responsible)


@pytest.fixture(scope="module")
def seed() -> ParsedPlan:
    text, encoding = decode_plan_bytes(SEED.read_bytes())
    assert encoding == "utf-8"
    return parse_plan(text)


def tasks_by_code(plan: ParsedPlan) -> dict[str, ParsedTask]:
    return {task.code: task for task in plan.tasks}


# ---------------------------------------------------------------------------------------------
# Seed: 西吉县法治社会建设实施方案(2021-2025年)

G = "各乡镇、各部门(单位)"  # the most common 配合单位 line

# code, source line, 牵头单位, 配合单位, 责任单位 — exactly as written on the unit lines.
SEED_TASKS: list[tuple[str, int, str, str, str]] = [
    ("2.1.1", 40, "委宣传部", G, ""),
    ("2.1.2", 46, "县人大办", G, ""),
    ("2.1.3", 52, "", "", "县教育体育局"),
    ("2.1.4", 56, "委宣传部、司法局", G, ""),
    ("2.2.1", 64, "委宣传部、司法局", G, ""),
    ("2.2.2", 70, "法院、县委政法委、司法局", G, ""),
    ("2.2.3", 76, "县委组织部、人力资源社会保障局", G, ""),
    ("2.2.4", 82, "县教育体育局", G, ""),
    ("2.2.5", 88, "", "", "县司法局、商务工业信息化局、工商联"),
    ("2.3.1", 94, "法院、检察院、司法局", G, ""),
    ("2.3.2", 100, "法院、检察院、司法局", G, ""),
    ("2.3.3", 106, "司法局", G, ""),
    ("2.3.4", 112, "委宣传部、司法局", G, ""),
    ("2.4.1", 120, "委宣传部、司法局、文化旅游广电局", G, ""),
    ("2.4.2", 126, "委宣传部、司法局、自然资源局、文化旅游广电局", G, ""),
    ("2.4.3", 132, "发展改革局、司法局、文化旅游广电局", G, ""),
    ("3.1.1", 142, "人大办、司法局", G, ""),
    ("3.2.1", 150, "县委宣传部、民政局", G, ""),
    ("3.2.2", 156, "县发展改革局、民政局、市场监管局", G, ""),
    ("3.3.1", 164, "县委宣传部、政法委、民政局", G, ""),
    ("3.3.2", 170, "县委宣传部、民政局、市场监管局", G, ""),
    ("3.3.3", 176, "县委宣传部、自然资源局、卫生健康局、市场监管局", G, ""),
    ("3.3.4", 182, "人大办、政府办、司法局", G, ""),
    ("3.4.1", 190, "县发展改革局、民政局", G, ""),
    ("3.4.2", 196, "县发展改革局", G, ""),
    ("4.1.1", 206, "政府办", G, ""),
    ("4.1.2", 212, "政府办、发展改革局、司法局、审批局", G, ""),
    ("4.1.3", 218, "司法局", G, ""),
    ("4.2.1", 226, "司法局", "各乡镇、各行政执法部门(单位)", ""),
    ("4.2.2", 232, "县发展改革局、市场监管局", G, ""),
    ("4.2.3", 238, "政府办、司法局", G, ""),
    ("4.3.1", 246, "", "", "法院、检察院、公安局"),
    ("4.3.2", 250, "县委政法委、司法局", "县法院、检察院、公安局", ""),
    ("4.3.3", 256, "", "", "县法院、检察院、公安局"),
    ("4.3.4", 260, "", "", "县法院"),
    ("4.3.5", 264, "县检察院", "县法院、公安局、司法局", ""),
    ("4.3.6", 270, "县法院", "县检察院、公安局、司法局", ""),
    ("4.3.7", 276, "", "", "县法院"),
    ("4.4.1", 282, "县司法局", G, ""),
    ("4.4.2", 288, "", "", "县司法局"),
    ("4.4.3", 292, "县司法局", "各乡镇", ""),
    ("4.4.4", 298, "", "", "县司法局"),
    ("4.5.1", 304, "县委宣传部、司法局", G, ""),
    ("4.5.2", 310, "县发展改革局", "县工商联、司法局、财政局、市场监管局", ""),
    ("4.5.3", 316, "县民政局", "各部门(单位)", ""),
    ("5.1.1", 324, "县委政法委", G, ""),
    ("5.2.1", 332, "县委组织部、政法委、农业农村局", G, ""),
    ("5.2.2", 338, "县委编办、民政局", G, ""),
    ("5.2.3", 344, "县民政局、农业农村局", G, ""),
    ("5.2.4", 350, "县委组织部、民政局、农业农村局", "各乡镇", ""),
    ("5.2.5", 356, "县司法局", "各乡镇", ""),
    ("5.2.6", 362, "县民政局", "各乡镇", ""),
    ("5.2.7", 368, "县委统战部、教育体育局、财政局", "各部门(单位)", ""),
    ("5.3.1", 376, "", "", "各人民团体"),
    ("5.3.2", 380, "县民政局", "各部门(单位)", ""),
    ("5.3.3", 386, "县民政局", "各部门(单位)", ""),
    ("5.3.4", 392, "县委宣传部、团县委、民政局", "各部门(单位)", ""),
    ("5.3.5", 398, "县民政局", "各部门(单位)", ""),
    ("5.3.6", 404, "县民政局", "各部门(单位)", ""),
    ("5.3.7", 410, "县民政局、财政局", "各部门(单位)", ""),
    ("5.4.1", 418, "县委政法委", G, ""),
    (
        "5.4.2",
        424,
        "县委政法委、法院、检察院、公安局、自然资源局、卫生健康局、市场监管局",
        G,
        "",
    ),
    ("5.4.3", 430, "县卫生健康局、应急局", G, ""),
    ("5.4.4", 436, "县交通运输局、市场监管局、应急局", G, ""),
    ("5.4.5", 442, "县委政法委、公安局、民政局、司法局、卫生健康局", G, ""),
    ("5.5.1", 450, "县委政法委", "县法院、检察院、公安局、司法局、信访局", ""),
    ("5.5.2", 456, "县委政法委", "县法院、检察院、公安局、司法局、各乡镇", ""),
    ("5.5.3", 462, "县司法局", G, ""),
    ("6.1.1", 472, "县委网信办、教育体育局、公安局", G, ""),
    ("6.2.1", 480, "县委宣传部、网信办", G, ""),
    ("6.2.2", 486, "县委网信办、商务工业信息化局", G, ""),
    ("6.2.3", 492, "县委网信办、公安局", G, ""),
    ("6.2.4", 498, "县委网信办", G, ""),
    ("6.2.5", 504, "县委宣传部、团县委、教育体育局", G, ""),
    ("6.3.1", 512, "县委网信办、公安局", G, ""),
    ("6.3.2", 518, "县委网信办、公安局", G, ""),
]

SEED_TITLES = {
    "2.2.2": "引导全社会尊重司法裁判,维护司法权威",
    "3.1.1": "加强社会重要领域制度建设",
    "4.2.3": "推进政府信息公开,执行行政规范性文件“三统一”制度",
    "4.3.1": "加强对公民合法权益的司法保护",
    "4.3.2": "强化诉讼参与人诉讼权利制度保障",
    "4.3.4": "健全执行工作长效机制,依法保障胜诉当事人及时实现合法权益",
    "4.3.6": "落实人民陪审员制度,完善人民监督员制度",
    "5.1.1": "完善社会治理体制机制",
    "5.2.2": "按照减负赋能原则,制定和落实社区治理方面的权责清单",
    "5.2.4": "全面实施村级事务阳光工程",
    "5.2.5": "开展法治乡村创建活动",
    "5.3.4": "推动和支持志愿服务组织发展,开展志愿服务标准化建设",
    "5.3.5": "发挥行业协会商会自律功能,探索建立行业自律组织",
    "5.4.3": "强化突发事件应急体系建设",
    "5.4.5": "健全社会心理服务体系和疏导机制、危机干预机制",
    "5.5.1": "全面落实诉讼与信访分离制度,深入推进依法分类处理信访诉求",
    "5.5.2": "在矛盾纠纷多发领域建立“一站式”纠纷解决机制",
    "5.5.3": "加强农村土地承包经营纠纷调解、劳动人事争议调解工作",
    "6.1.1": "完善网络管理制度",
    "6.2.4": "加强全社会网络法治和网络素养教育,不断提高网民用网素养",
    "6.2.5": "加强青少年网络安全教育,引导青少年理性上网",
    "6.3.1": "落实网络安全责任制,明确管理部门和网信企业的网络安全责任",
}
SEED_SECTIONS = [
    ("1", "总体要求", 30, False),
    ("1.1", "指导思想", 32, False),
    ("1.2", "总体目标", 34, True),
    ("2", "推动全社会增强法治观念", 36, False),
    ("2.1", "维护宪法法律权威", 38, True),
    ("2.2", "培育全民法治观念", 62, True),
    ("2.3", "健全普法责任制", 92, True),
    ("2.4", "建设社会主义法治文化", 118, True),
    ("3", "健全社会领域制度规范", 138, False),
    ("3.1", "加强社会重要领域制度建设", 140, False),
    ("3.2", "促进社会规范建设", 148, True),
    ("3.3", "加强道德规范建设", 162, True),
    ("3.4", "推进社会诚信建设", 188, True),
    ("4", "加强权利保护", 202, False),
    ("4.1", "健全公众参与重大公共决策机制", 204, True),
    ("4.2", "保障行政执法中当事人合法权益", 224, True),
    ("4.3", "加强人权司法保障", 244, True),
    ("4.4", "为群众提供便捷高效的公共法律服务", 280, True),
    ("4.5", "引导社会主体履行法定义务承担社会责任", 302, True),
    ("5", "推进社会治理法治化", 322, False),
    ("5.1", "完善社会治理体制机制", 324, True),
    ("5.2", "推进多层次多领域依法治理", 330, True),
    ("5.3", "发挥人民团体和社会组织在法治社会建设中的作用", 374, True),
    ("5.4", "增强社会安全感", 416, True),
    ("5.5", "依法有效化解社会矛盾纠纷", 448, True),
    ("6", "依法治理网络空间", 468, False),
    ("6.1", "完善网络管理制度", 470, True),
    ("6.2", "培育良好的网络法治意识", 478, True),
    ("6.3", "保障公民依法安全用网", 510, True),
    ("7", "加强组织保障", 524, False),
    ("7.1", "强化组织领导", 526, True),
    ("7.2", "加强统筹协调", 528, False),
    ("7.3", "强化督查考评", 530, True),
]
SEED_WARNINGS = [
    "第32行:小节标题与正文连写,推定标题为“指导思想”",
    "第34行:小节标记“)”不完整或不连续,按顺序推定为1.2",
    "第34行:小节标题与正文连写,推定标题为“总体目标”",
    "第38行:小节标记“)”不完整或不连续,按顺序推定为2.1",
    "第52行:段落没有编号但带有责任单位,推定为第3项(2.1.3)",
    "第62行:小节标记“)”不完整或不连续,按顺序推定为2.2",
    "第92行:小节标记“)”不完整或不连续,按顺序推定为2.3",
    "第118行:小节标记“)”不完整或不连续,按顺序推定为2.4",
    "第148行:小节标记“)”不完整或不连续,按顺序推定为3.2",
    "第162行:小节标记“)”不完整或不连续,按顺序推定为3.3",
    "第188行:小节标记“)”不完整或不连续,按顺序推定为3.4",
    "第204行:小节标记“()”不完整或不连续,按顺序推定为4.1",
    "第224行:小节标记“)”不完整或不连续,按顺序推定为4.2",
    "第244行:小节标记“)”不完整或不连续,按顺序推定为4.3",
    "第256行:段落没有编号但带有责任单位,推定为第3项(4.3.3)",
    "第280行:小节标记“)”不完整或不连续,按顺序推定为4.4",
    "第302行:小节标记“)”不完整或不连续,按顺序推定为4.5",
    "第324行:小节标记“)”不完整或不连续,按顺序推定为5.1",
    "第324行:小节标题与正文连写,推定标题为“完善社会治理体制机制”",
    "第330行:小节标记“)”不完整或不连续,按顺序推定为5.2",
    "第374行:小节标记“)”不完整或不连续,按顺序推定为5.3",
    "第416行:小节标记“)”不完整或不连续,按顺序推定为5.4",
    "第448行:小节标记“)”不完整或不连续,按顺序推定为5.5",
    "第470行:小节标记“)”不完整或不连续,按顺序推定为6.1",
    "第478行:小节标记“)”不完整或不连续,按顺序推定为6.2",
    "第510行:小节标记“)”不完整或不连续,按顺序推定为6.3",
    "第526行:小节标记“)”不完整或不连续,按顺序推定为7.1",
    "第526行:小节标题与正文连写,推定标题为“强化组织领导”",
    "第528行:小节标题与正文连写,推定标题为“加强统筹协调”",
    "第530行:小节标记“三)”不完整或不连续,按顺序推定为7.3",
    "第530行:小节标题与正文连写,推定标题为“强化督查考评”",
]

# Subsection (and chapter) codes per chapter, with the number of tasks in each subsection.
SEED_TASK_COUNTS = {
    "2.1": 4, "2.2": 5, "2.3": 4, "2.4": 3,
    "3.1": 1, "3.2": 2, "3.3": 4, "3.4": 2,
    "4.1": 3, "4.2": 3, "4.3": 7, "4.4": 4, "4.5": 3,
    "5.1": 1, "5.2": 7, "5.3": 7, "5.4": 5, "5.5": 3,
    "6.1": 1, "6.2": 5, "6.3": 2,
}  # fmt: skip


def test_seed_metadata(seed: ParsedPlan) -> None:
    assert seed.title == "西吉县法治社会建设实施方案(2021-2025年)"
    assert seed.doc_index == "640422001/2022-00081"
    assert seed.issued_on == date(2022, 7, 15)
    assert seed.issuer == "西吉县政府办公室"
    assert (seed.period_start, seed.period_end) == (2021, 2025)
    assert seed.encoding == "utf-8"


def test_seed_goals(seed: ParsedPlan) -> None:
    assert seed.goals is not None
    assert seed.goals.startswith("2025年,“八五”普法规划实施完成,法治观念深入人心,")
    assert seed.goals.endswith("为2035年基本建成法治社会奠定坚实基础。")
    assert "总体目标" not in seed.goals
    assert "\n" not in seed.goals


def test_seed_task_codes(seed: ParsedPlan) -> None:
    assert [t.code for t in seed.tasks] == [row[0] for row in SEED_TASKS]
    assert len(seed.tasks) == 76


def test_seed_task_counts_per_subsection(seed: ParsedPlan) -> None:
    counts: dict[str, int] = {}
    for task in seed.tasks:
        counts[task.section_code] = counts.get(task.section_code, 0) + 1
    assert counts == SEED_TASK_COUNTS
    for task in seed.tasks:
        assert task.code.rsplit(".", 1)[0] == task.section_code


def test_seed_units_per_task(seed: ParsedPlan) -> None:
    actual = [(t.code, t.line, *units_by_role(t)) for t in seed.tasks]
    assert actual == SEED_TASKS


def test_seed_unit_lines(seed: ParsedPlan) -> None:
    # Every task is followed by a blank line, its first unit line, a blank line, its second.
    for task in seed.tasks:
        lines = [(u.role, u.line) for u in task.units]
        has_lead = any(role is Role.lead for role, _ in lines)
        for role, line in lines:
            expected = task.line + 4 if role is Role.cooperating and has_lead else task.line + 2
            assert line == expected, (task.code, role, line)


def test_seed_unit_names_are_clean(seed: ParsedPlan) -> None:
    names = {u.as_written for t in seed.tasks for u in t.units}
    assert "各部门(单位)" in names
    assert "各行政执法部门(单位)" in names
    assert all(" " not in n and "\u2002" not in n and "\u00a0" not in n for n in names)
    assert "单位)" not in names and "各部门(" not in names  # never split inside parentheses


def test_seed_inferred_numbers(seed: ParsedPlan) -> None:
    inferred = [t.code for t in seed.tasks if t.number_inferred]
    assert inferred == ["2.1.3", "4.3.3"]
    tasks = tasks_by_code(seed)
    assert tasks["2.1.3"].text.startswith("持续开展中小学生“学宪法讲宪法”活动,")
    assert tasks["4.3.3"].text.startswith("加强对非法取证行为的源头预防严格执行非法证据排除规则,")
    assert tasks["4.3.4"].text.startswith("健全执行工作长效机制,")  # `4. ` with a space


def test_seed_sections(seed: ParsedPlan) -> None:
    actual = [(s.code, s.title, s.line, s.marker_inferred) for s in seed.sections]
    assert actual == SEED_SECTIONS
    for section in seed.sections:
        assert section.level == (1 if "." not in section.code else 2)
        assert section.number == int(section.code.rsplit(".", 1)[-1])


def test_seed_section_bodies(seed: ParsedPlan) -> None:
    bodies = {s.code: s.body for s in seed.sections if s.body is not None}
    assert sorted(bodies) == ["1.1", "1.2", "7.1", "7.2", "7.3"]
    assert bodies["1.1"].startswith("高举中国特色社会主义伟大旗帜,坚持以习近平新时代")
    assert bodies["1.1"].endswith("加快富民强县步伐提供坚实法治保障")
    assert bodies["1.2"] == seed.goals
    assert bodies["7.1"].startswith("各级党委要落实推进本地区、本单位法治社会建设的领导责任,")
    assert bodies["7.2"].startswith("推进法治社会与法治国家、法治政府、法治社会一体建设,")
    assert bodies["7.3"].startswith("建立健全对法治社会建设的督促落实机制,")
    assert bodies["7.3"].endswith("委依法治县办要抓好督促落实,确保方案各项任务落到实处。")


def test_seed_footer_ignored(seed: ParsedPlan) -> None:
    assert seed.sections[-1].code == "7.3"
    everything = [s.body or "" for s in seed.sections] + [t.text for t in seed.tasks]
    for junk in ("附件下载", "扫一扫", "网站地图", "主办", "xjxzwgkb", "ICP备", "网站标识码"):
        assert not any(junk in text for text in everything), junk


def test_seed_titles(seed: ParsedPlan) -> None:
    titles = {t.code: t.title for t in seed.tasks if t.title is not None}
    assert titles == SEED_TITLES


def test_seed_single_paragraph_subsections(seed: ParsedPlan) -> None:
    tasks = tasks_by_code(seed)
    assert tasks["3.1.1"].text.startswith("完善教育、劳动就业、收入分配、社会保障、")
    assert tasks["5.1.1"].text.startswith("健全委在发挥总揽全局、协调各方领导作用的体制,")
    assert tasks["5.1.1"].text.endswith("推进社会治理制度化、规范化、程序化。")
    assert tasks["6.1.1"].text.startswith("严格遵守国家网络安全、个人信息保护、")
    assert [tasks[c].number_inferred for c in ("3.1.1", "5.1.1", "6.1.1")] == [False, False, False]


def test_seed_task_text_has_no_number_or_units(seed: ParsedPlan) -> None:
    tasks = tasks_by_code(seed)
    assert tasks["2.1.1"].text.startswith("切实加强对国家工作人民特别是各级领导干部的宪法教育,")
    assert tasks["3.4.2"].text.startswith("完善诚信建设长效机制,")  # leading U+2002 on the line
    assert tasks["2.2.5"].text.endswith("切实增强企业管理者和职工的法治观念。")  # trailing U+2002 removed
    for task in seed.tasks:
        assert "\n" not in task.text
        assert "单位:" not in task.text and not task.text[0].isdigit()


def test_seed_due_dates(seed: ParsedPlan) -> None:
    dues = {t.code: t.due for t in seed.tasks}
    assert dues.pop("5.2.5") == date(2023, 12, 31)
    assert set(dues.values()) == {date(2025, 12, 31)}
    assert "(2021-2025年)" in tasks_by_code(seed)["5.4.1"].text  # a period, not a due date


def test_seed_warnings(seed: ParsedPlan) -> None:
    assert seed.warnings == SEED_WARNINGS


def test_seed_is_stable_under_crlf_and_bom(seed: ParsedPlan) -> None:
    data = codecs.BOM_UTF8 + SEED.read_bytes().replace(b"\n", b"\r\n")
    text, encoding = decode_plan_bytes(data)
    assert encoding == "utf-8-sig"
    assert parse_plan(text) == seed


def test_default_title_is_only_a_fallback(seed: ParsedPlan) -> None:
    text = SEED.read_text(encoding="utf-8")
    assert parse_plan(text, default_title="别的标题").title == seed.title
    without_title_line = text.replace("标 题:", "题目 ", 1)
    plan = parse_plan(without_title_line, default_title="西吉县法治社会建设实施方案(2021-2025年)")
    assert plan.title == "西吉县法治社会建设实施方案(2021-2025年)"


# ---------------------------------------------------------------------------------------------
# Fixture: inline units, (一) subsections with 1. items, full-width punctuation

INLINE_SECTIONS = [
    ("1", "总体要求", 5, False, None),
    ("1.1", "指导思想", 7, False, fw("坚持以习近平新时代中国特色社会主义思想为指导,全面贯彻习近平法治思想。")),
    ("1.2", "主要目标", 9, False, fw("到2025年,政府行为全面纳入法治轨道,法治政府建设取得重要进展。")),
    ("2", "主要任务", 11, False, None),
    ("2.1", "深入推进宪法实施", 13, False, None),
    ("2.2", "健全依法决策机制", 21, False, None),
    ("2.3", "深化“放管服”改革", 30, False, None),
    ("3", "严格规范公正文明执法", 36, False, None),
    ("3.1", "深化行政执法体制改革", 38, False, None),
    ("3.2", "全面推行行政执法三项制度", 40, False, None),
    ("4", "组织保障", 48, False, None),
    ("4.1", "加强组织领导", 50, False, "各乡镇、各部门要把法治政府建设摆在全局工作的重要位置。"),
    ("4.2", "强化督促落实", 52, False, "县委依法治县办要加强督促检查,确保各项任务落到实处。"),
]

# code, line, title, text, due year, 牵头, 配合, 责任
INLINE_TASKS = [
    (
        "2.1.1", 15, "加强宪法宣传教育",
        "加强宪法宣传教育。将宪法学习纳入县委理论学习中心组学习计划,每年至少开展一次专题学习。",
        2025, "", "", "县委办、县政府办",
    ),
    (
        "2.1.2", 17, "落实宪法宣誓制度",
        "落实宪法宣誓制度。县人大常委会选举或者任命的国家工作人员就职时公开进行宪法宣誓。",
        2025, "县人大办", "县法院、县检察院", "",
    ),
    (
        "2.1.3", 19, None, fw("推进合法性审查全覆盖,2024年底前完成全部规范性文件清理。"),
        2024, "县司法局", "各部门(单位)", "",
    ),
    (
        "2.2.1", 23, None,
        "严格落实重大行政决策程序规定,把公众参与、专家论证、风险评估、合法性审查和集体讨论决定作为必经程序。",
        2025, "县政府办", "各乡镇、各部门(单位)", "",
    ),
    (
        "2.2.2", 25, "建立重大行政决策目录管理制度",
        "建立重大行政决策目录管理制度。\n每年第一季度公布年度决策事项目录,2026年完成决策后评估制度建设。",
        2025, "", "", "县政府办",
    ),
    (
        "2.2.3", 28, None, "推行政府法律顾问制度,2023年实现县乡两级法律顾问全覆盖。",
        2023, "", "", "县司法局",
    ),
    ("2.3.1", 32, None, "全面实行权责清单制度。", 2025, "县委编办", "县政务服务管理局", ""),
    (
        "2.3.2", 34, None, "深化“一网通办”,推进政务服务事项网上可办。",
        2025, "", "", "县政务服务管理局、县大数据中心",
    ),
    ("3.1.1", 38, "深化行政执法体制改革", "推进综合行政执法改革,整合执法队伍。", 2025, "县委编办", "县司法局", ""),
    (
        "3.2.1", 42, "推行行政执法公示制度", "推行行政执法公示制度。执法主体、人员、职责、权限等信息全部公开。",
        2025, "县司法局", "各行政执法部门(单位)", "",
    ),
    (
        "3.2.2", 44, None, "推行执法全过程记录制度和重大执法决定法制审核制度。",
        2025, "", "", "各行政执法部门(单位)",
    ),
    ("3.2.3", 46, None, "每年开展一次行政执法案卷评查。", 2025, "", "", "县司法局"),
]  # fmt: skip


def read_fixture(name: str) -> str:
    text, encoding = decode_plan_bytes((FIXTURES / name).read_bytes())
    assert encoding == "utf-8"
    return text


def task_rows(plan: ParsedPlan) -> list[tuple[object, ...]]:
    return [(t.code, t.line, t.title, t.text, t.due.year, *units_by_role(t)) for t in plan.tasks]


def test_inline_units_fixture() -> None:
    plan = parse_plan(read_fixture("inline_units.txt"))
    assert plan.title == fw("某某县法治政府建设实施方案(2023—2025年)")
    assert (plan.issuer, plan.doc_index, plan.issued_on) == (None, None, None)
    assert (plan.period_start, plan.period_end) == (2023, 2025)
    assert plan.goals == fw("到2025年,政府行为全面纳入法治轨道,法治政府建设取得重要进展。")
    assert [(s.code, s.title, s.line, s.marker_inferred, s.body) for s in plan.sections] == INLINE_SECTIONS
    assert task_rows(plan) == INLINE_TASKS
    assert [t.due for t in plan.tasks if t.due.year != 2025] == [date(2024, 12, 31), date(2023, 12, 31)]
    assert not any(t.number_inferred for t in plan.tasks)
    assert plan.warnings == []


def test_inline_units_record_their_line() -> None:
    plan = parse_plan(read_fixture("inline_units.txt"))
    tasks = tasks_by_code(plan)
    assert [u.line for u in tasks["2.1.2"].units] == [17, 17, 17]
    assert [u.line for u in tasks["2.2.2"].units] == [26]  # units at the end of the continuation line


def test_inline_units_fixture_in_gb18030() -> None:
    utf8_text = read_fixture("inline_units.txt")
    text, encoding = decode_plan_bytes(utf8_text.encode("gb18030"))
    assert encoding == "gb18030"
    assert text == utf8_text
    assert parse_plan(text) == parse_plan(utf8_text)


def test_bare_title_line_beats_the_default_title() -> None:
    plan = parse_plan(read_fixture("inline_units.txt"), default_title="inline_units")
    assert plan.title == "某某县法治政府建设实施方案（2023—2025年）"
    assert (plan.period_start, plan.period_end) == (2023, 2025)  # from the bare title line


# ---------------------------------------------------------------------------------------------
# Fixture: 1. subsections with (1) items; a chapter of bare 1. items; a prose chapter

PAREN_SECTIONS = [
    ("1", "主要任务", 8, False, None),
    ("1.1", "深入学习宣传习近平法治思想", 10, False, None),
    ("1.2", "突出宣传宪法", 19, False, None),
    ("1.3", "深入宣传民法典", 25, False, None),
    ("2", "普法重点对象", 33, False, None),
    ("2.1", "普法重点对象", 33, True, None),
    ("3", "组织实施", 40, False, None),
    ("3.1", "加强组织领导", 42, False, fw("各乡镇、各部门要高度重视普法工作。")),
    ("3.2", "加强经费保障", 43, False, "将普法经费列入财政预算。"),
]

PAREN_TASKS = [
    (
        "1.1.1", 11, None, fw("把习近平法治思想作为党委(党组)理论学习中心组学习的重要内容。"),
        2025, "县委宣传部", "县委组织部、县委党校", "",
    ),
    (
        "1.1.2", 14, "将习近平法治思想纳入干部教育培训必修课程",
        fw("将习近平法治思想纳入干部教育培训必修课程。\n①县委党校每年开设专题课程;\n②各乡镇每年至少组织一次专题学习。"),
        2025, "县委组织部", "各乡镇", "",
    ),
    (
        "1.2.1", 20, "加强宪法宣传教育", "加强宪法宣传教育。每年12月4日开展“宪法宣传周”集中宣传活动。",
        2025, "", "", "县司法局、县教育体育局",
    ),
    (
        "1.2.2", 22, None, "推动宪法进机关、进乡村、进社区、进学校、进企业、进单位。",
        2025, "县司法局", "各部门(单位)、各乡镇", "",
    ),
    ("1.3.1", 26, None, "开展民法典专题宣传。", 2025, "县司法局", "县法院", ""),
    ("1.3.2", 28, None, "2022年底前完成民法典进村入户宣传全覆盖。", 2022, "", "", "县司法局"),
    ("1.3.3", 30, None, "推动民法典进教材、进课堂。", 2025, "", "", "县教育体育局"),
    (
        "2.1.1", 35, "加强领导干部学法用法", "加强领导干部学法用法。健全领导干部学法用法制度。",
        2025, "县委组织部", "县司法局", "",
    ),
    ("2.1.2", 36, None, "加强青少年法治教育。", 2025, "", "", "县教育体育局、团县委"),
    ("2.1.3", 37, None, "加强企业经营管理人员法治教育。", 2025, "", "", "县工商联"),
    ("2.1.4", 38, None, "加强农村“法律明白人”培养。", 2025, "", "", "县司法局、各乡镇"),
]  # fmt: skip


def test_paren_items_fixture() -> None:
    plan = parse_plan(read_fixture("paren_items.txt"))
    assert plan.title == "某某县“八五”普法规划实施方案(2021-2025年)"
    assert plan.issuer == "某某县人民政府办公室"
    assert plan.doc_index == "000000000/2021-00012"
    assert plan.issued_on == date(2021, 11, 3)
    assert (plan.period_start, plan.period_end) == (2021, 2025)
    assert plan.goals is None
    assert [(s.code, s.title, s.line, s.marker_inferred, s.body) for s in plan.sections] == PAREN_SECTIONS
    assert task_rows(plan) == PAREN_TASKS
    assert plan.warnings == ["第33行:第2章没有小节标记,任务归入隐含小节 2.1"]


def test_paren_items_unit_lines() -> None:
    tasks = tasks_by_code(parse_plan(read_fixture("paren_items.txt")))
    assert [(u.role, u.line) for u in tasks["1.1.1"].units] == [
        (Role.lead, 12),
        (Role.cooperating, 13),
        (Role.cooperating, 13),
    ]
    # Two roles on one line, and a unit line wrapped in parentheses.
    assert [(u.role, u.line) for u in tasks["1.3.1"].units] == [(Role.lead, 27), (Role.cooperating, 27)]
    assert [(u.role, u.line) for u in tasks["1.3.3"].units] == [(Role.responsible, 31)]


# ---------------------------------------------------------------------------------------------
# Generic behaviour on small texts

HEADER = "标题:关于印发《某某县测试实施方案(2022-2024年)》的通知\n"


def test_unnumbered_paragraph_after_items_gets_next_number() -> None:
    text = HEADER + "一、任务\n(一)第一组\n1.甲。\n责任单位:县甲局\n乙。\n责任单位:县乙局\n3.丙。\n责任单位:县丙局\n"
    plan = parse_plan(text)
    assert [(t.code, t.text, t.number_inferred, t.line) for t in plan.tasks] == [
        ("1.1.1", "甲。", False, 4),
        ("1.1.2", "乙。", True, 6),
        ("1.1.3", "丙。", False, 8),
    ]
    assert plan.warnings == ["第6行:段落没有编号但带有责任单位,推定为第2项(1.1.2)"]


def test_repeated_item_number_is_renumbered() -> None:
    text = HEADER + "一、任务\n(一)第一组\n1.甲。\n责任单位:县甲局\n1.乙。\n责任单位:县乙局\n"
    plan = parse_plan(text)
    assert [(t.code, t.number_inferred) for t in plan.tasks] == [("1.1.1", False), ("1.1.2", True)]


def test_skipped_subsection_number_is_kept_with_warning() -> None:
    text = HEADER + "一、任务\n(一)甲组\n1.甲。\n责任单位:县甲局\n(三)丙组\n1.丙。\n责任单位:县丙局\n"
    plan = parse_plan(text)
    assert [(s.code, s.marker_inferred) for s in plan.sections] == [
        ("1", False),
        ("1.1", False),
        ("1.3", False),
    ]
    assert plan.warnings == ["第6行:小节编号跳跃:期望(二),实际(三)"]


def test_prose_starting_with_a_role_label_is_not_a_unit_line() -> None:
    text = (
        HEADER + "一、任务\n(一)甲组\n1.甲。\n责任单位:县甲局\n"
        "二、保障\n(一)强化落实\n责任单位要切实履行职责,确保各项任务按时完成。\n"
    )
    plan = parse_plan(text)
    assert [t.code for t in plan.tasks] == ["1.1.1"]
    assert plan.sections[-1].body == "责任单位要切实履行职责,确保各项任务按时完成。"


def test_heading_without_a_recognisable_boundary_keeps_all_text() -> None:
    text = (
        HEADER + "一、任务\n(一)甲组\n1.甲。\n责任单位:县甲局\n二、保障\n(一)做好宣传引导各单位要广泛宣传,营造氛围。\n"
    )
    plan = parse_plan(text)
    section = plan.sections[-1]
    assert (section.title, section.body) == (
        "做好宣传引导各单位要广泛宣传",
        "做好宣传引导各单位要广泛宣传,营造氛围。",
    )
    assert plan.warnings == ["第7行:小节标题与正文连写,推定标题为“做好宣传引导各单位要广泛宣传”"]


def test_plain_title_is_not_split_on_a_heading_word() -> None:
    # `建设` ends heading titles, but a line without punctuation is a title as a whole.
    text = HEADER + "一、任务\n(一)建设社会主义法治文化\n1.甲。\n责任单位:县甲局\n"
    assert parse_plan(text).sections[1].title == "建设社会主义法治文化"


def test_numbered_item_without_units_is_a_task_with_a_warning() -> None:
    text = HEADER + "一、任务\n(一)甲组\n1.甲。\n2.乙。\n责任单位:县乙局\n"
    plan = parse_plan(text)
    assert [(t.code, t.text, len(t.units)) for t in plan.tasks] == [("1.1.1", "甲。", 0), ("1.1.2", "乙。", 1)]
    assert plan.warnings == ["第4行:任务 1.1.1 没有牵头、配合或责任单位"]


def test_chapter_heading_run_together_with_text() -> None:
    text = HEADER + "一、总体要求指导思想,坚持依法治县。\n二、任务\n(一)甲组\n1.甲。\n责任单位:县甲局\n"
    plan = parse_plan(text)
    assert (plan.sections[0].title, plan.sections[0].body) == ("总体要求", "指导思想,坚持依法治县。")
    assert plan.warnings == ["第2行:章标题与正文连写,推定标题为“总体要求”"]


def test_due_year_outside_the_period_is_ignored() -> None:
    text = HEADER + "一、任务\n(一)甲组\n1.2021年完成甲。\n责任单位:县甲局\n2.2023年底前基本建成乙。\n责任单位:县乙局\n"
    plan = parse_plan(text)
    assert [t.due for t in plan.tasks] == [date(2024, 12, 31), date(2023, 12, 31)]


# ---------------------------------------------------------------------------------------------
# Errors


def test_decode_empty_file() -> None:
    with pytest.raises(PlanTextError) as error:
        decode_plan_bytes(b"")
    assert str(error.value) == "文件为空:0 字节"


def test_decode_whitespace_only() -> None:
    with pytest.raises(PlanTextError) as error:
        decode_plan_bytes(b" \n\t\xe3\x80\x80\r\n")
    assert str(error.value) == "文本为空:8 字节解码后只有空白字符"


def test_decode_undecodable_bytes() -> None:
    with pytest.raises(PlanTextError) as error:
        decode_plan_bytes(bytes(range(256)))
    assert str(error.value) == "无法识别编码:256 字节既不是 UTF-8(第 129 字节出错),也不是 GB18030(第 129 字节出错)"


def test_decode_binary_that_gb18030_accepts() -> None:
    with pytest.raises(PlanTextError) as error:
        decode_plan_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    assert str(error.value) == "不是文本文件:16 字节按 gb18030 解码后含 4 个控制字符"


def test_plan_text_error_is_a_value_error() -> None:
    assert issubclass(PlanTextError, ValueError)


def test_parse_empty_text() -> None:
    with pytest.raises(PlanTextError) as error:
        parse_plan(" \n\u3000\n")
    assert str(error.value) == "文本为空:没有任何非空行"


def test_parse_text_without_chapters() -> None:
    with pytest.raises(PlanTextError) as error:
        parse_plan("这是一段没有章节的文字。\n第二行。\n")
    assert str(error.value) == "未找到任何任务:2 行非空文本中没有章标题(如“一、总体要求”)"


def test_parse_chapters_without_tasks() -> None:
    text = (
        HEADER
        + "一、总体要求\n(一)指导思想\n坚持依法治县。\n二、组织保障\n(一)加强领导。各单位要重视。\n(二)强化考核。\n"
    )
    with pytest.raises(PlanTextError) as error:
        parse_plan(text)
    assert str(error.value) == ("未找到任何任务:识别出 2 章、3 个小节,共 4 行正文,但没有任何带牵头/配合/责任单位的条目")


def test_parse_without_period() -> None:
    with pytest.raises(PlanTextError) as error:
        parse_plan("标题:某某县实施方案\n一、任务\n(一)甲组\n1.甲。\n责任单位:县甲局\n")
    assert str(error.value) == (
        "找不到实施期限:标题“某某县实施方案”、正文前各行及总体目标中都没有“2021-2025年”这样的年份区间;"
        "请用 --term 指定,如 --term 2021-2025;原文确无期限时用 --term open"
        " / no term found in the text: give it with --term YYYY-YYYY, or --term open to leave it open"
    )


def test_parsing_is_deterministic(seed: ParsedPlan) -> None:
    again = parse_plan(SEED.read_text(encoding="utf-8"))
    assert again == seed
    assert replace(again, warnings=[]) != seed  # equality really compares the contents


def test_default_title_is_used_when_the_text_names_none() -> None:
    text = "一、主要任务\n\n1.开展法治宣传。\n\n责任单位:县司法局\n"
    plan = parse_plan(text, default_title="某县普法方案(2021-2025年)")
    assert plan.title == "某县普法方案(2021-2025年)"
    assert (plan.period_start, plan.period_end) == (2021, 2025)
    assert [t.code for t in plan.tasks] == ["1.1.1"]


# ---------------------------------------------------------------------------------------------
# Fixture: a city's 实施意见 exported from a legal database (北大法宝 header lines before the title),
# no year range in the title, `(一)` items that carry their own units, also in the closing chapter

FABAO_SECTIONS = [
    ("1", "指导思想和目标任务", 14, False, None),
    ("1.1", "指导思想", 16, False, "以邓小平理论、“三个代表”重要思想和科学发展观为指导，全面落实依法治国基本方略，坚持党的领导、人民当家作主和依法治国有机统一。"),
    ("1.2", "目标任务", 18, False, "到2016年，全市民主制度更加健全，法治政府基本建成，公民法治意识明显增强，社会管理法治化水平明显提高。"),
    ("2", "主要任务", 20, False, None),
    ("2.1", "推进民主政治建设", 22, False, None),
    ("2.2", "推进依法行政", 30, False, None),
    ("2.3", "推进公正司法", 40, False, None),
    ("2.4", "加强法制宣传教育", 42, False, None),
    ("3", "保障措施", 50, False, None),
    ("3.1", "加强组织领导", 52, False, None),
    ("3.2", "健全工作机制", 54, False, None),
    ("3.3", "强化督查考核", 56, False, None),
    ("3.4", "营造良好氛围", 58, False, "各新闻媒体要开设专栏，大力宣传民主法治建设的好经验、好做法。"),
]  # fmt: skip

# code, line, title, text, due year, 牵头, 配合, 责任
FABAO_TASKS = [
    ("2.1.1", 24, None, "坚持和完善人民代表大会制度，支持人大及其常委会依法行使职权。", 2016, "市人大常委会办公室", "", "各县区"),
    ("2.1.2", 26, None, "坚持和完善中国共产党领导的多党合作和政治协商制度，推进政治协商、民主监督、参政议政制度建设。", 2016, "市政协办公室", "", ""),
    ("2.1.3", 28, None, "扩大基层民主，健全村（居）务公开和民主管理制度，2014年底前实现村务公开规范化全覆盖。", 2014, "市民政局", "", "各县区"),
    ("2.2.1", 32, None, "健全重大行政决策程序，落实公众参与、专家论证、风险评估、合法性审查和集体讨论决定制度。", 2016, "市政府办公室", "市法制办", ""),
    ("2.2.2", 34, None, "加强规范性文件监督管理，实行统一登记、统一编号、统一发布。", 2016, "市法制办", "", ""),
    ("2.2.3", 36, None, "深化行政审批制度改革，2013年完成市级行政审批事项清理。", 2013, "市编办", "市监察局、市法制办", ""),
    ("2.2.4", 38, None, "全面推进政务公开，完善新闻发言人制度。", 2016, "市政府办公室", "", "市直各部门"),
    ("2.3.1", 40, "推进公正司法", "支持审判机关、检察机关依法独立公正行使审判权、检察权，完善人民陪审员和人民监督员制度。", 2016, "市委政法委", "市中级人民法院、市人民检察院", ""),
    ("2.4.1", 44, None, "深入开展“六五”普法，把法制宣传教育纳入全市经济社会发展规划。", 2016, "市委宣传部、市司法局", "", ""),
    ("2.4.2", 46, None, "推进法律进机关、进乡村、进社区、进学校、进企业、进单位。", 2016, "市司法局", "", "各县区、市直各部门"),
    ("2.4.3", 48, None, "加强领导干部学法用法，建立健全领导干部任前法律知识考试制度。", 2016, "市委组织部", "市司法局", ""),
    ("3.1.1", 52, "加强组织领导", "各级党委、政府要把民主法治建设摆上重要议事日程，成立相应的领导机构。", 2016, "市委办公室、市政府办公室", "", "各县区"),
    ("3.2.1", 54, "健全工作机制", "建立民主法治建设联席会议制度，定期研究解决工作中的重大问题。", 2016, "市司法局", "", ""),
    ("3.3.1", 56, "强化督查考核", "强化督查考核", 2016, "市委督查室", "市政府督查室", ""),
]  # fmt: skip


def test_legal_database_fixture() -> None:
    plan = parse_plan(read_fixture("fabao_city_opinion.txt"))
    # The header lines are metadata, never the title: 发布部门 is the issuer, 发布日期 the issue date.
    assert plan.title == "关于推进民主法治建设的实施意见"
    assert (plan.issuer, plan.doc_index, plan.issued_on) == ("某某市人民政府", None, date(2012, 5, 10))
    # No range anywhere: `到2016年` in the goals ends the term, the issue year starts it.
    assert (plan.period_start, plan.period_end) == (2012, 2016)
    assert plan.goals == FABAO_SECTIONS[2][4]
    assert [(s.code, s.title, s.line, s.marker_inferred, s.body) for s in plan.sections] == FABAO_SECTIONS
    assert task_rows(plan) == FABAO_TASKS
    assert not any(t.number_inferred for t in plan.tasks)
    assert plan.warnings == [
        "第18行:实施期限取自发布日期(2012年)和总体目标“到2016年”:2012-2016"
        " / term taken from the issue date and this line: 2012-2016"
    ]


def test_legal_database_fixture_with_a_given_term() -> None:
    plan = parse_plan(read_fixture("fabao_city_opinion.txt"), term=(2012, 2017))
    assert (plan.period_start, plan.period_end) == (2012, 2017)
    # Due dates follow the term: years inside it are kept, the rest fall due at its end.
    assert [(t.code, t.due.year) for t in plan.tasks if t.due.year != 2017] == [("2.1.3", 2014), ("2.2.3", 2013)]
    assert plan.warnings == ["实施期限取自 --term 2012-2017 / term taken from --term"]


def test_legal_database_header_lines_are_never_the_title() -> None:
    # Every header line below contains one of the words a bare title line is recognised by.
    header = (
        "【法规类别】城乡规划\n引证码:CLI.13.1\n原文链接:http://example.gov.cn/实施意见.html\n"
        "发布部门:某某市规划委员会\n效力级别:地方工作文件\n时效性:现行有效\n施行日期:2020.01.01\n"
    )
    text = header + "某某市规划实施方案\n一、任务\n(一)甲组\n1.甲。\n责任单位:市甲局\n"
    plan = parse_plan(text, term=(2020, 2022))
    assert (plan.title, plan.issuer, plan.issued_on) == ("某某市规划实施方案", "某某市规划委员会", None)
    without_title = parse_plan(
        header + "一、任务\n(一)甲组\n1.甲。\n责任单位:市甲局\n", default_title="文件名", term=(2020, 2022)
    )
    assert without_title.title == "文件名"


def test_bracketed_title_header_is_the_title() -> None:
    text = "【法宝引证码】CLI.13.1\n【标题】某某市关于推进法治建设的实施意见\n【公布日期】2013.02.01\n一、任务\n(一)甲组\n1.甲。\n责任单位:市甲局\n"
    plan = parse_plan(text, term=(2013, 2015))
    assert (plan.title, plan.issued_on) == ("某某市关于推进法治建设的实施意见", date(2013, 2, 1))


# ---------------------------------------------------------------------------------------------
# Fixture: tasks as unnumbered paragraphs that end with their units, after a group's prose

UNNUMBERED_SECTIONS = [
    ("1", "总体要求", 5, False, None),
    ("1.1", "指导思想", 7, False, "坚持以习近平新时代中国特色社会主义思想为指导，深入学习贯彻习近平法治思想。"),
    ("1.2", "工作目标", 9, False, "到2025年，乡村法治观念明显增强，乡村治理法治化水平明显提升。"),
    ("2", "重点任务", 11, False, None),
    ("2.1", "完善涉农领域法规制度", 13, False, "各乡镇、各部门要围绕乡村振兴，梳理涉农政策文件，及时提出立改废释建议。"),
    ("2.2", "推进乡村依法治理", 21, False, None),
    ("2.3", "加强乡村法治宣传教育", 29, False, None),
    ("2.4", "完善乡村公共法律服务", 37, False, None),
    ("3", "组织实施", 43, False, None),
    ("3.1", "加强组织领导", 45, False, "各乡镇、各部门要将法治乡村建设纳入重要议事日程。"),
    ("3.2", "强化考核评价", 47, False, None),
]  # fmt: skip

# code, line, title, text, due year, 牵头, 配合, 责任
UNNUMBERED_TASKS = [
    ("2.1.1", 17, None, "全面清理涉农规范性文件，2023年底前完成清理工作。", 2023, "县司法局", "", "各乡镇"),
    ("2.1.2", 19, None, "健全农村土地承包经营纠纷调解仲裁制度。", 2025, "县农业农村局", "县司法局", ""),
    ("2.2.1", 23, None, "健全村规民约备案审查制度，引导村民自我管理、自我服务。", 2025, "县民政局", "", "各乡镇"),
    ("2.2.2", 25, None, "推行村级小微权力清单制度，规范村级权力运行。", 2025, "县纪委监委", "县民政局、县农业农村局", ""),
    ("2.2.3", 27, None, "深化“民主法治示范村”创建，2024年实现县级以上示范村占比达到50%。", 2024, "县司法局", "县民政局", "各乡镇"),
    ("2.3.1", 31, None, "实施农村“法律明白人”培养工程，每个行政村至少培养3名“法律明白人”。", 2025, "县司法局", "", "各乡镇"),
    ("2.3.2", 33, None, "利用农闲、集市等时机开展送法下乡活动。", 2025, "", "", "县司法局、县农业农村局"),
    ("2.3.3", 35, None, "将法治教育纳入农民教育培训内容。", 2025, "县农业农村局", "县教育体育局", ""),
    ("2.4.1", 39, None, "健全乡村公共法律服务体系，推进村（社区）法律顾问全覆盖。", 2025, "县司法局", "", "各乡镇"),
    ("2.4.2", 41, None, "深化农村法律援助，2025年底前实现法律援助工作站乡镇全覆盖。", 2025, "县司法局", "县财政局", ""),
    ("3.2.1", 47, "强化考核评价", "将法治乡村建设情况纳入乡镇年度目标考核。", 2025, "县委依法治县办", "县委组织部", ""),
]  # fmt: skip


def test_unnumbered_paragraphs_fixture() -> None:
    plan = parse_plan(read_fixture("unnumbered_paragraphs.txt"))
    assert plan.title == "某某县法治乡村建设实施方案（2022—2025年）"
    assert (plan.period_start, plan.period_end) == (2022, 2025)
    assert [(s.code, s.title, s.line, s.marker_inferred, s.body) for s in plan.sections] == UNNUMBERED_SECTIONS
    assert task_rows(plan) == UNNUMBERED_TASKS
    # Every task but the closing chapter's `(二)…(units)` had its number inferred, and says so.
    inferred = [t for t in plan.tasks if t.number_inferred]
    assert [t.code for t in inferred] == [t.code for t in plan.tasks if t.code != "3.2.1"]
    assert plan.warnings == [
        f"第{t.line}行:段落没有编号但带有责任单位,推定为第{t.code[-1]}项({t.code})" for t in inferred
    ]


def test_prose_before_a_paragraph_with_units_stays_prose() -> None:
    text = (
        HEADER
        + "一、任务\n(一)甲组\n各单位要高度重视。\n落实甲任务。(牵头单位:县甲局)\n落实乙任务。(责任单位:县乙局)\n"
    )
    plan = parse_plan(text)
    assert plan.sections[-1].body == "各单位要高度重视。"
    assert [(t.code, t.text, units_by_role(t)) for t in plan.tasks] == [
        ("1.1.1", "落实甲任务。", ("县甲局", "", "")),
        ("1.1.2", "落实乙任务。", ("", "", "县乙局")),
    ]


def test_paragraph_wrapped_mid_sentence_is_one_task() -> None:
    # The heading's text stops at a comma: the next line, with the units, finishes that sentence.
    text = HEADER + "一、任务\n(一)加强组织领导。成立领导小组,\n统筹推进各项工作。(牵头单位:县委办)\n"
    plan = parse_plan(text)
    assert [(t.code, t.title, t.text) for t in plan.tasks] == [
        ("1.1.1", "加强组织领导", "成立领导小组,\n统筹推进各项工作。")
    ]
    assert plan.sections[-1].body is None


def test_wrapped_numbered_item_keeps_its_continuation_line() -> None:
    text = HEADER + "一、任务\n(一)甲组\n1.落实甲任务,\n按季度报送进展。(牵头单位:县甲局)\n"
    assert [t.text for t in parse_plan(text).tasks] == ["落实甲任务,\n按季度报送进展。"]


def test_title_only_heading_with_inline_units_is_a_task() -> None:
    text = (
        HEADER
        + "一、任务\n(一)甲组\n1.甲。\n责任单位:县甲局\n二、保障措施\n(一)强化督查考核(牵头单位:县督查室)\n(二)营造氛围。广泛宣传。\n"
    )
    plan = parse_plan(text)
    assert [(t.code, t.title, t.text, units_by_role(t)) for t in plan.tasks] == [
        ("1.1.1", None, "甲。", ("", "", "县甲局")),
        ("2.1.1", "强化督查考核", "强化督查考核", ("县督查室", "", "")),
    ]
    assert [(s.code, s.body) for s in plan.sections if s.level == 2] == [
        ("1.1", None),
        ("2.1", None),
        ("2.2", "广泛宣传。"),
    ]


# ---------------------------------------------------------------------------------------------
# Fixture: `1.` items under bare group title lines, numbering restarting in each group; the term
# named in the preamble

RESTART_SECTIONS = [
    ("1", "主要任务", 5, False, None),
    ("1.1", "加强产权保护", 7, True, None),
    ("1.2", "规范行政执法", 19, True, None),
    ("1.3", "提升政务服务", 32, True, None),
    ("2", "保障措施", 48, False, None),
    ("2.1", "加强组织领导", 50, False, "县委依法治县办负责统筹协调，定期通报工作进展。"),
    ("2.2", "强化督促检查", 51, False, "将行动计划落实情况纳入年度考核。"),
]  # fmt: skip

# code, line, title, text, due year, 牵头, 配合, 责任
RESTART_TASKS = [
    ("1.1.1", 9, None, "依法平等保护各类市场主体产权，严格规范涉案财产处置。", 2024, "县法院", "县检察院、县公安局", ""),
    ("1.1.2", 13, None, "开展涉企冤错案件甄别纠正工作。", 2024, "", "", "县法院、县检察院"),
    ("1.1.3", 16, None, "加强知识产权保护，2023年底前建成知识产权维权援助工作站。", 2023, "县市场监管局", "", ""),
    ("1.2.1", 21, None, "全面推行行政执法公示、执法全过程记录、重大执法决定法制审核制度。", 2024, "县司法局", "各行政执法部门(单位)", ""),
    ("1.2.2", 25, None, "推行包容审慎监管，制定轻微违法行为免罚清单。", 2024, "县司法局", "", "县市场监管局、县生态环境局"),
    ("1.2.3", 29, None, "规范涉企检查，严禁多头检查、重复检查。", 2024, "", "", "各行政执法部门(单位)"),
    ("1.3.1", 34, None, "深化“一网通办”，2022年底前实现高频事项网上可办。", 2022, "县政务服务管理局", "", ""),
    ("1.3.2", 37, None, "推行证明事项告知承诺制。", 2024, "县司法局", "县政务服务管理局", ""),
    ("1.3.3", 41, None, "建立企业诉求快速响应机制。", 2024, "", "", "县工商联"),
    ("1.3.4", 44, None, "清理拖欠民营企业账款。", 2024, "县财政局", "县工业信息化局", ""),
]  # fmt: skip


def test_restart_groups_fixture() -> None:
    plan = parse_plan(read_fixture("restart_groups.txt"))
    assert plan.title == "某某县优化法治化营商环境三年行动计划"
    assert (plan.period_start, plan.period_end) == (2022, 2024)
    assert [(s.code, s.title, s.line, s.marker_inferred, s.body) for s in plan.sections] == RESTART_SECTIONS
    assert task_rows(plan) == RESTART_TASKS
    assert not any(t.number_inferred for t in plan.tasks)  # every written number is kept
    assert plan.warnings == [
        "第3行:实施期限取自正文前“2022—2024年”:2022-2024 / term taken from this line: 2022-2024",
        "第5行:第1章没有小节标记,任务归入隐含小节 1.1",
        "第19行:条目编号重新从1开始,另起隐含小节 1.2“规范行政执法” / item numbering restarts: a new implicit subsection",
        "第32行:条目编号重新从1开始,另起隐含小节 1.3“提升政务服务” / item numbering restarts: a new implicit subsection",
    ]


def test_restart_without_a_group_title_is_named_after_the_chapter() -> None:
    text = HEADER + "一、主要任务\n1.甲。\n责任单位:县甲局\n2.乙。\n责任单位:县乙局\n1.丙。\n责任单位:县丙局\n"
    plan = parse_plan(text)
    assert [(s.code, s.title, s.line) for s in plan.sections] == [
        ("1", "主要任务", 2),
        ("1.1", "主要任务", 2),
        ("1.2", "主要任务", 7),
    ]
    assert [t.code for t in plan.tasks] == ["1.1.1", "1.1.2", "1.2.1"]


# ---------------------------------------------------------------------------------------------
# The term: given, read from the title, inferred from the text (reported), or refused naming --term

NO_TERM = "标题:某某市关于推进法治建设的实施意见\n一、任务\n(一)甲组\n1.2014年完成甲。\n责任单位:市甲局\n"


def test_given_term_wins_over_the_title_and_says_so() -> None:
    plan = parse_plan(HEADER + "一、任务\n(一)甲组\n1.甲。\n责任单位:县甲局\n", term=(2021, 2023))
    assert (plan.period_start, plan.period_end) == (2021, 2023)
    assert plan.warnings == [
        "实施期限取自 --term 2021-2023 / term taken from --term",
        "第1行:标题中的实施期限 2022-2024 与 --term 2021-2023 不同,以 --term 为准 / the title's term differs from --term; --term wins",
    ]


def test_given_term_for_a_text_without_one() -> None:
    plan = parse_plan(NO_TERM, term=(2012, 2016))
    assert (plan.period_start, plan.period_end, plan.tasks[0].due) == (2012, 2016, date(2014, 12, 31))
    assert plan.warnings == ["实施期限取自 --term 2012-2016 / term taken from --term"]


@pytest.mark.parametrize("term", [(2016, 2012), (0, 2016), (2012, 99999)])
def test_implausible_given_term_is_refused(term: tuple[int, int]) -> None:
    with pytest.raises(PlanTextError) as error:
        parse_plan(NO_TERM, term=term)
    assert str(error.value).startswith(f"实施期限 {term[0]}-{term[1]} 无效")


def test_term_range_in_the_goals() -> None:
    text = NO_TERM.replace("一、任务", "一、总体要求\n(一)工作目标\n2013—2017年,基本建成法治城市。\n二、任务")
    plan = parse_plan(text)
    assert (plan.period_start, plan.period_end) == (2013, 2017)
    assert plan.warnings == ["第4行:实施期限取自总体目标“2013—2017年”:2013-2017 / term taken from this line: 2013-2017"]


def test_term_range_with_a_year_on_both_ends() -> None:
    # `2016年至2020年` names the term as surely as `2016—2020年`, and wins over a later `到2020年`.
    text = NO_TERM.replace(
        "一、任务", "一、总体要求\n(一)工作目标\n2016年至2020年,到2020年基本建成法治城市。\n二、任务"
    )
    plan = parse_plan(text)
    assert (plan.period_start, plan.period_end) == (2016, 2020)
    assert plan.warnings == [
        "第4行:实施期限取自总体目标“2016年至2020年”:2016-2020 / term taken from this line: 2016-2020"
    ]


def test_term_end_without_an_issue_date_is_refused_naming_term() -> None:
    text = NO_TERM.replace("一、任务", "一、总体要求\n(一)工作目标\n到2016年,基本建成法治城市。\n二、任务")
    with pytest.raises(PlanTextError) as error:
        parse_plan(text)
    assert str(error.value) == (
        "找不到实施期限:第4行总体目标“到2016年”只给出终止年,没有发布日期,推不出起始年;"
        "请用 --term 指定,如 --term 2012-2016 / only an end year found: give the term with --term"
    )


def test_term_end_before_the_issue_date_is_refused() -> None:
    text = NO_TERM.replace(
        "一、任务", "发布日期:2018-01-01\n一、总体要求\n(一)工作目标\n到9999年、到2016年,基本建成法治城市。\n二、任务"
    )
    with pytest.raises(PlanTextError) as error:
        parse_plan(text)
    # `到9999年` is no year a plan ends in; `到2016年` is, but the plan was issued after it.
    assert str(error.value) == (
        "找不到实施期限:第5行总体目标“到2016年”只给出终止年,发布日期 2018-01-01,推不出起始年;"
        "请用 --term 指定,如 --term 2012-2016 / only an end year found: give the term with --term"
    )


def test_cited_documents_and_long_term_visions_are_not_the_term() -> None:
    # 《…(2016—2020年)》 is another document's term; `到2035年` in prose outside the goals is a vision.
    text = (
        "标题:某某市关于推进法治建设的实施意见\n发布日期:2017-03-01\n根据《法治政府建设实施纲要(2015—2020年)》,制定本意见。\n"
        "一、总体要求\n(一)指导思想\n到2035年基本建成法治社会。\n(二)主要目标\n到2020年,基本建成法治政府。\n"
        "二、任务\n(一)甲组\n1.甲。\n责任单位:市甲局\n"
    )
    plan = parse_plan(text)
    assert (plan.period_start, plan.period_end) == (2017, 2020)
    assert plan.warnings == [
        "第8行:实施期限取自发布日期(2017年)和总体目标“到2020年”:2017-2020"
        " / term taken from the issue date and this line: 2017-2020"
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [("2012-2016", (2012, 2016)), ("2021-2021", (2021, 2021))],
)
def test_parse_term(value: str, expected: tuple[int, int]) -> None:
    assert parse_term(value) == expected


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ("2016-2012", "无效"),
        ("0000-2016", "无效"),
        ("２０１２-２０１６", "格式不对"),  # full-width digits
        ("٢٠١٢-٢٠١٦", "格式不对"),  # Arabic-Indic digits: `\d` would accept them
        ("2012—2016", "格式不对"),
        ("2012-16", "格式不对"),
        (" 2012-2016", "格式不对"),
        ("", "格式不对"),
    ],
)
def test_parse_term_refuses(value: str, needle: str) -> None:
    with pytest.raises(PlanTextError) as error:
        parse_term(value)
    message = str(error.value)
    assert message.startswith(f"实施期限“{value}”{needle}"), message
    assert " / " in message  # Chinese first, then English
