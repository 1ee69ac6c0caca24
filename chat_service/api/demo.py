"""The demo page at / : chat with the real model in a browser (the full widget comes later)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from chat_service.deps import ServicesDep

router = APIRouter(include_in_schema=False)
_PAGE = (Path(__file__).parent.parent / "static" / "demo.html").read_text()


@router.get("/", response_class=HTMLResponse)
async def demo_page(services: ServicesDep) -> HTMLResponse:
    return HTMLResponse(_PAGE.replace("{{TENANT}}", services.settings.demo_tenant))
