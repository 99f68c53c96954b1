"""`/` serves the web client: the page and its files, with a strict CSP, never in the way
of the API's own routes."""

from __future__ import annotations

import re

import httpx

from gochat_py.rest.webclient import ASSETS_PATH

_ASSET = re.compile(r'(?:src|href)="(/[^"]+)"')
_IMPORT = re.compile(r'from "(\.{1,2}/[^"]+)"')
SVG_NAMESPACE = "http://www.w3.org/2000/svg"  # a name, never fetched


async def test_page_is_served_at_the_root_with_security_headers(api: httpx.AsyncClient) -> None:
    response = await api.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert '<script type="module" src="/client/js/main.js">' in response.text
    assert not re.search(r"(https?:)?//[a-z0-9]", response.text, re.IGNORECASE), "an external host"


async def test_every_file_the_page_and_its_modules_load_is_served(api: httpx.AsyncClient) -> None:
    page = (await api.get("/")).text
    pending = list(_ASSET.findall(page))
    seen: set[str] = set()
    while pending:
        path = pending.pop()
        if path in seen:
            continue
        seen.add(path)
        assert path.startswith(f"{ASSETS_PATH}/"), path
        response = await api.get(path)
        assert response.status_code == 200, path
        assert response.headers["x-content-type-options"] == "nosniff", path
        if path.endswith(".js"):
            assert "javascript" in response.headers["content-type"], path
            code = response.text.replace(SVG_NAMESPACE, "")
            assert "http://" not in code and "https://" not in code, path
            folder = path.rsplit("/", 1)[0]
            for relative in _IMPORT.findall(response.text):
                pending.append(str(httpx.URL(f"http://x{folder}/").join(relative).path))
    assert {p.rsplit(".", 1)[-1] for p in seen} == {"css", "js", "svg"}
    assert f"{ASSETS_PATH}/js/views/chat.js" in seen


async def test_the_client_does_not_shadow_the_api(api: httpx.AsyncClient) -> None:
    missing = await api.get("/api/v1/nothing-here")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    assert (await api.get("/openapi.json")).headers["content-type"] == "application/json"
    assert (await api.get("/docs")).status_code == 200
    assert (await api.get(f"{ASSETS_PATH}/js/nope.js")).status_code == 404
