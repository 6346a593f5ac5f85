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


def make_key(session: Session, *, unit: str | None = None, admin: bool = False) -> str:
    """Issues a key through the real service and returns the Authorization header value."""
    from app.services.keys import create_key
    from app.services.units import get_unit

    found = get_unit(session=session, ref=unit) if unit else None
    _, secret = create_key(session=session, name=unit or "依法治县办", unit=found, is_admin=admin)
    session.commit()  # as `keys create` does; under the `db` fixture this only releases a savepoint
    return f"Bearer {secret}"
