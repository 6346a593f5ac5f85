"""Small helpers for tests: plan texts in the other layout, and a way to import them."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import Session

from app.core.config import SEED_DIR
from app.importer.loader import ImportSummary
from app.importer.service import import_file

SEED_PLAN = SEED_DIR / "xiji-fzsh-2021-2025.txt"
SEED_UNITS = SEED_DIR / "units.toml"
SEED_SLUG = "xiji-fzsh-2021-2025"


def import_text(
    session: Session, tmp_path: Path, text: str | bytes, *, slug: str, strict: bool = False
) -> ImportSummary:
    path = tmp_path / f"{slug}.txt"
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    _, summary = import_file(session=session, path=path, slug=slug, units_path=SEED_UNITS, strict=strict)
    return summary
