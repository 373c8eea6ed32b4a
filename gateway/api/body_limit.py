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
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem_response(Request(scope), body_too_large(self.max_bytes))
        response.headers["Connection"] = "close"
        await response(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and (not value.isdigit() or int(value) > self.max_bytes):
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
                if received > self.max_bytes:
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
