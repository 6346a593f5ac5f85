"""Importing a plan file end to end: bytes → parsed plan → tables. Used by the CLI and `serve`."""

from __future__ import annotations

import logging
from pathlib import Path

from sqlmodel import Session, select

from app.core.config import Settings
from app.db import lock_for_startup
from app.importer.loader import ImportSummary, checksum, import_plan
from app.importer.parsed import ParsedPlan
from app.importer.parser import decode_plan_bytes, parse_plan
from app.importer.units import apply_unit_file, read_unit_file
from app.models import Plan

log = logging.getLogger(__name__)


def read_plan_file(path: Path, *, term: tuple[int, int] | None = None) -> tuple[ParsedPlan, bytes]:
    data = path.read_bytes()
    text, encoding = decode_plan_bytes(data)
    parsed = parse_plan(text, default_title=path.stem, term=term)
    parsed.encoding = encoding
    return parsed, data


def import_file(
    *,
    session: Session,
    path: Path,
    slug: str,
    units_path: Path | None,
    strict: bool = False,
    term: tuple[int, int] | None = None,
) -> tuple[ParsedPlan, ImportSummary]:
    """Flushes only; the caller commits (or rolls back, for a dry run). `term`: `--term`, if given."""
    parsed, data = read_plan_file(path, term=term)
    if units_path is not None:
        apply_unit_file(session, read_unit_file(units_path))
    summary = import_plan(
        session=session,
        parsed=parsed,
        slug=slug,
        source_name=path.name,
        source_checksum=checksum(data),
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
