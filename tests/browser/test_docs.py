"""`/docs` works with no network beyond the server: Swagger UI renders every operation."""

from __future__ import annotations

from playwright.async_api import Browser, expect

from tests.browser.conftest import Screenshot, new_context, server_only


async def test_docs_render_every_operation_with_only_the_server_reachable(
    base_url: str, browser: Browser, screenshot: Screenshot
) -> None:
    context = await new_context(browser)
    blocked = await server_only(context)
    page = await context.new_page()
    async with page.expect_response(lambda r: r.url.endswith("/openapi.json")) as document:
        await page.goto(f"{base_url}/docs")
    operations = (await (await document.value).json())["paths"]
    expected = sum(len(methods) for methods in operations.values())
    await expect(page.locator(".opblock")).to_have_count(expected)
    login = page.locator(".opblock-summary-path", has_text="/api/v1/auth/login")
    await expect(login).to_be_visible()
    await screenshot(page, "docs")
    assert blocked == []
    await context.close()
