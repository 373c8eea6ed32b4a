"""Dependencies shared by the officer API and the officer pages."""

from __future__ import annotations

import threading
from typing import Annotated

from fastapi import Depends, Request

from gateway.container import Container
from gateway.web.render import Renderer
from gateway.web.service import OfficerService
from gateway.web.signin import OFFICER_PAGES, PageSignIn

_lock = threading.Lock()


class OfficerParts:
    """The officer service, the pages' sign-in and the page renderer of one application."""

    def __init__(self, container: Container) -> None:
        self.service = OfficerService(container)
        self.signin = PageSignIn(container, OFFICER_PAGES, self.service.sign_in)
        self.renderer = Renderer(container.settings.officer_timezone)
        self.container = container


def get_parts(request: Request) -> OfficerParts:
    """Return the app's officer parts, made on first use (keys are read once)."""
    parts: OfficerParts | None = getattr(request.app.state, "officer_parts", None)
    if parts is None:
        with _lock:
            parts = getattr(request.app.state, "officer_parts", None)
            if parts is None:
                parts = OfficerParts(request.app.state.container)
                request.app.state.officer_parts = parts
    return parts


def get_officer(request: Request) -> OfficerService:
    return get_parts(request).service


PartsDep = Annotated[OfficerParts, Depends(get_parts)]
OfficerDep = Annotated[OfficerService, Depends(get_officer)]
