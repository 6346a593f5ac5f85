"""Whose plan is it: the plan's jurisdiction, from `--jurisdiction` or read off the document.

Evidence, strongest first: the 索引号 (its first six digits are the issuing division's code:
640422001/2022-00081 → 640422 西吉县), the issuer (西吉县政府办公室 → 西吉县), the title
(西吉县法治社会建设实施方案 → 西吉县). The first that names exactly one division decides; the others
must agree or a warning says they do not. Nothing found is an error, never a silent default.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sqlmodel import Session

from app.errors import ProblemError
from app.importer.parsed import ParsedPlan
from app.models import Jurisdiction
from app.services import jurisdictions


class JurisdictionNotInferred(ValueError):
    pass


@dataclass
class Placement:
    jurisdiction: Jurisdiction
    how: str  # e.g. "索引号 640422001/2022-00081 → 640422"
    warnings: list[str] = field(default_factory=list)


def place_plan(*, session: Session, parsed: ParsedPlan, override: str | None) -> Placement:
    if override:
        try:
            found = jurisdictions.resolve(session=session, ref=override, store=True)
        except ProblemError as exc:
            raise JurisdictionNotInferred(f"--jurisdiction {override}: {exc.detail}") from exc
        return Placement(found, f"--jurisdiction {override}")

    evidence: list[tuple[str, list[Jurisdiction]]] = []
    digits = re.match(r"\d{6}", (parsed.doc_index or "").strip())
    if digits:
        row = jurisdictions.ensure(session=session, code=digits.group())
        if row is not None:
            evidence.append((f"索引号 {parsed.doc_index} → {digits.group()}", [row]))
    for what, text in (("发布机构", parsed.issuer), ("标题", parsed.title)):
        if not text:
            continue
        divisions = jurisdictions.names_in(text)
        if divisions:
            longest = [d for d in divisions if len(d.name) == len(divisions[0].name)]
            rows = [jurisdictions.ensure(session=session, code=d.code) for d in longest]
            evidence.append((f"{what}“{text}” → {longest[0].name}", [r for r in rows if r is not None]))

    decided = next(((how, rows[0]) for how, rows in evidence if len(rows) == 1), None)
    if decided is None:
        if evidence:
            listed = "、".join(jurisdictions.label(r) for _, rows in evidence for r in rows)
            raise JurisdictionNotInferred(
                f"无法确定方案所属行政区划(候选:{listed}),请用 --jurisdiction 指定 / ambiguous jurisdiction"
            )
        raise JurisdictionNotInferred(
            "无法从索引号、发布机构或标题推断方案所属行政区划,请用 --jurisdiction CODE|NAME 指定"
            " / cannot infer the plan's jurisdiction; give --jurisdiction"
        )
    how, chosen = decided
    warnings = [
        f"{other_how} 与所定区划 {jurisdictions.label(chosen)} 不一致 / evidence disagrees"
        for other_how, rows in evidence
        if chosen.id not in {r.id for r in rows}
    ]
    return Placement(chosen, how, warnings)
