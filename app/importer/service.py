"""Importing a plan file end to end: bytes → parsed plan → tables. Used by the CLI and `serve`."""

from __future__ import annotations

import logging
from pathlib import Path

from sqlmodel import Session, select

from app.core.config import Settings
from app.db import lock_for_startup
from app.importer.jurisdiction import place_plan
from app.importer.loader import ImportSummary, checksum, import_plan
from app.importer.parsed import ParsedPlan
from app.importer.parser import Term, decode_plan_bytes, parse_plan
from app.importer.units import apply_unit_file, read_unit_file
from app.models import Jurisdiction, Plan
from app.services.jurisdictions import ancestors

log = logging.getLogger(__name__)


def read_plan_file(path: Path, *, term: Term | None = None) -> tuple[ParsedPlan, bytes]:
    data = path.read_bytes()
    text, encoding = decode_plan_bytes(data)
    parsed = parse_plan(text, default_title=path.stem, term=term)
    parsed.encoding = encoding
    return parsed, data


def apply_unit_files(*, session: Session, units_dir: Path, jurisdiction: Jurisdiction) -> None:
    """Applies `<units_dir>/<code>.toml` of the jurisdiction and of each ancestor that has one,
    top down (a county's file may name its prefecture's units as group members)."""
    chain = [*reversed(ancestors(session=session, jurisdiction=jurisdiction)), jurisdiction]
    for level in chain:
        path = units_dir / f"{level.code}.toml"
        if path.is_file():
            apply_unit_file(session, read_unit_file(path), level)


def import_file(
    *,
    session: Session,
    path: Path,
    slug: str,
    units_path: Path | None,
    strict: bool = False,
    term: Term | None = None,
    jurisdiction: str | None = None,
) -> tuple[ParsedPlan, ImportSummary]:
    """`units_path` is the directory of unit files (`<code>.toml`); `jurisdiction` (code or name)
    overrides what the document says; `term`: `--term`, if given. Flushes only; the caller commits
    (or rolls back, for a dry run)."""
    parsed, data = read_plan_file(path, term=term)
    placement = place_plan(session=session, parsed=parsed, override=jurisdiction)
    if units_path is not None:
        apply_unit_files(session=session, units_dir=units_path, jurisdiction=placement.jurisdiction)
    parsed.warnings.extend(placement.warnings)
    summary = import_plan(
        session=session,
        parsed=parsed,
        slug=slug,
        source_name=path.name,
        source_checksum=checksum(data),
        jurisdiction=placement.jurisdiction,
        jurisdiction_source=placement.how,
        strict=strict,
    )
    return parsed, summary


def seed_if_empty(*, session: Session, settings: Settings) -> ImportSummary | None:
    """First start of the embedded default: load the county's units and the seed plan, once."""
    lock_for_startup(session.connection())
    if session.exec(select(Plan.id).where(Plan.slug == settings.seed_plan_slug)).first() is not None:
        return None
    _, summary = import_file(
        session=session,
        path=settings.seed_plan_path,
        slug=settings.seed_plan_slug,
        units_path=settings.seed_units_path,
    )
    session.commit()
    log.info("seeded plan %s: %d tasks, %d links", summary.slug, summary.tasks, summary.links)
    return summary
