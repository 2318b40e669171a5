"""The browser suite: Debian's Chromium driven by Playwright against the real stack.

Every page a test opens is watched: a console error, an uncaught exception, a request that
fails (other than a live stream the client itself closes), a 5xx answer, a 4xx for anything
that is not an API call, or a Content-Security-Policy violation fails the test.
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import re
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Playwright,
    Request,
    Response,
    async_playwright,
    expect,
)

from iaf.devstack.smtp_sink import start_smtp_sink
from iaf.settings import Settings
from tests.helpers import Person, signup

CHROMIUM = os.environ.get("IAF_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "correct horse battery"
AXE = Path(__file__).resolve().parent / "vendor" / "axe.min.js"

# The machine is shared and slow: assertions wait for their condition up to this long.
expect.set_options(timeout=20_000)

# Recorded before any page script runs, so even a violation during start-up is seen.
WATCH_SCRIPT = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(`${event.violatedDirective} ${event.blockedURI}`);
});
"""


@dataclass
class Watch:
    """What went wrong on one page, gathered from Playwright's events."""

    problems: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    closing: bool = False

    def console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        url = message.location.get("url", "")
        # Chromium logs every 4xx/5xx answer as "Failed to load resource"; `response` below
        # judges those (an API's 4xx is a refusal the journey may be testing).
        if message.text.startswith("Failed to load resource: the server responded"):
            return
        self.problems.append(f"console error: {message.text} ({url})")

    def page_error(self, error: Exception) -> None:
        self.problems.append(f"page error: {error}")

    def request_failed(self, request: Request) -> None:
        failure = request.failure or ""
        # A read cancelled by the page itself (a live stream closed when the room changes, a
        # page load cut short by a reload), or a best-effort notice (read marker, typing) cut
        # short by leaving the page, is not a failure; any other failed request is.
        best_effort = request.url.endswith(("/read", "/typing"))
        if "ERR_ABORTED" in failure and (self.closing or request.method == "GET" or best_effort):
            return
        self.problems.append(f"request failed: {request.method} {request.url} {failure}")

    def response(self, response: Response) -> None:
        path = response.url.split("://", 1)[-1].split("/", 1)[-1]
        if response.status >= 500 or (response.status >= 400 and not path.startswith("api/")):
            method = response.request.method
            self.problems.append(f"HTTP {response.status}: {method} {response.url}")

    def attach(self, page: Page) -> None:
        page.on("console", self.console)
        page.on("pageerror", self.page_error)
        page.on("requestfailed", self.request_failed)
        page.on("response", self.response)
        page.on("dialog", self._dialog)

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        self.problems.append(f"a dialog opened: {dialog.type} {dialog.message}")

    async def check(self, page: Page) -> None:
        if not page.is_closed():
            violations = await page.evaluate("window.__cspViolations || []")
            self.problems.extend(f"CSP violation: {v}" for v in violations)
        assert not self.problems, "\n".join(self.problems)


@pytest.fixture(scope="session")
async def playwright() -> AsyncIterator[Playwright]:
    async with async_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
async def browser(playwright: Playwright) -> AsyncIterator[Browser]:
    assert os.access(CHROMIUM, os.X_OK), f"{CHROMIUM} is missing: apt-get install -y chromium"
    launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
    yield launched
    await launched.close()


OpenPage = Callable[..., Awaitable[Page]]
_WATCHES: dict[int, Watch] = {}


async def forgive(page: Page, pattern: str) -> None:
    """Drops the problems a test caused on purpose (e.g. its own refused inline script)."""
    watch = _WATCHES[id(page)]
    watch.problems = [p for p in watch.problems if not re.search(pattern, p)]
    await page.evaluate("window.__cspViolations = []")


@pytest.fixture
async def open_page(browser: Browser, api_url: str) -> AsyncIterator[OpenPage]:
    """Opens pages in fresh contexts (separate people); checks each one at the end."""
    opened: list[tuple[BrowserContext, Page, Watch]] = []

    async def open_(person: Person | None = None, locale: str = "en-GB", path: str = "/") -> Page:
        context = await browser.new_context(
            base_url=api_url, locale=locale, viewport={"width": 1280, "height": 800}
        )
        await context.add_init_script(WATCH_SCRIPT)
        if person is not None:
            await context.add_init_script(sign_in_script(person))
        page = await context.new_page()
        watch = Watch()
        watch.attach(page)
        _WATCHES[id(page)] = watch
        opened.append((context, page, watch))
        await page.goto(path)
        return page

    yield open_
    problems: list[str] = []
    for context, page, watch in opened:
        try:
            await watch.check(page)
        except AssertionError as exc:
            problems.append(str(exc))
        watch.closing = True
        await context.close()
    assert not problems, "\n".join(problems)


def sign_in_script(person: Person) -> str:
    """Puts a session in the tab's storage once, as signing in does (a later sign-out sticks)."""
    token, user = json.dumps(person.token), json.dumps(json.dumps(person.user))
    return (
        "if (!sessionStorage.getItem('iaf.seeded')) {"
        f"sessionStorage.setItem('iaf.token', {token});"
        f"sessionStorage.setItem('iaf.user', {user});"
        "sessionStorage.setItem('iaf.seeded', '1');}"
    )


@pytest.fixture
async def http(api_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as client:
        yield client


@pytest.fixture
async def person(http: httpx.AsyncClient) -> Person:
    return await signup(http, "Alice Martin")


class MailSink:
    """The project's SMTP sink (iaf dev's), writing each mail as a .eml file."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def messages(self) -> list[email.message.EmailMessage]:
        found = []
        for path in sorted(self.directory.glob("*.eml")):
            parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            found.append(parsed)
        return found  # type: ignore[return-value]

    def links_to(self, address: str, pattern: str) -> list[str]:
        links = []
        for message in self.messages():
            if address.lower() not in str(message["To"]).lower():
                continue
            body = message.get_body(preferencelist=("plain",))
            text = body.get_content() if body is not None else ""
            links.extend(re.findall(pattern, text))
        return links


@pytest.fixture(scope="module")
def mail(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailSink]:
    directory = tmp_path_factory.mktemp("mail")
    controller = start_smtp_sink(directory, settings.smtp_port)
    yield MailSink(directory)
    controller.stop()
    shutil.rmtree(directory, ignore_errors=True)


async def axe_violations(page: Page) -> list[str]:
    """Serious and critical axe-core findings on the page as it is now."""
    if not await page.evaluate("typeof window.axe !== 'undefined'"):
        # Evaluated through the driver, which the page's CSP does not govern (a script tag
        # would be refused, as it should be).
        await page.evaluate(AXE.read_text(encoding="utf-8"))
    results = await page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
        ".filter(v => v.impact === 'serious' || v.impact === 'critical')"
        ".map(v => `${v.id}: ${v.help} (${v.nodes.map(n => n.target.join(' ')).join(', ')})`)"
    )
    return list(results)


async def new_person(http: httpx.AsyncClient, name: str) -> Person:
    return await signup(http, name)


async def room_page(open_page: OpenPage, person: Person, room: dict[str, Any], **kw: Any) -> Page:
    """A signed-in page showing `room`, once its live stream is up."""
    page = await open_page(person, path=f"/rooms/{room['id']}", **kw)
    await expect(page.locator("#room-title")).to_have_text(room["name"])
    await expect(page.locator("#conn-status")).to_have_attribute("data-state", "live")
    return page


async def send(page: Page, text: str) -> None:
    box = page.locator("#composer-input")
    await box.fill(text)
    await box.press("Enter")
