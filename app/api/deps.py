"""Typed dependencies: routers read like a sentence (`session: SessionDep`, `writer: WriterDep`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, TypeVar

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from app.api.rate_limit import AbuseLimits
from app.api.writes import Writes, WritesDep
from app.core.config import Settings, get_settings
from app.db import get_session, own_sqlite_engine, sqlite_counter
from app.errors import AdminOnly, Unauthenticated
from app.models.progress import STRUCTURE_VERSION_SQL
from app.services.keys import Principal, authenticate, remembered

SessionDep = Annotated[Session, Depends(get_session)]
T = TypeVar("T")


async def current_settings() -> Settings:
    """The settings as a dependency (tests override it); async, so it costs no threadpool hop."""
    return get_settings()


SettingsDep = Annotated[Settings, Depends(current_settings)]

# Declared as an HTTP bearer scheme, so /docs has an Authorize button and generated clients take the
# key once; the header itself is parsed by `authenticate`, which says exactly what is wrong with it.
bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="apiKey",
    bearerFormat="pa_<prefix>_<secret>",
    description="单位密钥或依法治县办管理密钥,由依法治县办签发 / a unit's or the admin office's API key",
)


async def authorization_header(  # async: no threadpool hop on every read
    request: Request, _declared: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]
) -> str | None:
    return request.headers.get("authorization")


AuthorizationHeader = Annotated[str | None, Depends(authorization_header)]


def client_address(request: Request) -> str | None:
    """The caller's address for the audit log (behind a proxy, uvicorn's --proxy-headers sets it)."""
    return request.client.host if request.client else None


async def verified_principal(request: Request, session: SessionDep, authorization: AuthorizationHeader) -> Principal:
    """The caller's key, checked on a read session before any write session exists: a bad key never
    takes SQLite's writer lock (nor a second pooled connection: the read transaction ends here). A
    failure is audited and throttled per address (`app/api/rate_limit.py`)."""
    limits: AbuseLimits = request.app.state.abuse_limits
    address = client_address(request)
    await limits.refuse_if_blocked(address=address)
    if (known := _remembered_on_loop(request, authorization)) is not None:
        return known

    def check() -> Principal:
        try:
            principal = authenticate(session=session, authorization=authorization)
        except SQLAlchemyError:
            session.rollback()  # the database is failing: the problem handler answers 503
            raise
        finally:
            if session.in_transaction():
                session.commit()  # ends the read transaction, returning its connection to the pool
        return principal

    try:
        return await run_in_threadpool(check)
    except Unauthenticated as exc:
        await limits.record_failure(address=address, authorization=authorization, reason=exc.reason)
        raise


def _remembered_on_loop(request: Request, authorization: str | None) -> Principal | None:
    """SQLite: a key accepted at the current structure version, known without a session or a thread-pool
    hop (the version read on the loop, as a cached read's is). A write checks the key again inside its
    transaction all the same; this check only keeps a bad key from waiting for the writer."""
    engine = own_sqlite_engine(request.app)
    if engine is None or not authorization:
        return None
    try:
        version = sqlite_counter(engine, STRUCTURE_VERSION_SQL)
    except Exception:  # the DBAPI's own errors: the session's path meets the failure and answers it
        return None
    return remembered(where=str(engine.url), structure_version=version, authorization=authorization)


VerifiedPrincipal = Annotated[Principal, Depends(verified_principal)]


def _admin(principal: Principal) -> Principal:
    if not principal.is_admin:
        raise AdminOnly(f"此操作仅限依法治县办的管理密钥;{principal.name}的密钥无权执行 / admin key required")
    return principal


@dataclass(frozen=True)
class Writing:
    """A write request's one transaction, committed in one place (`app/api/writes.py`): a route hands
    `run` its work and never commits. The work gets the write session and the caller, authenticated
    again on that session, so a key revoked a moment ago is refused by this very write."""

    writes: Writes
    authorization: str | None
    admin_only: bool

    def run(self, work: Callable[[Session, Principal], T]) -> T:
        def checked(session: Session) -> T:
            principal = authenticate(session=session, authorization=self.authorization)
            return work(session, _admin(principal) if self.admin_only else principal)

        return self.writes.run(checked)


async def writer_writes(_verified: VerifiedPrincipal, writes: WritesDep, authorization: AuthorizationHeader) -> Writing:
    return Writing(writes, authorization, admin_only=False)


async def admin_writes(verified: VerifiedPrincipal, writes: WritesDep, authorization: AuthorizationHeader) -> Writing:
    _admin(verified)  # a unit key is refused before its work waits for the writer
    return Writing(writes, authorization, admin_only=True)


async def require_admin_reader(principal: VerifiedPrincipal) -> Principal:
    """An admin key, for admin reads (key list, audit log): checked on a read session (audited and
    throttled like every key check), so a read never queues behind the writer's lock."""
    return _admin(principal)


async def require_reader(
    request: Request, session: SessionDep, settings: SettingsDep, authorization: AuthorizationHeader
) -> Principal | None:
    """Reads are open unless REQUIRE_KEY_FOR_READS is set. (async: open reads cost no threadpool hop.)
    Writes are authenticated by their own dependency (require_writer, require_admin)."""
    if not settings.require_key_for_reads or request.method not in {"GET", "HEAD"}:
        return None
    return await verified_principal(request, session, authorization)


async def reading_key(request: Request, session: SessionDep, authorization: AuthorizationHeader) -> Principal | None:
    """The key an open read is made with, if any (a bad key is a 401, audited and throttled, as
    anywhere). Key metadata (prefixes, admin key names) is shown to admins and to a key about itself
    only: a prefix names a key to attack."""
    if not authorization:
        return None
    return await verified_principal(request, session, authorization)


ReadingKeyDep = Annotated[Principal | None, Depends(reading_key)]


async def admin_reading(reader: ReadingKeyDep) -> bool:
    return reader is not None and reader.is_admin


AdminReadingDep = Annotated[bool, Depends(admin_reading)]
AdminReaderDep = Annotated[Principal, Depends(require_admin_reader)]
WriterWritesDep = Annotated[Writing, Depends(writer_writes)]
AdminWritesDep = Annotated[Writing, Depends(admin_writes)]
