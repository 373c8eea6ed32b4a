"""ASGI middleware: continue the caller's W3C trace and put `traceparent` on every response."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.exchange.context import TraceContext


class TraceMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header = None
        for name, value in scope["headers"]:
            if name == b"traceparent":
                header = value.decode("latin-1")
                break
        trace = TraceContext.from_header(header)
        scope.setdefault("state", {})["trace"] = trace
        traceparent = trace.traceparent.encode()

        async def send_with_trace(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"traceparent", traceparent)]
            await send(message)

        await self.app(scope, receive, send_with_trace)
