"""Fetching for the crawler: only allowed hosts (redirects included), robots.txt obeyed, size
and type limits; page text from HTML; page URLs from a sitemap (XML parsed by defusedxml).

Errors are of two kinds. `Skipped` is final for a page (a host or path not allowed, a 4xx, a
type or size we do not take): the crawl records why and goes on. `Unavailable` (a 5xx, a
timeout, a refused connection) is raised so that Temporal retries the activity with backoff.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpx
from bs4 import BeautifulSoup
from defusedxml import ElementTree
from protego import Protego

from iaf.settings import Settings

TEXT_TYPES = ("text/html", "application/xhtml+xml", "text/plain", "text/markdown")
SITEMAP_TYPES = ("application/xml", "text/xml", "text/plain")
MAX_REDIRECTS = 5
_NS = re.compile(r"^\{[^}]*\}")


class Skipped(Exception):
    """This URL is not taken, for a reason that a retry would not change."""


class Unavailable(Exception):
    """The server could not answer now; worth retrying later. `reason` is a status code or an
    exception's class name, never a URL or a page's content."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def host_allowed(url: str, settings: Settings) -> bool:
    """http(s) without credentials, to a host of CRAWL_ALLOWED_HOSTS (`*.example.com` takes
    the subdomains of example.com)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or not host or parts.username or parts.password:
        return False
    for allowed in settings.crawl_allowed_hosts:
        allowed = allowed.lower()
        if host == allowed or (allowed.startswith("*.") and host.endswith(allowed[1:])):
            return True
    return False


@dataclass(frozen=True)
class Fetched:
    url: str  # after redirects
    content_type: str
    body: bytes


def user_agent(settings: Settings) -> str:
    return f"IAFactoryAgentsBot/1.0 (+{settings.public_base_url.rstrip('/')}/legal/terms)"


async def fetch(
    client: httpx.AsyncClient, url: str, settings: Settings, accept: tuple[str, ...]
) -> Fetched:
    """GET within the limits; every redirect must stay on an allowed host."""
    for _ in range(MAX_REDIRECTS + 1):
        if not host_allowed(url, settings):
            raise Skipped("host not allowed")
        try:
            async with client.stream("GET", url, headers={"User-Agent": user_agent(settings)}) as r:
                if r.is_redirect and "location" in r.headers:
                    url = urljoin(url, r.headers["location"])
                    continue
                if r.status_code >= 500 or r.status_code == 429:
                    raise Unavailable(f"HTTP {r.status_code}")
                if r.status_code >= 400:
                    raise Skipped(f"HTTP {r.status_code}")
                content_type = r.headers.get("content-type", "").split(";")[0].strip().lower()
                if content_type not in accept:
                    raise Skipped(f"type {content_type[:60] or 'unknown'}")
                body = bytearray()
                async for chunk in r.aiter_bytes():
                    body += chunk
                    if len(body) > settings.crawl_page_max_bytes:
                        raise Skipped(f"over {settings.crawl_page_max_bytes} bytes")
                return Fetched(str(r.url), content_type, bytes(body))
        except httpx.TransportError as exc:
            raise Unavailable(type(exc).__name__) from None
    raise Skipped("too many redirects")


async def robots_for(client: httpx.AsyncClient, url: str, settings: Settings) -> str | None:
    """The host's robots.txt (RFC 9309: a 4xx means no rules; a 5xx or no answer, retry)."""
    parts = urlsplit(url)
    try:
        fetched = await fetch(
            client, f"{parts.scheme}://{parts.netloc}/robots.txt", settings, ("text/plain",)
        )
    except Skipped:
        return None
    return fetched.body.decode("utf-8", errors="replace")


def robots_allow(robots_txt: str | None, url: str, settings: Settings) -> bool:
    return robots_txt is None or Protego.parse(robots_txt).can_fetch(url, user_agent(settings))


def crawl_delay(robots_txt: str | None, settings: Settings) -> float:
    if robots_txt is None:
        return 0.0
    delay = Protego.parse(robots_txt).crawl_delay(user_agent(settings))
    return min(float(delay or 0.0), 60.0)


def page_text(fetched: Fetched) -> tuple[str, str]:
    """(title, text): scripts, styles and navigation dropped, whitespace folded."""
    if not fetched.content_type.endswith("html") and "xhtml" not in fetched.content_type:
        text = fetched.body.decode("utf-8", errors="replace")
        return urlsplit(fetched.url).path.rsplit("/", 1)[-1] or fetched.url, text
    soup = BeautifulSoup(fetched.body, "html.parser")
    for tag in soup(["script", "style", "noscript", "nav", "header", "footer", "template"]):
        tag.decompose()
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    lines = (line.strip() for line in soup.get_text("\n").splitlines())
    text = "\n".join(line for line in lines if line)
    return (title or fetched.url)[:200], text


def sitemap_urls(body: bytes) -> tuple[list[str], list[str]]:
    """(pages, nested sitemaps) listed by a sitemap or a sitemap index."""
    try:
        root = ElementTree.fromstring(body)
    except Exception:
        raise Skipped("not a sitemap (XML)") from None
    pages: list[str] = []
    nested: list[str] = []
    kind = _NS.sub("", root.tag)
    for element in root:
        loc = next((c.text for c in element if _NS.sub("", c.tag) == "loc" and c.text), None)
        if loc:
            (nested if kind == "sitemapindex" else pages).append(loc.strip())
    return pages, nested
