"""Shared column types and the metadata naming convention Alembic relies on."""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import chain
from typing import Any, TypeVar

from sqlalchemy import DateTime, TypeDecorator
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.engine import Dialect
from sqlmodel import Session, SQLModel

# Named constraints make migrations reproducible across SQLite and PostgreSQL.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
M = TypeVar("M", bound=SQLModel)

# `__table_args__` of the tables a progress report writes. Their writes move the data version but not
# the structure version (`FeedCounter`), which keys what a write needs to know before it starts: who
# the key is, the plan, its schedule, the key's jurisdictions. Any other table's write moves both.
REPORT_PATH: dict[str, Any] = {"info": {"structure": False}}


def moves_data_version(table: Any) -> bool:
    """A write to `table` moves the data version; a table opts out with `info={"data_version": False}`
    (app/models/webhook.py says why). A statement on no known table counts."""
    return table is None or table.info.get("data_version", True)


def moves_structure_version(table: Any) -> bool:
    return moves_data_version(table) and (table is None or table.info.get("structure", True))


def pending_tables(session: Session) -> set[Any]:
    """The tables of the rows a session is about to write (or, in `after_flush`, has just written)."""
    return {getattr(type(row), "__table__", None) for row in chain(session.new, session.dirty, session.deleted)}


def detached_copy(row: M) -> M:
    """A copy of a row's columns bound to no session: safe to keep across requests and share between
    threads (the per-version caches), where the loading session would expire or close the original.
    Relationships are not copied; callers attach the copies they need."""
    return type(row)(**{attr.key: getattr(row, attr.key) for attr in sa_inspect(type(row)).column_attrs})


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on both engines (SQLite stores no offset and would hand back naive times)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime passed to a UTC column")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
