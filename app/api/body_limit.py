"""Refuses request bodies over the configured size with 413, before the app reads them into memory.

FastAPI's own `max_body_size` (Starlette's RequestBodyLimitMiddleware) answers a declared oversize
body with a plain-text 413; integrators get problem+json everywhere, so this one renders the problem.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, send)
            return

        received = 0
        response_started = False
        refused = False

        async def counting_receive() -> Message:
            # A chunked body declares no length: count it as it arrives. Past the limit, answer 413
            # ourselves and tell the app the client is gone, so it stops reading and writes nothing.
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    refused = True
                    if not response_started:
                        await self._refuse(scope, send)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            if refused:
                return  # the 413 has been sent; whatever the app answers to the "disconnect" is dropped
            response_started = response_started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not refused:
                raise

    async def _refuse(self, scope: Scope, send: Send) -> None:
        body = json.dumps(
            {
                "type": "/problems/body-too-large",
                "code": "body-too-large",
                "title": "Content Too Large",
                "status": 413,
                "detail": f"请求体超过 {self.max_bytes} 字节上限;批量报送请分批提交 / request body over {self.max_bytes} bytes",
                "instance": scope.get("path"),
            },
            ensure_ascii=False,
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/problem+json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
