"""The models and the migrations must describe the same schema, on both engines."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

import app.models  # noqa: F401
from app.migrate import head_revision, is_at_head


def test_autogenerate_finds_no_difference(fresh_engine: Engine) -> None:
    with fresh_engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, SQLModel.metadata)
    assert diff == []


def test_database_is_at_head_after_upgrade(fresh_engine: Engine) -> None:
    with fresh_engine.connect() as conn:
        assert head_revision() is not None
        assert is_at_head(conn)
