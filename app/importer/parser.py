"""Read a county implementation plan (实施方案) text into a `ParsedPlan`.

The texts come from government web pages, copied by hand or scraped, so they are damaged in
predictable ways: subsection markers reduced to `)` or `()`, item numbers lost, headings run
together with their first sentence, odd Unicode spaces, page footers after the last chapter.
The parser is written against those defects in general, never against line numbers of one file.

Shape of a plan:

    header lines (索引号, 发文时间, 发布机构, 标题)  -> plan metadata
    一、chapter
      (一)subsection                                -> ParsedSection level 2
        1.item text                                 -> ParsedTask
        牵头单位:… / 配合单位:… / 责任单位:…        -> its UnitMentions
    web page footer (附件下载, 网站地图, ICP备…)       -> ignored

Which marker is the subsection and which the item is decided per chapter from the markers that
chapter uses (`(一)`/`1.`, `1.`/`(1)`, or only `1.` items), so other counties' layouts work too.
Units may also be written inline at the end of a task: `…教育。(责任单位:县委办、县政府办)`.

Pure functions: no database, no I/O.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date
from enum import IntEnum
from typing import Literal, TypeAlias

from app.importer.parsed import ParsedPlan, ParsedSection, ParsedTask, UnitMention
from app.models import Role

__all__ = ["PlanTextError", "decode_plan_bytes", "parse_plan", "parse_term"]


class PlanTextError(ValueError):
    """The input cannot be read as a plan; the (Chinese) message says what was found instead."""


# ---------------------------------------------------------------------------------------------
# Character classes. Full-width forms are spelled as escapes so that they cannot be mistaken for
# their ASCII twins when reading the patterns.

_LPAREN = "(\uff08"  # ( (
_RPAREN = ")\uff09"  # ) )
_COLON = ":\uff1a"  # : :
_DOT = ".\uff0e"  # . .
_CN_NUMERALS = "一二三四五六七八九十"
# Punctuation that only occurs in sentences, never inside a heading (、 does occur in headings).
_SENTENCE_PUNCT = ",\uff0c;\uff1b:\uff1a。!\uff01?\uff1f"
# Separators between unit names on a unit line.
_UNIT_SEPARATORS = "、,\uff0c;\uff1b"

_CN_DIGIT_VALUES = {ch: i for i, ch in enumerate("一二三四五六七八九", start=1)}


# ---------------------------------------------------------------------------------------------
# Decoding


def decode_plan_bytes(data: bytes) -> tuple[str, str]:
    """Decode an uploaded plan file: UTF-8 (with or without BOM), else GB18030.

    Returns `(text, encoding)`; encoding is "utf-8", "utf-8-sig" (BOM present) or "gb18030".
    """
    if not data:
        raise PlanTextError("文件为空:0 字节")
    text, encoding = _decode(data)
    # GB18030 maps almost any byte pair to some character, so binary data can "decode";
    # control characters are what give it away.
    controls = sum(1 for ch in text if unicodedata.category(ch) == "Cc" and ch not in "\t\n\r\f\v")
    if controls:
        raise PlanTextError(f"不是文本文件:{len(data)} 字节按 {encoding} 解码后含 {controls} 个控制字符")
    if not text.strip():
        raise PlanTextError(f"文本为空:{len(data)} 字节解码后只有空白字符")
    return text, encoding


def _decode(data: bytes) -> tuple[str, str]:
    utf8 = "utf-8-sig" if data.startswith(codecs.BOM_UTF8) else "utf-8"
    try:
        return data.decode(utf8), utf8
    except UnicodeDecodeError as utf8_error:
        try:
            return data.decode("gb18030").removeprefix("\ufeff"), "gb18030"
        except UnicodeDecodeError as gb_error:
            raise PlanTextError(
                f"无法识别编码:{len(data)} 字节既不是 UTF-8(第 {utf8_error.start + 1} 字节出错),"
                f"也不是 GB18030(第 {gb_error.start + 1} 字节出错)"
            ) from None


# ---------------------------------------------------------------------------------------------
# Lines


class _Kind(IntEnum):
    """Numbering markers, in the order they nest in Chinese official documents."""

    CN_PAREN = 1  # (一)
    ARABIC_DOT = 2  # 1.  1、
    ARABIC_PAREN = 3  # (1)
    CIRCLED = 4  # ①


_CHAPTER_RE = re.compile(rf"^([{_CN_NUMERALS}]{{1,3}})\s*[、{_DOT}]\s*(\S.*)$")
# `(一)`, and its damaged forms `)`, `()`, `三)`: the closing parenthesis survives, the rest may not.
_CN_PAREN_RE = re.compile(rf"^([{_LPAREN}])?\s*([{_CN_NUMERALS}]{{0,3}})\s*[{_RPAREN}]\s*(.*)$")
_ARABIC_DOT_RE = re.compile(rf"^(\d{{1,2}})\s*[{_DOT}、](?!\d)\s*(.*)$")  # (?!\d): not `1.5倍`
_ARABIC_PAREN_RE = re.compile(rf"^[{_LPAREN}]\s*(\d{{1,2}})\s*[{_RPAREN}]\s*(.*)$")
_CIRCLED_RE = re.compile(r"^([\u2460-\u2473])\s*(.*)$")  # ①..⑳

_ROLE_LABELS = {
    "牵头单位": Role.lead,
    "牵头部门": Role.lead,
    "配合单位": Role.cooperating,
    "配合部门": Role.cooperating,
    "协办单位": Role.cooperating,
    "责任单位": Role.responsible,
    "责任部门": Role.responsible,
}
_LABELS = "|".join(_ROLE_LABELS)
# A label starts the clause or follows a separator, so `各责任单位` inside a name is not a label.
_ROLE_LABEL_RE = re.compile(rf"(?:^|(?<=[\s;\uff1b,\uff0c。]))({_LABELS})\s*([{_COLON}])?\s*")
# Units written at the end of the task text: `…教育。(牵头单位:县司法局;配合单位:县法院)`.
# Greedy `.+` up to the last closing parenthesis keeps `各部门(单位)` whole.
_INLINE_UNITS_RE = re.compile(rf"[{_LPAREN}]\s*((?:{_LABELS}).+)[{_RPAREN}]\s*([。{_DOT};\uff1b]?)\s*$")
_MAX_UNIT_NAME = 25  # longer "names" mean the line is prose that happens to start with 责任单位

_FOOTER_RE = re.compile(
    r"^(?:附件|扫一扫|网站地图|主办|承办|联系电话|电话\s*[:\uff1a]|电子信箱|版权所有|copyright|©"
    r"|打印本页|关闭窗口|【打印】|【关闭】|\d{4}年\d{1,2}月\d{1,2}日$)"
    r"|ICP备|公网安备|网站标识码",
    re.IGNORECASE,
)
# Unicode spaces (U+00A0, U+2002, U+3000 … are all `\s`) plus the invisible ones that are not.
_SPACE_RUN_RE = re.compile(r"[\s\u200b\ufeff]+")


@dataclass
class _Line:
    no: int  # 1-based line number in the source
    text: str  # whitespace-normalised line, inline units removed
    kind: _Kind | None = None  # numbering marker at the start of the line
    number: int | None = None  # the number the marker spells, when it spells one
    body: str = ""  # text after the marker (== text for unmarked lines)
    damaged: bool = False  # `(一)` marker missing a parenthesis or its numeral
    units: list[UnitMention] | None = None  # set when the whole line is a unit line
    inline_units: list[UnitMention] = field(default_factory=list)


def _normalise(line: str) -> str:
    return _SPACE_RUN_RE.sub(" ", unicodedata.normalize("NFC", line)).strip()


def _read_lines(text: str) -> list[_Line]:
    raw_lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return [_classify(no, raw) for no, raw in enumerate(raw_lines, start=1)]


def _classify(no: int, raw: str) -> _Line:
    text = _normalise(raw)
    units = _standalone_units(text, no)
    if units is not None:
        return _Line(no, text, units=units)
    text, inline_units = _split_inline_units(text, no)
    line = _Line(no, text, body=text, inline_units=inline_units)
    if m := _CN_PAREN_RE.match(text):
        line.kind, line.body = _Kind.CN_PAREN, m[3]
        line.number = _cn_to_int(m[2]) if m[2] else None
        line.damaged = m[1] is None or line.number is None
    elif m := _ARABIC_DOT_RE.match(text):
        line.kind, line.number, line.body = _Kind.ARABIC_DOT, int(m[1]), m[2]
    elif m := _ARABIC_PAREN_RE.match(text):
        line.kind, line.number, line.body = _Kind.ARABIC_PAREN, int(m[1]), m[2]
    elif m := _CIRCLED_RE.match(text):
        line.kind, line.number, line.body = _Kind.CIRCLED, ord(m[1]) - 0x2460 + 1, m[2]
    return line


def _cn_to_int(numeral: str) -> int | None:
    """一..九十九; None for anything else."""
    if "十" not in numeral:
        return _CN_DIGIT_VALUES.get(numeral)
    tens, _, ones = numeral.partition("十")
    tens_value = _CN_DIGIT_VALUES.get(tens) if tens else 1
    ones_value = _CN_DIGIT_VALUES.get(ones) if ones else 0
    if tens_value is None or ones_value is None:
        return None
    return tens_value * 10 + ones_value


# ---------------------------------------------------------------------------------------------
# Units


def _standalone_units(text: str, no: int) -> list[UnitMention] | None:
    """The mentions on a line that is nothing but a unit list, else None."""
    if len(text) > 1 and text[0] in _LPAREN and text[-1] in _RPAREN:
        text = text[1:-1].strip()  # a unit line wrapped in parentheses on its own
    return _parse_unit_clause(text, no)


def _split_inline_units(text: str, no: int) -> tuple[str, list[UnitMention]]:
    """Remove a trailing `(责任单位:…)` from a text line and return its mentions."""
    m = _INLINE_UNITS_RE.search(text)
    if not m:
        return text, []
    mentions = _parse_unit_clause(m[1], no)
    if mentions is None:
        return text, []
    return text[: m.start()].rstrip() + m[2], mentions


def _parse_unit_clause(clause: str, no: int) -> list[UnitMention] | None:
    """`牵头单位:A、B;配合单位:C` -> mentions; None if the clause is not a unit list."""
    labels = list(_ROLE_LABEL_RE.finditer(clause))
    if not labels or labels[0].start() != 0:
        return None
    mentions: list[UnitMention] = []
    for label, following in zip(labels, [*labels[1:], None], strict=True):
        end = following.start() if following else len(clause)
        segment = clause[label.end() : end]
        if "。" in segment.rstrip("。"):
            return None  # a sentence, not a list of names
        if not label[2] and any(ch in segment for ch in ",\uff0c。"):
            # `牵头单位县委政法委` lost its colon, but `责任单位要切实履行职责,…` is prose.
            return None
        role = _ROLE_LABELS[label[1]]
        for name in _split_unit_names(segment):
            if len(name) > _MAX_UNIT_NAME:
                return None
            mentions.append(UnitMention(role=role, as_written=name, line=no))
    return mentions


def _split_unit_names(segment: str) -> list[str]:
    """Split on 、,; but never inside parentheses: `各部门(单位)` is one name."""
    names: list[str] = []
    current: list[str] = []
    depth = 0
    for ch in segment:
        if ch in _LPAREN:
            depth += 1
        elif ch in _RPAREN:
            depth = max(0, depth - 1)
        if ch in _UNIT_SEPARATORS and depth == 0:
            names.append("".join(current))
            current = []
        else:
            current.append(ch)
    names.append("".join(current))
    cleaned = (_clean_unit_name(name) for name in names)
    return [name for name in cleaned if name]


def _clean_unit_name(name: str) -> str:
    # Spaces inside a name are copy artefacts (`县 司法局`). The name is written in the form the unit
    # resolver compares names in (NFKC, no whitespace: `unit_names.name_key`): `各部门(单位)` and
    # `各部门（单位）` are one name, and so are `县Ａ局` and `县A局`, which would otherwise both be
    # created as new units with the same name. Repeated: removing a space can let NFKC compose anew.
    for _ in range(4):
        folded = _SPACE_RUN_RE.sub("", unicodedata.normalize("NFKC", name)).strip("。.;\uff1b,\uff0c:\uff1a")
        if folded == name:
            break
        name = folded
    return name


# ---------------------------------------------------------------------------------------------
# Headings


# Words a subsection title typically ends with. Used only to split a heading that was run together
# with its first sentence (`)强化组织领导各级党委要…`). Shorter, commoner words (治理, 体制, 督查,
# 宣传…) are left out on purpose: they occur inside titles and would cut them short.
_HEADING_END_WORDS = (
    "思想", "目标", "原则", "机制", "领导", "协调", "考评", "考核", "保障",
    "建设", "制度", "体系", "要求", "任务", "措施", "步骤", "落实", "实施",
)  # fmt: skip
_MIN_TITLE = 4  # shortest title the run-together split may produce
_MAX_SPLIT_TITLE = 16  # longest title the run-together split may produce
_MAX_TITLE = 30  # a heading line without punctuation up to this length is all title; same for task titles
_MAX_SENTENCE_TITLE = 20  # `标题。正文` headings: longest first sentence taken as the title
# What the tables hold (app/models/plan.py; a test compares): longer values are damage, and would be
# refused by PostgreSQL in the middle of an import.
_MAX_STORED_TITLE = 200  # plan, section and task titles
_MAX_ISSUER = 100
_MAX_DOC_INDEX = 64


@dataclass
class _Heading:
    title: str
    rest: str  # text that followed the title on the heading line
    inferred: bool  # the title/text boundary was guessed


def _has_sentence_punct(text: str) -> bool:
    return any(ch in _SENTENCE_PUNCT for ch in text)


def _split_heading(text: str) -> _Heading:
    text = text.strip()
    if not _has_sentence_punct(text) and len(text) <= _MAX_TITLE:
        return _Heading(text, "", inferred=False)  # the usual case: the line is just a title
    # `加强组织领导。各级党委要…`: the title is a short first sentence.
    head, stop, rest = text.partition("。")
    if stop and len(head) <= _MAX_SENTENCE_TITLE and not _has_sentence_punct(head):
        return _Heading(head, rest.strip(), inferred=False)
    # `强化组织领导各级党委要…`: shortest prefix that ends like a title.
    for end in range(_MIN_TITLE, min(_MAX_SPLIT_TITLE, len(text) - 1) + 1):
        prefix = text[:end]
        if _has_sentence_punct(prefix):
            break
        if prefix.endswith(_HEADING_END_WORDS):
            return _Heading(prefix, text[end:].strip(), inferred=True)
    # No recognisable boundary: title = first clause, and keep the whole line as text so that
    # nothing is lost.
    first_clause = re.split(f"[{_SENTENCE_PUNCT}]", text, maxsplit=1)[0]
    if len(first_clause) > _MAX_STORED_TITLE:
        # A run-on line is no title; cut one to what a title column holds, keep the line as text.
        return _Heading(first_clause[:_MAX_STORED_TITLE], text, inferred=True)
    if first_clause == text:
        return _Heading(text, "", inferred=False)
    return _Heading(first_clause, text, inferred=True)


# ---------------------------------------------------------------------------------------------
# Chapters, subsections, items


@dataclass
class _Chapter:
    number: int
    heading: _Heading
    line: int
    lines: list[_Line] = field(default_factory=list)


@dataclass
class _Block:
    """A run of text that may be a task: a numbered item, or an unnumbered paragraph."""

    line: int
    number: int | None  # the number written in the item marker; None for a plain paragraph
    parts: list[str]
    units: list[UnitMention] = field(default_factory=list)


@dataclass
class _Sub:
    number: int
    heading: _Heading
    line: int
    marker_inferred: bool = False
    blocks: list[_Block] = field(default_factory=list)


@dataclass
class _Context:
    """What every chapter needs to know about the plan, plus the shared warning list."""

    warnings: list[tuple[int, str]]  # (source line, message), sorted by line at the end

    def warn(self, line: int, message: str) -> None:
        self.warnings.append((line, message))


def _split_chapters(lines: list[_Line], warnings: list[tuple[int, str]]) -> tuple[list[_Line], list[_Chapter]]:
    """Preamble lines before `一、`, and the chapters up to the page footer."""
    preamble: list[_Line] = []
    chapters: list[_Chapter] = []
    for line in lines:
        m = _CHAPTER_RE.match(line.text) if line.units is None else None
        # Chapters must come in sequence; `三、` in the middle of chapter 五 is not a chapter.
        if m and _cn_to_int(m[1]) == len(chapters) + 1:
            chapters.append(_Chapter(len(chapters) + 1, _split_heading(m[2]), line.no))
            if chapters[-1].heading.inferred:
                warnings.append((line.no, f"章标题与正文连写,推定标题为“{chapters[-1].heading.title}”"))
        elif not chapters:
            preamble.append(line)
        elif _FOOTER_RE.search(line.text):
            break  # web page footer: everything after the plan is page furniture
        elif line.text:
            chapters[-1].lines.append(line)
    return preamble, chapters


def _detect_levels(lines: list[_Line]) -> tuple[_Kind | None, _Kind | None]:
    """(subsection marker, item marker) used in a chapter.

    The outermost marker present is the subsection, the next one the item. A chapter without any
    unit lines has no tasks, so its inner markers are just points in prose. A chapter whose only
    marker is `1.` or `(1)` and which has units lists its tasks directly (implicit subsection).
    """
    present = sorted({line.kind for line in lines if line.kind is not None})
    has_units = any(line.units is not None or line.inline_units for line in lines)
    if not present:
        return None, None
    if not has_units:
        return present[0], None
    if len(present) >= 2:
        return present[0], present[1]
    if present[0] is _Kind.CN_PAREN:
        return _Kind.CN_PAREN, None  # each subsection is a single-paragraph task or prose
    return None, present[0]


def _parse_chapter(chapter: _Chapter, ctx: _Context) -> tuple[list[ParsedSection], list[ParsedTask]]:
    sub_kind, item_kind = _detect_levels(chapter.lines)
    # Text before the first subsection marker belongs to the chapter itself.
    preface = _Sub(0, chapter.heading, chapter.line)
    if chapter.heading.rest:
        preface.blocks.append(_Block(chapter.line, None, [chapter.heading.rest]))
    subs = [preface]
    block: _Block | None = preface.blocks[-1] if preface.blocks else None

    for line in chapter.lines:
        if sub_kind is not None and line.kind is sub_kind:
            subs.append(_new_sub(line, subs[-1].number, chapter.number, ctx))
            block = None
            if subs[-1].heading.rest:
                block = _Block(line.no, None, [subs[-1].heading.rest])
                subs[-1].blocks.append(block)
        elif item_kind is not None and line.kind is item_kind:
            block = _Block(line.no, line.number, [line.body])
            subs[-1].blocks.append(block)
        elif line.units is not None:
            if block is None:
                # Units straight after a title-only heading: the heading itself is the task.
                block = _Block(line.no, None, [subs[-1].heading.title])
                subs[-1].blocks.append(block)
            block.units.extend(line.units)
        elif block is None or block.units or (line.inline_units and block.number is None and not _runs_on(block)):
            # A paragraph after a finished task starts a new (possibly unnumbered) block; so does a
            # paragraph ending in its own units after prose: `…。(牵头单位:市司法局)` is a task, and
            # the prose before it is the section's text, not the task's.
            block = _Block(line.no, None, [line.text])
            subs[-1].blocks.append(block)
        else:
            block.parts.append(line.text)  # continuation of the text being collected
        if line.inline_units:
            if block is None:
                # `(一)加强组织领导(牵头单位:…)`: a title-only heading that carries its units is the task.
                block = _Block(line.no, None, [subs[-1].heading.title])
                subs[-1].blocks.append(block)
            block.units.extend(line.inline_units)

    return _build_sections(chapter, preface, subs[1:], ctx)


def _runs_on(block: _Block) -> bool:
    """The block's last line stops mid-sentence (`成立领导小组,`): the next line continues it."""
    last = block.parts[-1].rstrip()
    return _has_sentence_punct(last) and not last.endswith(("。", "!", "\uff01", "?", "\uff1f", ";", "\uff1b"))


def _new_sub(line: _Line, previous: int, chapter_no: int, ctx: _Context) -> _Sub:
    """A subsection from its marker line, numbering it from sequence when the marker is damaged."""
    expected = previous + 1
    written = line.number
    if written is not None and written > previous:
        number = written
        if written != expected:
            ctx.warn(line.no, f"小节编号跳跃:期望({_int_to_cn(expected)}),实际({_int_to_cn(written)})")
    else:
        number = expected
    inferred = line.damaged or number != written
    if inferred:
        marker = line.text[: len(line.text) - len(line.body)].strip()
        ctx.warn(line.no, f"小节标记“{marker}”不完整或不连续,按顺序推定为{chapter_no}.{number}")
    heading = _split_heading(line.body)
    if heading.inferred:
        ctx.warn(line.no, f"小节标题与正文连写,推定标题为“{heading.title}”")
    return _Sub(number, heading, line.no, marker_inferred=inferred)


def _int_to_cn(number: int) -> str:
    digits = "零一二三四五六七八九"
    if number < 10:
        return digits[number]
    tens, ones = divmod(number, 10)
    return ("" if tens == 1 else digits[tens]) + "十" + (digits[ones] if ones else "")


def _build_sections(
    chapter: _Chapter, preface: _Sub, subs: list[_Sub], ctx: _Context
) -> tuple[list[ParsedSection], list[ParsedTask]]:
    code = str(chapter.number)
    if not subs and any(_is_task(b) for b in preface.blocks):
        # Tasks listed directly under the chapter: give them an implicit subsection N.1.
        ctx.warn(chapter.line, f"第{code}章没有小节标记,任务归入隐含小节 {code}.1")
        subs = _implicit_groups(chapter, preface.blocks, ctx)
        preface = _Sub(0, chapter.heading, chapter.line)
    elif any(_is_task(b) for b in preface.blocks):
        ctx.warn(chapter.line, f"第{code}章第一个小节之前的带责任单位段落被忽略")

    chapter_body, _ = _split_prose(preface, code, ctx)
    sections = [ParsedSection(code, 1, chapter.number, chapter.heading.title, chapter_body, chapter.line)]
    tasks: list[ParsedTask] = []
    for sub in subs:
        section_code = f"{code}.{sub.number}"
        body, task_blocks = _split_prose(sub, section_code, ctx)
        sections.append(
            ParsedSection(section_code, 2, sub.number, sub.heading.title, body, sub.line, sub.marker_inferred)
        )
        tasks.extend(_build_tasks(sub, task_blocks, section_code, ctx))
    return sections, tasks


def _implicit_groups(chapter: _Chapter, blocks: list[_Block], ctx: _Context) -> list[_Sub]:
    """Tasks listed directly under a chapter: one implicit subsection, or one per group where the
    item numbering starts again at 1 (`1. 2. 3.`, a bare group title line, `1. 2.`).

    Renumbering a restart as 4, 5 … would give the second group's tasks codes that no reader of the
    text can find; a group per restart keeps every written number.
    """
    groups = [_Sub(1, chapter.heading, chapter.line, marker_inferred=True)]
    last_number = 0
    for block in blocks:
        if block.number == 1 and last_number >= 1:
            previous = groups[-1].blocks
            if previous and _is_group_title(previous[-1]):
                title = previous.pop()
                group = _Sub(len(groups) + 1, _Heading(title.parts[0], "", False), title.line, marker_inferred=True)
            else:
                group = _Sub(len(groups) + 1, chapter.heading, block.line, marker_inferred=True)
            groups.append(group)
            ctx.warn(
                group.line,
                f"条目编号重新从1开始,另起隐含小节 {chapter.number}.{group.number}“{group.heading.title}”"
                " / item numbering restarts: a new implicit subsection",
            )
        if block.number is not None:
            last_number = block.number
        groups[-1].blocks.append(block)
    first = groups[0]
    leading = next((i for i, b in enumerate(first.blocks) if _is_task(b)), 0)
    if len(groups) > 1 and leading > 0 and _is_group_title(first.blocks[leading - 1]):
        # The first group has its title line too: name it by that, not by the chapter.
        title = first.blocks.pop(leading - 1)
        first.heading, first.line = _Heading(title.parts[0], "", False), title.line
    return groups


def _is_group_title(block: _Block) -> bool:
    """A bare line such as `加强科学立法`: no number, no units, no sentence punctuation, short."""
    if _is_task(block) or len(block.parts) != 1:
        return False
    text = block.parts[0]
    return not _has_sentence_punct(text) and len(text) <= _MAX_TITLE


def _is_task(block: _Block) -> bool:
    return block.number is not None or bool(block.units)


def _split_prose(sub: _Sub, section_code: str, ctx: _Context) -> tuple[str | None, list[_Block]]:
    """(body text, task blocks): paragraphs without number and units are the section's prose."""
    prose: list[str] = []
    task_blocks: list[_Block] = []
    for block in sub.blocks:
        if _is_task(block):
            task_blocks.append(block)
            continue
        if task_blocks:
            ctx.warn(block.line, f"{section_code} 中任务之后的无编号、无责任单位段落,作为小节正文保留")
        prose.extend(block.parts)
    return ("\n".join(prose) or None), task_blocks


def _build_tasks(sub: _Sub, blocks: list[_Block], section_code: str, ctx: _Context) -> list[ParsedTask]:
    # One unnumbered paragraph with units under a heading: the subsection is itself the task.
    single = len(blocks) == 1 and blocks[0].number is None
    tasks: list[ParsedTask] = []
    previous = 0
    for block in blocks:
        number, inferred = _item_number(block, previous, single)
        previous = number
        code = f"{section_code}.{number}"
        if inferred:
            ctx.warn(block.line, f"段落没有编号但带有责任单位,推定为第{number}项({code})")
        if not block.units:
            ctx.warn(block.line, f"任务 {code} 没有牵头、配合或责任单位")
        text = "\n".join(block.parts)
        tasks.append(
            ParsedTask(
                code=code,
                section_code=section_code,
                title=sub.heading.title if single else _task_title(text),
                text=text,
                due=_DUE_UNKNOWN,  # set once the term is known: it may be read from a later chapter
                line=block.line,
                number_inferred=inferred,
                units=block.units,
            )
        )
    return tasks


def _item_number(block: _Block, previous: int, single: bool) -> tuple[int, bool]:
    """(number, inferred): the written number when it continues the sequence, else previous + 1."""
    if single:
        return 1, False
    if block.number is not None and block.number > previous:
        return block.number, False
    return previous + 1, True


def _task_title(text: str) -> str | None:
    """The first sentence, when it is short and more text follows: `加强对公民合法权益的司法保护。…`."""
    head, stop, rest = text.partition("。")
    if stop and rest.strip() and len(head) <= _MAX_TITLE:
        return head
    return None


_DUE_UNKNOWN = date.max

# A completion year inside the plan period: `2023年实现…`, `2024年底前完成…`.
_DUE_RE = re.compile(r"(\d{4})\s*年\s*(?:年底|底|前|内|末)*\s*(?:基本建成|全面建成|实现|完成|建成|达到)")


def _due_date(text: str, period_start: int | None, period_end: int | None) -> date | None:
    years = [int(m[1]) for m in _DUE_RE.finditer(text)]
    if period_start is None or period_end is None:
        # An open term: a task is due when its own text says (`2023年底前完成`), else it has no due date.
        plausible = [year for year in years if _plausible(year, year)]
        return date(min(plausible), 12, 31) if plausible else None
    earlier = [year for year in years if period_start <= year < period_end]
    return date(min(earlier) if earlier else period_end, 12, 31)


# ---------------------------------------------------------------------------------------------
# Plan metadata

_DOC_INDEX_RE = re.compile(rf"索\s*引\s*号\s*[{_COLON}]?\s*([0-9A-Za-z][0-9A-Za-z/\-_.]*)")
_ISSUED_RE = re.compile(
    rf"(?:发文时间|发文日期|成文日期|发布日期|公布日期)\s*[】\]]?\s*[{_COLON}]?\s*"
    r"(\d{4})\s*[-./年]\s*(\d{1,2})\s*[-./月]\s*(\d{1,2})"
)
_ISSUER_RE = re.compile(rf"发布机构\s*[{_COLON}]?\s*(\S{{3,}})")
_TITLE_LINE_RE = re.compile(rf"^[【\[]?\s*标\s*题\s*[】\]]?\s*[{_COLON}]?\s*(.+)$")
_BOOK_TITLE_RE = re.compile(r"《([^》]+)》")
_PERIOD_RE = re.compile(r"(\d{4})\s*年?\s*[-—–~\uff5e至到]\s*(\d{4})\s*年")  # 2021-2025年, 2016年至2020年
_SINGLE_YEAR_RE = re.compile(r"(\d{4})\s*年")
# `到2020年` / `至2020年`: the year a goal is to be reached, i.e. the end of the term.
_UNTIL_YEAR_RE = re.compile(r"(?:到|至)\s*(\d{4})\s*年")
_TITLE_WORDS = ("方案", "规划", "计划", "要点", "意见")
# Years a plan term may span. Anything else is a typo or noise (and `date()` refuses year 0).
_MIN_YEAR, _MAX_YEAR = 1949, 2100
# Legal-database exports (北大法宝 and the like) put labelled lines before the title:
# `【发布部门】某某市人民政府`, `发文字号:某政发〔2012〕15号`. They are metadata, never the title.
_DB_HEADER_LABELS = (
    "法宝引证码", "引证码", "原文链接", "发布部门", "发文字号", "效力级别", "时效性", "公布日期", "发布日期",
    "施行日期", "实施日期", "生效日期", "失效日期", "法规类别", "批准部门", "批准日期", "修订日期", "成文日期",
    "题注", "来源", "信息来源", "主题分类", "文号", "发文机关",
)  # fmt: skip
# The label is closed by `】` or followed by a colon, so prose that starts with 来源… is not a header.
_DB_HEADER_RE = re.compile(rf"^[【\[]?\s*({'|'.join(_DB_HEADER_LABELS)})\s*(?:[】\]]\s*[{_COLON}]?|[{_COLON}])\s*(.*)$")


@dataclass
class _Metadata:
    title: str
    title_line: int | None  # where the title was read, None when it is the default title
    issuer: str | None
    doc_index: str | None
    issued_on: date | None


@dataclass
class _Term:
    start: int | None  # both None: the term was left open (`--term open`)
    end: int | None


def _first_match(pattern: re.Pattern[str], lines: list[_Line]) -> re.Match[str] | None:
    for line in lines:
        if m := pattern.search(line.text):
            return m
    return None


def _db_headers(preamble: list[_Line]) -> dict[str, str]:
    """Legal-database header lines: label -> value (the first of each label)."""
    headers: dict[str, str] = {}
    for line in preamble:
        if m := _DB_HEADER_RE.match(line.text):
            headers.setdefault(m[1], m[2].strip())
    return headers


def _read_metadata(preamble: list[_Line], default_title: str | None, warnings: list[tuple[int, str]]) -> _Metadata:
    doc_index = _first_match(_DOC_INDEX_RE, preamble)
    issuer = _first_match(_ISSUER_RE, preamble)
    title, title_line = _read_title(preamble, default_title)
    department = _db_headers(preamble).get("发布部门")
    if len(title) > _MAX_STORED_TITLE:
        warnings.append(
            (
                title_line or 0,
                f"方案标题过长({len(title)} 字),只保留前 {_MAX_STORED_TITLE} 字 / title cut to {_MAX_STORED_TITLE} characters",
            )
        )
        title = title[:_MAX_STORED_TITLE]
    return _Metadata(
        title=title,
        title_line=title_line,
        issuer=_fitting(issuer[1] if issuer else (department or None), _MAX_ISSUER, ("发布机构", "issuer"), warnings),
        doc_index=_fitting(doc_index[1] if doc_index else None, _MAX_DOC_INDEX, ("索引号", "document index"), warnings),
        issued_on=_read_issued_on(preamble, warnings),
    )


def _fitting(value: str | None, limit: int, what: tuple[str, str], warnings: list[tuple[int, str]]) -> str | None:
    """The value, or None with a warning when it is longer than any real one (its column's size)."""
    if value is None or len(value) <= limit:
        return value
    chinese, english = what
    warnings.append((0, f"{chinese}过长({len(value)} 字,上限 {limit}),已忽略 / {english} longer than {limit}: ignored"))
    return None


def _read_title(preamble: list[_Line], default_title: str | None) -> tuple[str, int | None]:
    # The page's 标题 line names the notice; the plan is the 《…》 it publishes.
    for line in preamble:
        if title_line := _TITLE_LINE_RE.match(line.text):
            book = _BOOK_TITLE_RE.search(title_line[1])
            return (book[1] if book else title_line[1]).strip(), line.no
    # The text's own bare title line (`某某县法治政府建设实施方案(2023-2025年)`) beats a file name.
    for line in preamble:
        if _DB_HEADER_RE.match(line.text):
            continue  # `【法规类别】城乡规划` or a link ending in …意见.html is not the title
        if line.text and not _has_sentence_punct(line.text) and any(w in line.text for w in _TITLE_WORDS):
            book = _BOOK_TITLE_RE.search(line.text)
            return (book[1].strip() if book else line.text), line.no
    if default_title:
        return _normalise(default_title), None
    lines = sum(1 for line in preamble if line.text)
    raise PlanTextError(f"找不到方案标题:正文前的 {lines} 行中没有“标题”行或方案名称,也未提供默认标题")


_TERM_OPTION_RE = re.compile(r"([0-9]{4})-([0-9]{4})")  # [0-9], not \d: `２０２１` is not a year here


OPEN_TERM: Literal["open"] = "open"
Term: TypeAlias = tuple[int, int] | Literal["open"]
"""A term given by the operator: (start, end) years, or `open` (the plan states none; left open)."""


def parse_term(value: str) -> Term:
    """`2012-2016` (as given to `import --term`) -> (2012, 2016); `open` -> left open; PlanTextError
    for anything else."""
    if value == OPEN_TERM:
        return OPEN_TERM
    m = _TERM_OPTION_RE.fullmatch(value)
    if not m:
        raise PlanTextError(f"实施期限“{value}”格式不对,应为 YYYY-YYYY(半角数字),如 2021-2025 / expected YYYY-YYYY")
    start, end = int(m[1]), int(m[2])
    if not _plausible(start, end):
        raise PlanTextError(
            f"实施期限“{value}”无效:年份须在 {_MIN_YEAR}-{_MAX_YEAR} 之间,起始年不晚于终止年"
            " / years out of range or start after end"
        )
    return start, end


def _plausible(start: int, end: int) -> bool:
    return _MIN_YEAR <= start <= end <= _MAX_YEAR


def _resolve_term(
    term: Term | None,
    meta: _Metadata,
    preamble: list[_Line],
    goals: list[_Line],
    warnings: list[tuple[int, str]],
) -> _Term:
    """The plan's term: given (`--term`), else from the title, else inferred from the text, reported.

    Inference is deliberately narrow: a `2016—2020年` range in the preamble or the goals section, or
    the goals' first `到2020年` together with the year the plan was issued. Anything less certain is
    refused, naming `--term`: a wrong term would silently move every task's due date.
    """
    written = _term_in_title(meta.title)
    if term == OPEN_TERM:
        if written is not None:
            raise PlanTextError(
                f"标题已写明实施期限 {written.start}-{written.end},不能再指定 --term open / the title states the term"
            )
        warnings.append((0, "实施期限未定(--term open):无报告期日历,原文未写年份的任务无期限 / term left open"))
        return _Term(None, None)
    if term is not None:
        return _given_term(term, written, meta, warnings)
    if written is not None:
        return written
    # Lines with 《…》 cite other documents (《纲要(2020—2025年)》), whose periods are not ours.
    own_lines = [line for line in preamble if "《" not in line.text and not _DB_HEADER_RE.match(line.text)]
    for where, lines in (("正文前", own_lines), ("总体目标", goals)):
        for line in lines:
            m = _PERIOD_RE.search(line.text)
            if m and _plausible(*sorted((int(m[1]), int(m[2])))):
                start, end = sorted((int(m[1]), int(m[2])))
                warnings.append(
                    (line.no, f"实施期限取自{where}“{m[0]}”:{start}-{end} / term taken from this line: {start}-{end}")
                )
                return _Term(start, end)
        if where == "正文前" and (year := _single_year_in_title(meta.title)) is not None:
            return year  # `某某县2023年普法工作要点`: a one-year plan, as its title says
    for where, lines in (("总体目标", goals), ("正文前", own_lines)):
        for line in lines:
            for m in _UNTIL_YEAR_RE.finditer(line.text):
                if _plausible(int(m[1]), int(m[1])):
                    return _term_until(int(m[1]), m[0], where, line.no, meta, warnings)
    raise PlanTextError(
        f"找不到实施期限:标题“{meta.title}”、正文前各行及总体目标中都没有“2021-2025年”这样的年份区间;"
        "请用 --term 指定,如 --term 2021-2025;原文确无期限时用 --term open"
        " / no term found in the text: give it with --term YYYY-YYYY, or --term open to leave it open"
    )


def _term_until(
    end: int, found: str, where: str, line_no: int, meta: _Metadata, warnings: list[tuple[int, str]]
) -> _Term:
    """`到2020年` names the end; the start is the year the plan was issued, when the text says it."""
    issued = meta.issued_on.year if meta.issued_on else None
    if issued is None or not _plausible(issued, end):
        known = f"发布日期 {meta.issued_on.isoformat()}" if meta.issued_on else "没有发布日期"
        raise PlanTextError(
            f"找不到实施期限:第{line_no}行{where}“{found}”只给出终止年,{known},推不出起始年;"
            f"请用 --term 指定,如 --term {issued if issued and issued <= end else end - 4}-{end}"
            " / only an end year found: give the term with --term"
        )
    warnings.append(
        (
            line_no,
            f"实施期限取自发布日期({issued}年)和{where}“{found}”:{issued}-{end}"
            f" / term taken from the issue date and this line: {issued}-{end}",
        )
    )
    return _Term(issued, end)


def _term_in_title(title: str) -> _Term | None:
    if m := _PERIOD_RE.search(title):
        start, end = sorted((int(m[1]), int(m[2])))
        return _Term(start, end) if _plausible(start, end) else None
    return None


def _single_year_in_title(title: str) -> _Term | None:
    if m := _SINGLE_YEAR_RE.search(title):
        year = int(m[1])
        return _Term(year, year) if _plausible(year, year) else None
    return None


def _given_term(
    term: tuple[int, int], written: _Term | None, meta: _Metadata, warnings: list[tuple[int, str]]
) -> _Term:
    start, end = term
    if not _plausible(start, end):
        raise PlanTextError(
            f"实施期限 {start}-{end} 无效:须在 {_MIN_YEAR}-{_MAX_YEAR} 之间,起始年不晚于终止年 / invalid term"
        )
    warnings.append((0, f"实施期限取自 --term {start}-{end} / term taken from --term"))
    if written is not None and (written.start, written.end) != (start, end):
        warnings.append(
            (
                meta.title_line or 0,
                f"标题中的实施期限 {written.start}-{written.end} 与 --term {start}-{end} 不同,以 --term 为准"
                " / the title's term differs from --term; --term wins",
            )
        )
    return _Term(start, end)


def _read_issued_on(preamble: list[_Line], warnings: list[tuple[int, str]]) -> date | None:
    for line in preamble:
        if m := _ISSUED_RE.search(line.text):
            try:
                return date(int(m[1]), int(m[2]), int(m[3]))
            except ValueError:
                warnings.append((line.no, f"发文时间“{m[0]}”不是有效日期,已忽略"))
    return None


# ---------------------------------------------------------------------------------------------
# Entry point


def parse_plan(text: str, *, default_title: str | None = None, term: Term | None = None) -> ParsedPlan:
    """Parse a plan text (already decoded). Raises PlanTextError when no task can be found.

    `term` (start and end year) is the operator's `--term`: it wins over whatever the text says.
    """
    lines = _read_lines(text)
    non_blank = sum(1 for line in lines if line.text)
    if non_blank == 0:
        raise PlanTextError("文本为空:没有任何非空行")
    warnings: list[tuple[int, str]] = []
    preamble, chapters = _split_chapters(lines, warnings)
    if not chapters:
        raise PlanTextError(f"未找到任何任务:{non_blank} 行非空文本中没有章标题(如“一、总体要求”)")

    meta = _read_metadata(preamble, default_title, warnings)
    ctx = _Context(warnings)
    sections: list[ParsedSection] = []
    tasks: list[ParsedTask] = []
    for chapter in chapters:
        chapter_sections, chapter_tasks = _parse_chapter(chapter, ctx)
        sections.extend(chapter_sections)
        tasks.extend(chapter_tasks)

    if not tasks:
        subsections = sum(1 for s in sections if s.level == 2)
        body_lines = sum(len(c.lines) for c in chapters)
        raise PlanTextError(
            f"未找到任何任务:识别出 {len(chapters)} 章、{subsections} 个小节,共 {body_lines} 行正文,"
            "但没有任何带牵头/配合/责任单位的条目"
        )
    # The term may come from the goals section, so it is known only now; due dates depend on it.
    found = _resolve_term(term, meta, preamble, _goal_lines(sections, lines), warnings)
    for task in tasks:
        task.due = _due_date(task.text, found.start, found.end)
    return ParsedPlan(
        title=meta.title,
        issuer=meta.issuer,
        doc_index=meta.doc_index,
        issued_on=meta.issued_on,
        period_start=found.start,
        period_end=found.end,
        goals=_goals(sections),
        sections=sections,
        tasks=tasks,
        warnings=_format_warnings(warnings),
    )


def _format_warnings(warnings: list[tuple[int, str]]) -> list[str]:
    # Chapters are built subsection by subsection; report in source order. Line 0 is the whole plan
    # (e.g. the term given on the command line): first, without a line number.
    ordered = sorted(warnings, key=lambda w: w[0])
    return [message if line == 0 else f"第{line}行:{message}" for line, message in ordered]


def _goals_section(sections: list[ParsedSection]) -> ParsedSection | None:
    """The 总体目标 subsection (any subsection titled …目标 with prose), else such a chapter."""
    for level in (2, 1):
        for section in sections:
            if section.level == level and "目标" in section.title and section.body:
                return section
    return None


def _goals(sections: list[ParsedSection]) -> str | None:
    section = _goals_section(sections)
    return section.body if section is not None and section.level == 2 else None


def _goal_lines(sections: list[ParsedSection], lines: list[_Line]) -> list[_Line]:
    """The source lines of the goals section: from its heading up to the next section."""
    section = _goals_section(sections)
    if section is None:
        return []
    later = [s.line for s in sections if s.line > section.line]
    end = min(later) if later else len(lines) + 1
    return [line for line in lines if section.line <= line.no < end and line.text]
