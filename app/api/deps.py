"""Typed dependencies: routers read like a sentence (`session: SessionDep`, `writer: WriterDep`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from app.core.config import Settings, get_settings
from app.db import get_session, get_write_session
from app.errors import AdminOnly
from app.services.keys import Principal, authenticate

SessionDep = Annotated[Session, Depends(get_session)]


async def current_settings() -> Settings:
    """The settings as a dependency (tests override it); async, so it costs no threadpool hop."""
    return get_settings()


SettingsDep = Annotated[Settings, Depends(current_settings)]
WriteSessionDep = Annotated[Session, Depends(get_write_session)]

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


def require_writer(session: WriteSessionDep, authorization: AuthorizationHeader) -> Principal:
    return authenticate(session=session, authorization=authorization)


def require_admin(session: WriteSessionDep, authorization: AuthorizationHeader) -> Principal:
    principal = authenticate(session=session, authorization=authorization)
    if not principal.is_admin:
        raise AdminOnly(f"此操作仅限依法治县办的管理密钥;{principal.name}的密钥无权执行 / admin key required")
    return principal


async def require_reader(
    session: SessionDep, settings: SettingsDep, authorization: AuthorizationHeader
) -> Principal | None:
    """Reads are open unless REQUIRE_KEY_FOR_READS is set. (async: open reads cost no threadpool hop.)"""
    if not settings.require_key_for_reads:
        return None
    return await run_in_threadpool(authenticate, session=session, authorization=authorization)


async def reading_key(session: SessionDep, authorization: AuthorizationHeader) -> Principal | None:
    """The key an open read is made with, if any (a bad key is a 401, as anywhere). Key metadata
    (prefixes, admin key names) is shown to admins and to a key about itself only: a prefix names a
    key to attack."""
    if not authorization:
        return None
    return await run_in_threadpool(authenticate, session=session, authorization=authorization)


ReadingKeyDep = Annotated[Principal | None, Depends(reading_key)]


async def admin_reading(reader: ReadingKeyDep) -> bool:
    return reader is not None and reader.is_admin


AdminReadingDep = Annotated[bool, Depends(admin_reading)]
WriterDep = Annotated[Principal, Depends(require_writer)]
AdminDep = Annotated[Principal, Depends(require_admin)]
