"""The jurisdiction migration (954f18424e9e) on a database that held only 西吉县's data before it.

The "before" database is built at the previous revision (4f610f3260ea) with the rows a working
deployment has: the seed plan, a unit key and an admin key, a status report and a correction, and
their change feed. The rows come from a reference database that the current app built with the same
requests, copied column by column into the old schema (it lacks only the jurisdiction columns).
After `upgrade head` the migrated database must answer every read exactly as the reference does, and
the old keys must still work: the ids, keys, reports and the feed's numbers survived in place.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import MetaData, select, text
from sqlalchemy.engine import Engine
from sqlmodel import Session

from app.core.config import get_settings
from app.db import get_session, get_write_session, make_engine
from app.importer.service import seed_if_empty
from app.main import create_app
from app.migrate import upgrade, upgrade_to_head
from tests.conftest import fresh_database_url
from tests.factories import SEED_SLUG, make_key

OLD_REVISION = "4f610f3260ea"
PLAN = f"/api/v1/plans/{SEED_SLUG}"
REPORT = {"status": "in_progress", "percent": 40, "summary": "已部署。", "period": "2023-H1"}
CORRECTION = {"status": "delayed", "percent": 20, "summary": "核查后更正。", "period": "2023-H1"}
READS = [
    "/api/v1/plans",
    PLAN,
    f"{PLAN}/sections",
    f"{PLAN}/tasks?limit=500",
    f"{PLAN}/tasks?unit=司法局&role=lead",
    f"{PLAN}/tasks/2.3.3",
    f"{PLAN}/tasks/2.3.3/progress",
    f"{PLAN}/stats?as_of=2024-01-01",
    "/api/v1/units",
    "/api/v1/units/司法局",
    "/api/v1/units/县司法局/tasks?limit=500",
    "/api/v1/units/各乡镇",
    "/api/v1/units/司法局/progress",
    "/api/v1/changes?since=0&limit=1000",
]


@contextmanager
def client_on(engine: Engine) -> Iterator[TestClient]:
    app = create_app()

    def session() -> Iterator[Session]:
        with Session(engine, expire_on_commit=False) as s:
            yield s

    app.dependency_overrides[get_session] = session
    app.dependency_overrides[get_write_session] = session
    with TestClient(app) as client:
        yield client


def _copy_rows(source: Engine, target: Engine) -> None:
    """Every row of `source` into the (older) schema of `target`, the columns both have."""
    old = MetaData()
    old.reflect(target)
    new = MetaData()
    new.reflect(source)
    tables = [t for t in old.sorted_tables if t.name != "alembic_version"]
    with source.connect() as src, target.begin() as dst:
        for table in reversed(tables):
            dst.execute(table.delete())  # the migrations' own rows (the feed counter)
        for table in tables:
            columns = [c.name for c in table.columns]
            order = [new.tables[table.name].c[c] for c in columns if c == "id" or c == "seq"]
            rows = src.execute(select(*[new.tables[table.name].c[c] for c in columns]).order_by(*order)).all()
            if rows:
                dst.execute(table.insert(), [dict(zip(columns, row, strict=True)) for row in rows])
        if dst.dialect.name == "postgresql":  # rows came with their ids: move the sequences past them
            for table in tables:
                if "id" in table.columns and table.c.id.autoincrement is not False:
                    dst.execute(
                        text(
                            f"SELECT setval(pg_get_serial_sequence('\"{table.name}\"', 'id'), "
                            f'COALESCE((SELECT MAX(id) FROM "{table.name}"), 0) + 1, false)'
                        )
                    )


def test_old_database_answers_the_same_after_the_migration(backend: str, tmp_path: Path) -> None:
    urls = fresh_database_url(backend, tmp_path), fresh_database_url(backend, tmp_path)
    with _database(urls[0]) as reference, _database(urls[1]) as migrated:
        upgrade_to_head(reference)
        with Session(reference) as session:
            seed_if_empty(session=session, settings=get_settings())
            unit_key = make_key(session, unit="司法局")
            admin_key = make_key(session, admin=True)
        with client_on(reference) as client:
            assert (
                client.post(
                    f"{PLAN}/tasks/2.3.3/progress", json=REPORT, headers={"Authorization": unit_key}
                ).status_code
                == 201
            )
            correction = client.post(
                f"{PLAN}/tasks/4.4.2/progress", json=CORRECTION, headers={"Authorization": admin_key}
            )
            assert correction.status_code == 201
            expected = {url: client.get(url).json() for url in READS}
            expected_audit = client.get("/api/v1/admin/audit", headers={"Authorization": admin_key}).json()

        upgrade(migrated, OLD_REVISION)
        _copy_rows(reference, migrated)
        upgrade_to_head(migrated)

        with client_on(migrated) as client:
            for url in READS:
                response = client.get(url)
                assert response.status_code == 200, (url, response.text)
                assert response.json() == expected[url], url
            assert client.get("/api/v1/admin/audit", headers={"Authorization": admin_key}).json() == expected_audit
            # Everything is 西吉县's now, and the old keys act there as before.
            assert client.get("/api/v1/jurisdictions/640422").json()["counts"]["plans"] == 1
            assert client.get(PLAN).json()["jurisdiction"] == {"code": "640422", "name": "西吉县"}
            again = {**REPORT, "percent": 60, "period": "2023-H2"}
            after = client.post(f"{PLAN}/tasks/2.3.3/progress", json=again, headers={"Authorization": unit_key})
            assert after.status_code == 201, after.text
            listed = client.get("/api/v1/admin/keys", headers={"Authorization": admin_key}).json()["items"]
            assert {k["jurisdiction"]["code"] for k in listed} == {"640422"} and len(listed) == 2
            feed = client.get("/api/v1/changes", params={"since": 0, "limit": 1000, "jurisdiction": "640422"}).json()
            seqs = [e["seq"] for e in feed["items"]]
            assert (
                seqs == sorted(seqs) and len(seqs) == len(expected["/api/v1/changes?since=0&limit=1000"]["items"]) + 2
            )


@contextmanager
def _database(urls: Iterator[str]) -> Iterator[Engine]:
    for url in urls:
        engine = make_engine(url)
        try:
            yield engine
        finally:
            engine.dispose()
