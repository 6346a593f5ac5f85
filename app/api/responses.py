"""Rendering GET responses: JSON with an ETag (304 on If-None-Match), or CSV for spreadsheets.

The ETag is a hash of the body itself, so it is right whatever changed the data (an import, a report,
an admin edit) and needs no version bookkeeping on the write path.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any
from urllib.parse import quote

from fastapi import Request, Response
from pydantic import BaseModel

from app.core.etag import etag_matches, etag_of
from app.services import sheets

# Data changes only when a report or import arrives: caches may keep it but must revalidate each time.
CACHE_CONTROL = "no-cache"
JSON = "application/json"
CSV = "text/csv; charset=utf-8"
GZIP_MIN_BYTES = 1024


@dataclass
class Rendered:
    """A response body ready to send, and to keep in the read cache: its ETag and its gzip form are
    computed once, however often it is sent."""

    body: bytes
    media_type: str = JSON
    headers: tuple[tuple[str, str], ...] = ()

    @cached_property
    def etag(self) -> str:
        return etag_of(self.body)

    @cached_property
    def gzipped(self) -> bytes:
        return gzip.compress(self.body, compresslevel=6)


def send(request: Request, rendered: Rendered) -> Response:
    return respond(rendered, request.headers)


def respond(rendered: Rendered, headers_in: Mapping[str, str]) -> Response:
    """The response for one request's headers: the cache's fast path (`read_cache.CachedReads`) and the
    routes both answer through here, so a cached answer is byte for byte the one the route gives."""
    compress = len(rendered.body) >= GZIP_MIN_BYTES and "gzip" in headers_in.get("accept-encoding", "")
    # The gzip representation is another entity, so it gets its own (related) ETag.
    etag = rendered.etag[:-1] + '-gzip"' if compress else rendered.etag
    # GZipMiddleware adds "Accept-Encoding" to Vary on the identity responses it inspects itself.
    vary = "Accept, Accept-Encoding" if compress else "Accept"
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL, "Vary": vary}
    if etag_matches(headers_in.get("if-none-match"), rendered.etag):
        return Response(status_code=304, headers=headers)
    headers.update(dict(rendered.headers))
    if compress:
        headers["Content-Encoding"] = "gzip"
        return Response(rendered.gzipped, media_type=rendered.media_type, headers=headers)
    return Response(rendered.body, media_type=rendered.media_type, headers=headers)


def render_json(model: BaseModel, *, include: Any = None, exclude: Any = None) -> Rendered:
    return Rendered(model.model_dump_json(include=include, exclude=exclude).encode())


def json_response(request: Request, model: BaseModel, *, include: Any = None, exclude: Any = None) -> Response:
    return send(request, render_json(model, include=include, exclude=exclude))


def render_csv(
    header: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    filename: str,
    headers: Sequence[tuple[str, str]] = (),
) -> Rendered:
    """A CSV download (cells a spreadsheet would run are neutralised: `sheets.csv_bytes`)."""
    return Rendered(sheets.csv_bytes(header, rows), CSV, (attachment(filename), *headers))


def attachment(filename: str) -> tuple[str, str]:
    """Content-Disposition of a download: an ASCII fallback name and the real (Chinese) one, RFC 6266."""
    fallback = filename.encode("ascii", "replace").decode().replace("?", "_").replace('"', "_")
    return ("Content-Disposition", f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename)}")


def wants_csv(request: Request, format_param: str | None) -> bool:
    if format_param is not None:
        return format_param == "csv"
    accept = request.headers.get("accept", "")
    return "text/csv" in accept and "application/json" not in accept
