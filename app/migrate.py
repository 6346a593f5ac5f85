"""Run Alembic from inside the app: `plan-api migrate`, `serve`'s first start, and the tests."""

from __future__ import annotations

from functools import lru_cache

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine

from app.core.config import REPO_ROOT
from app.db import lock_for_startup


def alembic_config() -> Config:
    config = Config(str(REPO_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(REPO_ROOT / "migrations"))
    return config


def upgrade_to_head(engine: Engine) -> None:
    config = alembic_config()
    with engine.begin() as connection:
        lock_for_startup(connection)
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


@lru_cache
def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def is_at_head(connection: Connection) -> bool:
    return MigrationContext.configure(connection).get_current_revision() == head_revision()
