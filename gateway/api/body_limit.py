"""ASGI middleware: refuse a request body over the limit with 413, counting bytes as they arrive.

A declared Content-Length over the limit is refused before any of the body is read; a body that
streams past the limit (chunked, or a Content-Length that lies) is cut off at the first chunk that
crosses it, so at most the limit plus one chunk is ever held, whatever the body's size.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.api.problems import body_too_large, problem_response


class _TooLarge(Exception):
    """Raised into the application when the body crosses the limit; never leaves this middleware."""


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int, larger: dict[str, int] | None = None) -> None:
        self.app = app
        self.default_max = max_bytes
        self.larger = larger or {}  # path prefix -> its own limit (file uploads, streamed to disk)

    def _limit(self, scope: Scope) -> int:
        path = scope.get("path", "")
        return next((n for prefix, n in self.larger.items() if path.startswith(prefix)), self.default_max)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem_response(Request(scope), body_too_large(self._limit(scope)))
        response.headers["Connection"] = "close"
        await response(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes = self._limit(scope)
        for name, value in scope["headers"]:
            if name == b"content-length" and (not value.isdigit() or int(value) > max_bytes):
                await self._refuse(scope, receive, send)
                return
        received = 0
        crossed = False
        started = False

        async def counting_receive() -> Message:
            nonlocal received, crossed
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    crossed = True
                    raise _TooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if crossed:
                return  # whatever the application made of the cut-off body, the answer is 413
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not crossed:
                raise
        if crossed and not started:
            await self._refuse(scope, receive, send)
