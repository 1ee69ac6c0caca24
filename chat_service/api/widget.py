"""The embeddable widget script and the demo page at / that embeds it.

Site owners add ``<script src="https://HOST/widget.js" data-tenant="acme"></script>``; the script
needs no build step and talks to the WebSocket on the host it was loaded from.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Response
from fastapi.responses import HTMLResponse

from chat_service.deps import ServicesDep

router = APIRouter(include_in_schema=False)
_STATIC = Path(__file__).parent.parent / "static"
_WIDGET = (_STATIC / "widget.js").read_text()
_DEMO = (_STATIC / "demo.html").read_text()


@router.get("/widget.js")
def widget_script() -> Response:
    return Response(
        _WIDGET,
        media_type="text/javascript",
        headers={"Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff"},
    )


@router.get("/", response_class=HTMLResponse)
def demo_page(services: ServicesDep) -> HTMLResponse:
    return HTMLResponse(_DEMO.replace("{{TENANT}}", services.settings.demo_tenant))
