"""Group commit (`app/api/writes.py`): writers that wait together share one transaction, each
validated alone and failing alone, each answered only once that transaction is committed.

(Concurrent reports through a real server, and acknowledged reports surviving SIGKILL, are in
`tests/test_write_robustness.py`; the server's single-report endpoint goes through this path.)"""

from __future__ import annotations

import threading
import time

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from app.api.read_cache import engine_data_version
from app.api.writes import GroupCommit
from app.db import sqlite_writer
from app.errors import ProblemError
from app.models import Jurisdiction, JurisdictionLevel, Unit, UnitKind


def _county(engine: Engine) -> int:
    with Session(engine) as session:
        county = Jurisdiction(code="999001", name="测试县", level=JurisdictionLevel.county)
        session.add(county)
        session.commit()
        assert county.id is not None
        return county.id


def test_waiting_writers_share_one_commit_and_fail_alone(fresh_engine: Engine) -> None:
    county = _county(fresh_engine)
    writes = GroupCommit(fresh_engine)

    def add(name: str, *, refuse: bool = False) -> object:
        def work(session: Session) -> str:
            session.add(Unit(name=name, kind=UnitKind.government_department, jurisdiction_id=county))
            session.flush()
            if refuse:
                raise ProblemError(f"refused {name}")
            return name

        return work

    works = {
        "县甲局": add("县甲局"),
        "县乙局": add("县乙局", refuse=True),  # its own rule refuses it after it wrote
        "县丙局": add("县丙局"),
        "县甲局 again": add("县甲局"),  # the unique constraint refuses it, at its own flush
        "县丁局": add("县丁局"),
    }
    answers: dict[str, object] = {}
    version = engine_data_version(fresh_engine)
    sqlite_writer.acquire()  # hold the writers back until all of them are queued
    try:
        threads = [
            threading.Thread(target=lambda n=n, w=w: answers.__setitem__(n, _run(writes, w))) for n, w in works.items()
        ]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 60
        while len(writes._queue) < len(works):  # readiness, not timing: wait until every writer is queued
            assert time.monotonic() < deadline, "writers never queued"
            time.sleep(0.01)
        assert answers == {}, "nobody is answered before the commit"
    finally:
        sqlite_writer.release()
    for thread in threads:
        thread.join(60)

    assert writes.groups == 1 and writes.writes == len(works)  # one transaction, one commit
    assert answers["县甲局"] == "县甲局" and answers["县丙局"] == "县丙局" and answers["县丁局"] == "县丁局"
    assert isinstance(answers["县乙局"], ProblemError)
    assert isinstance(answers["县甲局 again"], IntegrityError)
    with Session(fresh_engine) as session:
        stored = session.exec(select(Unit.name).where(col(Unit.jurisdiction_id) == county)).all()
    assert sorted(stored) == sorted(["县甲局", "县丙局", "县丁局"])
    assert engine_data_version(fresh_engine) == version + 1  # one commit, one new data version


def test_a_failed_commit_fails_everyone_in_it(fresh_engine: Engine) -> None:
    county = _county(fresh_engine)
    writes = GroupCommit(fresh_engine)

    def breaks_the_commit(session: Session) -> str:
        # Deferred until commit: the foreign key is checked at the statement on both backends, so
        # instead make the whole transaction fail as a commit does, after this work's savepoint.
        session.add(Unit(name="县戊局", kind=UnitKind.government_department, jurisdiction_id=county))
        session.flush()
        session.info["break_commit"] = True
        return "县戊局"

    from sqlalchemy import event

    def fail(session: Session) -> None:
        if session.info.pop("break_commit", False):
            raise RuntimeError("disk full")

    event.listen(Session, "before_commit", fail)
    try:
        outcome = _run(writes, breaks_the_commit)
    finally:
        event.remove(Session, "before_commit", fail)
    assert isinstance(outcome, RuntimeError)
    with Session(fresh_engine) as session:
        assert session.exec(select(Unit).where(Unit.name == "县戊局")).first() is None


def _run(writes: GroupCommit, work: object) -> object:
    try:
        return writes.run(work)  # type: ignore[arg-type]
    except Exception as exc:  # the test inspects what each writer was told
        return exc
