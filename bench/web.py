"""Web client benchmark: what a person waits for in the browser (Debian's Chromium).

1. Start-up: `iaf dev` (what `make run` runs) on a fresh data dir and free ports; from the
   moment its banner prints the web client's URL to the first paint of the sign-in view in a
   browser already open (the tab navigates as soon as the banner shows). Then warm reloads of
   `/` to the sign-in view's paint, each beside the baseline: the same sign-in markup served
   as a static page (no scripts) from the same origin, so the ratio is what the client's
   modules cost before the first useful paint.
2. Send to render: two browser contexts in one room; from the Enter key in one to the message
   painted in the other (both times taken in the pages, on the machine's one clock). The
   baseline, interleaved sample by sample: the same POST made by a script, to the
   `message.new` event read by a script's SSE client, so the ratio is the browser's share.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Browser, Page, async_playwright, expect

from bench.stack import free_port
from bench.stats import summary_ms, write_results

ROOT = Path(__file__).resolve().parent.parent
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
RELOADS = 15
SENDS = 30
PASSWORD = "correct horse battery"

# Records, in page time, when the sign-in view (or a message with a given text) is painted:
# the frame after the DOM change is the one that shows it.
PAINT_PROBE = """
window.__paint = {};
window.__markPaint = (name) => requestAnimationFrame(() =>
  setTimeout(() => { window.__paint[name] = performance.timeOrigin + performance.now(); }, 0));
new MutationObserver(() => {
  const auth = document.getElementById("auth-view");
  if (auth && !auth.hidden && !window.__paint.signin) window.__markPaint("signin");
  const wanted = window.__expect;
  if (wanted && !window.__paint[wanted]) {
    for (const el of document.querySelectorAll("#message-items .msg:not(.pending) .content")) {
      if (el.textContent.includes(wanted)) { window.__markPaint(wanted); break; }
    }
  }
}).observe(document, { subtree: true, childList: true, attributes: true });
document.addEventListener("keydown", (event) => {
  if (event.key === "Enter") window.__sentAt = performance.timeOrigin + performance.now();
}, true);
"""


@contextlib.asynccontextmanager
async def make_run(data_dir: Path) -> AsyncIterator[tuple[str, float, subprocess.Popen[str]]]:
    """`iaf dev` as `make run` starts it; yields its URL and when the banner printed it."""
    api_port = free_port()
    env = {
        **os.environ,
        "DATA_DIR": str(data_dir),
        "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/iaf",
        "TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
        "TEMPORAL_UI_PORT": str(free_port()),
        "SMTP_PORT": str(free_port()),
        "API_PORT": str(api_port),
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{api_port}",
        "COLUMNS": "200",
    }
    process = subprocess.Popen(  # noqa: ASYNC220 (returns at once; the pipe is read in an executor)
        [sys.executable, "-m", "iaf.cli", "dev"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    url, banner_at = "", 0.0
    loop = asyncio.get_running_loop()
    while not url:
        line = await loop.run_in_executor(None, process.stdout.readline)
        if not line:
            raise RuntimeError(f"iaf dev exited with {process.wait()}")
        found = re.search(r"Web client\s+(http://\S+)", line)
        if found:
            url, banner_at = found.group(1), time.time() * 1000
    try:
        yield url, banner_at, process
    finally:
        process.send_signal(2)  # Ctrl-C, as a person stops it
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()


WAIT_FOR_PAINT = """(name) => new Promise((resolve) => {
  const look = () => (window.__paint && window.__paint[name] ? resolve(window.__paint[name])
                                                               : setTimeout(look, 5));
  look();
})"""


async def painted(page: Page, name: str) -> float:
    """When the probe saw `name` painted (page time, ms since the epoch). A function, not a
    string: the client's CSP refuses string evaluation, as it should."""
    return float(await page.evaluate(WAIT_FOR_PAINT, name))


async def signin_paint(page: Page) -> float:
    """Milliseconds from navigation start to the sign-in view's paint."""
    at = await painted(page, "signin")
    return at - float(await page.evaluate("() => performance.timeOrigin"))


async def static_paint(page: Page, url: str, markup: str) -> float:
    """The baseline: the same sign-in markup as a static page, first contentful paint."""
    await page.route(
        f"{url}bench-static", lambda route: route.fulfill(body=markup, content_type="text/html")
    )
    await page.goto(f"{url}bench-static")
    return float(
        await page.evaluate(
            """() => new Promise((resolve) => {
              const look = () => {
                const [entry] = performance.getEntriesByName("first-contentful-paint");
                return entry ? resolve(entry.startTime) : setTimeout(look, 5);
              };
              look();
            })"""
        )
    )


def static_markup(index_html: str) -> str:
    """index.html without scripts, the sign-in view shown, the stylesheet kept."""
    without_scripts = re.sub(r"<script\b[^>]*>.*?</script>", "", index_html, flags=re.S)
    return without_scripts.replace(
        '<main id="auth-view" class="auth" hidden>', '<main id="auth-view" class="auth">'
    )


async def startup(browser: Browser) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="iaf-bench-web-") as data:
        context = await browser.new_context()
        await context.add_init_script(PAINT_PROBE)
        page = await context.new_page()
        async with make_run(Path(data)) as (url, banner_at, _process):
            await page.goto(url)
            first = await signin_paint(page)
            origin = float(await page.evaluate("() => performance.timeOrigin"))
            cold_ms = origin + first - banner_at
            markup = static_markup((ROOT / "api" / "web" / "index.html").read_text())
            warm, baseline = [], []
            for _ in range(RELOADS):
                await page.goto(url)
                warm.append(await signin_paint(page) / 1000)
                baseline.append(await static_paint(page, url, markup) / 1000)
            result = {"banner_to_signin_paint_ms": round(cold_ms, 1)}
            result["reload_to_signin_paint"] = summary_ms(warm)
            result["static_page_first_paint_baseline"] = summary_ms(baseline)
            live = await send_to_render(browser, url)
        await context.close()
    return {"startup": result, "send_to_render": live}


async def person(
    http: httpx.AsyncClient, name: str, admin: dict[str, Any] | None = None
) -> dict[str, Any]:
    email = f"{name.lower()}-{time.time_ns()}@example.com"
    if admin is None:
        body = {"email": email, "password": PASSWORD, "name": name}
        return dict((await http.post("/api/auth/signup", json=body)).json())
    headers = {"Authorization": f"Bearer {admin['access_token']}"}
    body = {"email": email, "password": PASSWORD, "name": name}
    await http.post("/api/org/users", json=body, headers=headers)
    login = await http.post("/api/auth/login", json={"email": email, "password": PASSWORD})
    return dict(login.json())


async def signed_in_page(browser: Browser, url: str, who: dict[str, Any], room_id: str) -> Page:
    context = await browser.new_context()
    await context.add_init_script(PAINT_PROBE)
    token, user = json.dumps(who["access_token"]), json.dumps(json.dumps(who["user"]))
    await context.add_init_script(
        f"sessionStorage.setItem('iaf.token', {token}); sessionStorage.setItem('iaf.user', {user});"
    )
    page = await context.new_page()
    await page.goto(f"{url}rooms/{room_id}")
    await expect(page.locator("#conn-status")).to_have_attribute("data-state", "live")
    return page


async def script_round_trip(
    http: httpx.AsyncClient, who: dict[str, Any], room_id: str, text: str
) -> float:
    """Baseline: POST, then the message.new event on a script's open SSE stream."""
    headers = {"Authorization": f"Bearer {who['access_token']}"}
    async with http.stream("GET", f"/api/chat/rooms/{room_id}/events", headers=headers) as stream:
        lines = stream.aiter_lines()
        async for line in lines:  # subscribed once our own presence is announced
            if line.startswith("event: presence"):
                break
        started = time.perf_counter()
        await http.post(
            f"/api/chat/rooms/{room_id}/messages", json={"content": text}, headers=headers
        )
        async for line in lines:
            if line.startswith("data:") and text in line:
                return time.perf_counter() - started
    raise RuntimeError("the stream ended")


async def send_to_render(browser: Browser, url: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        alice = await person(http, "Alice")
        bob = await person(http, "Bob", admin=alice)
        headers = {"Authorization": f"Bearer {alice['access_token']}"}
        room = (
            await http.post(
                "/api/chat/rooms",
                json={"name": "bench", "member_ids": [bob["user"]["id"]]},
                headers=headers,
            )
        ).json()
        sender = await signed_in_page(browser, url, alice, room["id"])
        receiver = await signed_in_page(browser, url, bob, room["id"])
        browser_s, script_s = [], []
        for index in range(SENDS):
            text = f"bench message {index} {time.time_ns()}"
            await receiver.evaluate("(text) => { window.__expect = text; }", text)
            box = sender.locator("#composer-input")
            await box.fill(text)
            await box.press("Enter")
            shown = await painted(receiver, text)
            sent = float(await sender.evaluate("() => window.__sentAt"))
            browser_s.append((shown - sent) / 1000)
            script_s.append(await script_round_trip(http, alice, room["id"], f"script {text}"))
        await sender.context.close()
        await receiver.context.close()
    return {
        "browser_send_to_paint": summary_ms(browser_s),
        "script_post_to_sse_baseline": summary_ms(script_s),
    }


async def run() -> dict[str, Any]:
    async with async_playwright() as driver:
        browser = await driver.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_FLAGS
        )
        try:
            return await startup(browser)
        finally:
            await browser.close()


def main() -> None:
    results = asyncio.run(run())
    start, live = results["startup"], results["send_to_render"]
    warm, static = start["reload_to_signin_paint"], start["static_page_first_paint_baseline"]
    sent, script = live["browser_send_to_paint"], live["script_post_to_sse_baseline"]
    results["ratios"] = {
        "reload_paint_vs_static": round(warm["p50_ms"] / static["p50_ms"], 2),
        "browser_send_vs_script": round(sent["p50_ms"] / script["p50_ms"], 2),
    }
    path = write_results("web", results)
    print(f"| banner → sign-in paint (cold, once) | {start['banner_to_signin_paint_ms']} ms |")
    print(f"| reload → sign-in paint p50/p99 | {warm['p50_ms']} / {warm['p99_ms']} ms |")
    print(
        f"| static page first paint p50/p99 (baseline) | {static['p50_ms']} / {static['p99_ms']} ms |"
    )
    print(
        f"| Send → painted in the other browser p50/p99 | {sent['p50_ms']} / {sent['p99_ms']} ms |"
    )
    print(f"| script POST → SSE p50/p99 (baseline) | {script['p50_ms']} / {script['p99_ms']} ms |")
    print(f"ratios {results['ratios']}; written to {path}")


if __name__ == "__main__":
    main()
