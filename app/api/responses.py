"""Rendering GET responses: JSON with an ETag (304 on If-None-Match), or CSV for spreadsheets.

The ETag is a hash of the body itself, so it is right whatever changed the data (an import, a report,
an admin edit) and needs no version bookkeeping on the write path.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterable, Sequence
from typing import Any

from fastapi import Request, Response
from pydantic import BaseModel

# Data changes only when a report or import arrives: caches may keep it but must revalidate each time.
CACHE_CONTROL = "no-cache"


def etag_of(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


def _not_modified(request: Request, etag: str) -> bool:
    header = request.headers.get("if-none-match")
    if not header:
        return False
    candidates = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    return etag in candidates or "*" in candidates


def cached_body(request: Request, body: bytes, media_type: str) -> Response:
    etag = etag_of(body)
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL, "Vary": "Accept, Accept-Encoding"}
    if _not_modified(request, etag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=media_type, headers=headers)


def json_response(request: Request, model: BaseModel, *, include: Any = None, exclude: Any = None) -> Response:
    body = model.model_dump_json(include=include, exclude=exclude).encode()
    return cached_body(request, body, "application/json")


def csv_response(request: Request, header: Sequence[str], rows: Iterable[Sequence[Any]], *, filename: str) -> Response:
    buffer = io.StringIO()
    buffer.write("\ufeff")  # BOM: Excel opens UTF-8 Chinese correctly only with it
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    response = cached_body(request, buffer.getvalue().encode("utf-8"), "text/csv; charset=utf-8")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def wants_csv(request: Request, format_param: str | None) -> bool:
    if format_param is not None:
        return format_param == "csv"
    accept = request.headers.get("accept", "")
    return "text/csv" in accept and "application/json" not in accept
