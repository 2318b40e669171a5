"""Static checks of the browser client in iaf/web (served at `/` by the API).

No browser runs here: these read the files and check that the client speaks the HTTP contract
of DESIGN.md, streams with fetch() so that it can authenticate, loads nothing from outside
the machine and never hands server text to the HTML parser.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

WEB = Path(__file__).resolve().parents[2] / "api" / "web"
INDEX = WEB / "index.html"
APP = WEB / "app.js"
STYLE = WEB / "style.css"

SSE_EVENTS = (
    "message.new",
    "message.edit",
    "message.delete",
    "agent.start",
    "agent.delta",
    "agent.reset",
    "agent.done",
    "agent.error",
    "typing",
)


@pytest.fixture(scope="module")
def html() -> str:
    assert INDEX.is_file(), f"{INDEX} is missing"
    return INDEX.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def js() -> str:
    assert APP.is_file(), f"{APP} is missing"
    return APP.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def css() -> str:
    assert STYLE.is_file(), f"{STYLE} is missing"
    return STYLE.read_text(encoding="utf-8")


def without_comments(source: str) -> str:
    """JavaScript/CSS without /* */ and // comments (good enough for these checks)."""
    source = re.sub(r"/\*.*?\*/", "", source, flags=re.S)
    return re.sub(r"(?m)(^|[^:\"'`\\])//.*$", r"\1", source)


def test_index_loads_the_local_script_and_stylesheet(html: str) -> None:
    assert re.search(r"<!doctype html>", html, re.I)
    scripts = re.findall(r"<script\b[^>]*\bsrc=\"([^\"]+)\"", html)
    styles = re.findall(r"<link\b[^>]*\brel=\"stylesheet\"[^>]*\bhref=\"([^\"]+)\"", html)
    assert scripts == ["app.js"], scripts
    assert styles == ["style.css"], styles
    for name in scripts + styles:
        assert (WEB / name).is_file(), f"index.html references missing {name}"


def test_index_has_the_views_the_script_drives(html: str, js: str) -> None:
    ids_used = set(re.findall(r"\$\(\"([\w-]+)\"\)", js))
    ids_defined = set(re.findall(r"\bid=\"([\w-]+)\"", html))
    assert ids_used, "app.js looks up no element by id"
    missing = sorted(ids_used - ids_defined)
    assert not missing, f"app.js uses ids that index.html lacks: {missing}"
    for needed in ("auth-form", "room-list", "message-items", "composer-input", "typing"):
        assert needed in ids_defined


def test_no_inline_script_and_a_strict_content_security_policy(html: str) -> None:
    assert not re.search(r"<script\b(?![^>]*\bsrc=)[^>]*>", html), "inline <script> found"
    assert not re.search(r"\son[a-z]+\s*=", html, re.I), "inline event handler found"
    csp = re.search(r"http-equiv=\"Content-Security-Policy\"\s+content=\"([^\"]+)\"", html)
    assert csp, "no Content-Security-Policy"
    policy = csp.group(1)
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy


@pytest.mark.parametrize("path", [INDEX, APP, STYLE], ids=lambda p: p.name)
def test_no_external_urls(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    external = re.findall(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}[^\s\"'`)]*", text, re.I)
    assert not external, f"{path.name} loads from outside the machine: {external}"
    assert not re.search(r"@import\s", text), f"{path.name} imports a stylesheet"


def test_no_html_parsing_of_data(js: str) -> None:
    code = without_comments(js)
    sinks = re.findall(
        r"\.(?:innerHTML|outerHTML)\s*\+?=|insertAdjacentHTML|document\.write|"
        r"createContextualFragment|DOMParser|\beval\s*\(|new Function\s*\(",
        code,
    )
    assert not sinks, f"app.js parses strings as HTML or code: {sinks}"
    assert "textContent" in code and "createTextNode" in code


@pytest.mark.parametrize(
    "endpoint",
    [
        "/api/auth/login",
        "/api/auth/signup",
        "/api/me",
        "/api/chat/rooms",
        "/api/agents?q=",
    ],
)
def test_references_endpoint(js: str, endpoint: str) -> None:
    assert endpoint in js, f"app.js never calls {endpoint}"


@pytest.mark.parametrize("suffix", ["/messages", "/events", "/typing"])
def test_references_room_endpoint(js: str, suffix: str) -> None:
    pattern = r"/api/chat/rooms/\$\{[^}]+\}" + re.escape(suffix)
    assert re.search(pattern, js), f"app.js never calls /api/chat/rooms/{{id}}{suffix}"


def test_auth_token_kept_in_session_storage(js: str) -> None:
    assert "access_token" in js
    assert re.search(r"sessionStorage\.setItem\(\s*TOKEN_KEY", js)
    assert "localStorage" not in js, "tokens must not outlive the browser session"
    assert re.search(r"Authorization:\s*`Bearer \$\{", js)


def test_room_creation_and_message_payloads(js: str) -> None:
    assert re.search(r"\{\s*name,\s*kind:\s*\"group\"\s*\}", js)
    assert "client_msg_id" in js and "crypto.randomUUID()" in js
    assert re.search(r"limit:\s*String\(PAGE_SIZE\)", js) and "PAGE_SIZE = 50" in js
    assert "next_before" in js


def test_stream_uses_fetch_with_authorization_not_eventsource(js: str) -> None:
    code = without_comments(js)
    assert "EventSource(" not in code, "EventSource cannot send the Authorization header"
    call = re.search(
        r"fetch\(`/api/chat/rooms/\$\{[^}]+\}/events`,\s*\{(?P<opts>.*?)\}\);", code, re.S
    )
    assert call, "the event stream is not opened with fetch()"
    assert re.search(r"\bheaders\b", call.group("opts"))
    block = code[max(0, call.start() - 800) : call.start()]
    assert "authHeaders()" in block or "Authorization" in block
    assert '"Last-Event-ID"' in block, "reconnects must resend the last event id"
    assert "getReader()" in code and "TextDecoder" in code


def test_stream_parser_follows_the_sse_format(js: str) -> None:
    code = without_comments(js)
    assert re.search(r"/\\r\\n\|\\r\|\\n/", code), "lines may end in CRLF, CR or LF"
    for field in ('"event"', '"data"', '"id"', '"retry"'):
        assert field in code, f"the parser ignores the {field} field"
    assert 'startsWith(":")' in code, "comment (heartbeat) lines must be skipped"


@pytest.mark.parametrize("event", SSE_EVENTS)
def test_handles_event(js: str, event: str) -> None:
    assert re.search(rf"case \"{re.escape(event)}\":", js), f"no handler for {event}"


def test_streamed_reply_fields(js: str) -> None:
    for field in ("reply_id", "agent_id", "seq", "message_id"):
        assert re.search(rf"\bdata\.{field}\b", js), f"agent events' {field} is not used"


def test_message_fields_rendered(js: str) -> None:
    for field in ("sender_name", "sender_agent_id", "sender_user_id", "content", "created_at"):
        assert f"message.{field}" in js
    assert "deleted_at" in js and "edited_at" in js and "reply_to_id" in js


def test_stylesheet_is_not_empty(css: str) -> None:
    assert len(css) > 1000
    assert ".msg" in css and ".composer" in css and "prefers-color-scheme" in css
