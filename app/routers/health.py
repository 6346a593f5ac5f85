"""Liveness and readiness probes for load balancers and orchestrators."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from app.api.deps import SessionDep
from app.migrate import is_at_head

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """进程存活 / The process is up."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "数据库不可达或迁移未到最新 / not ready"}})
def readyz(session: SessionDep) -> JSONResponse:
    """数据库可达且迁移已到最新 / Database reachable and migrated to head."""
    try:
        connection = session.connection()
        connection.execute(text("SELECT 1"))
        migrated = is_at_head(connection)
    except SQLAlchemyError as exc:
        return JSONResponse({"status": "unavailable", "database": type(exc).__name__}, status_code=503)
    if not migrated:
        return JSONResponse({"status": "unavailable", "migrations": "behind head"}, status_code=503)
    return JSONResponse({"status": "ok"})
