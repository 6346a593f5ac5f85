"""What the parser reads out of a plan text, before anything touches the database.

The parser (`parser.py`) produces these plain dataclasses; the loader (`loader.py`) writes them.
Keeping them free of SQL lets `import --dry-run` show exactly what would be written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from app.models.task import Role  # the tables' enum; the parser fills it in


@dataclass
class UnitMention:
    """One unit name as the source writes it on a task's unit line, e.g. `委宣传部` under 牵头单位."""

    role: Role
    as_written: str  # trimmed, inner spacing removed; never canonicalised here
    line: int  # 1-based source line


@dataclass
class ParsedSection:
    """A chapter (`code="2"`, level 1) or subsection (`code="2.1"`, level 2)."""

    code: str
    level: int
    number: int
    title: str
    body: str | None  # text of a section that is prose, not tasks (指导思想, 总体目标, chapter 七)
    line: int
    marker_inferred: bool = False  # the `(一)` marker was lost or damaged and its number was inferred


@dataclass
class ParsedTask:
    code: str  # chapter.subsection.item, e.g. "2.1.3"
    section_code: str  # the subsection it belongs to, e.g. "2.1"
    title: str | None
    text: str
    due: date | None  # None: an open-term plan's task whose text names no year
    line: int
    number_inferred: bool = False
    units: list[UnitMention] = field(default_factory=list)


@dataclass
class ParsedPlan:
    title: str
    issuer: str | None
    doc_index: str | None  # 索引号
    issued_on: date | None  # 发文时间
    period_start: int | None  # both None: the term was left open
    period_end: int | None
    goals: str | None  # 总体目标 text
    sections: list[ParsedSection]
    tasks: list[ParsedTask]
    warnings: list[str] = field(default_factory=list)
    encoding: str = "utf-8"
