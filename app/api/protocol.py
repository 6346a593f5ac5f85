"""HTTP details every response gets, whatever route serves it: HEAD wherever GET is served, the
security headers a JSON API sends (a browser must never sniff, frame or render our data as a page),
and limits on the request line and headers answered as problem+json.

Limits: the server (uvicorn with httptools) itself refuses a request target over 64 KiB or a request
that is not HTTP at all with a plain-text 400 before any application code runs; that answer cannot be
made problem+json here. Below it, this middleware refuses a query string over MAX_QUERY_BYTES (414)
and headers over MAX_HEADER_BYTES in total (431), as problems, so integrators meet the plain-text
answer only with requests no client library builds.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
)
# Data responses are never documents: no scripts, no frames. /docs and /redoc are HTML with their
# own scripts and styles, so they keep the headers above but not this policy.
DATA_CSP = (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'")
_DATA_TYPES = (b"application/json", b"application/problem+json", b"text/csv")


MAX_QUERY_BYTES = 8 * 1024  # the longest documented query (a task list with every filter) is far shorter
MAX_HEADER_BYTES = 16 * 1024


def _problem(scope: Scope, status: int, code: str, title: str, detail: str) -> tuple[Message, Message]:
    body = json.dumps(
        {"type": f"/problems/{code}", "code": code, "title": title, "status": status, "detail": detail}
        | {"instance": scope.get("path")},
        ensure_ascii=False,
    ).encode()
    headers = [(b"content-type", b"application/problem+json"), (b"content-length", str(len(body)).encode())]
    return (
        {"type": "http.response.start", "status": status, "headers": headers},
        {"type": "http.response.body", "body": body},
    )


def _over_limits(scope: Scope) -> tuple[Message, Message] | None:
    if len(scope.get("query_string", b"")) > MAX_QUERY_BYTES:
        return _problem(
            scope,
            414,
            "uri-too-long",
            "URI Too Long",
            f"查询字符串超过 {MAX_QUERY_BYTES} 字节上限 / query string over {MAX_QUERY_BYTES} bytes",
        )
    if sum(len(name) + len(value) + 4 for name, value in scope.get("headers", [])) > MAX_HEADER_BYTES:
        return _problem(
            scope,
            431,
            "headers-too-large",
            "Request Header Fields Too Large",
            f"请求头合计超过 {MAX_HEADER_BYTES} 字节上限 / request headers over {MAX_HEADER_BYTES} bytes",
        )
    return None


class ProtocolMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        head = scope["method"] == "HEAD"
        refused = _over_limits(scope)
        if head:
            # Served as the GET it mirrors (same status, headers, ETag and length), minus the body.
            scope = {**scope, "method": "GET"}

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if message["status"] == 405:
                    # Starlette lists only the methods of the first route that matched the path; a
                    # path served by several routes (GET and POST /admin/keys) allows all of theirs.
                    allow = ", ".join(allowed_methods(scope.get("app"), scope["path"]))
                    headers = [(n, v) for n, v in headers if n.lower() != b"allow"] + [(b"allow", allow.encode())]
                names = {name.lower() for name, _ in headers}
                headers += [h for h in SECURITY_HEADERS if h[0] not in names]
                content_type = next((v for n, v in headers if n.lower() == b"content-type"), b"")
                if content_type.startswith(_DATA_TYPES) and DATA_CSP[0] not in names:
                    headers.append(DATA_CSP)
                message = {**message, "headers": headers}
            elif head and message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        if refused is not None:
            for message in refused:
                await send_with_headers(message)
            return
        await self.app(scope, receive, send_with_headers)


def allowed_methods(app: Any, path: str) -> list[str]:
    """Every method some route serves at `path` (HEAD wherever GET is served)."""
    from fastapi.routing import iter_route_contexts

    methods: set[str] = set()
    for context in iter_route_contexts(getattr(app, "routes", [])):
        regex = getattr(context, "path_regex", None)
        if regex is not None and regex.match(path) and context.methods:
            methods |= set(context.methods)
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)
