"""The interface follows the browser's language (English, French, Arabic right to left), can
be switched, and agents answer in the language of the message."""

from __future__ import annotations

import httpx
from playwright.async_api import expect

from tests.helpers import signup
from tests.web.conftest import OpenPage, room_page, send


async def test_french_from_the_browser_and_an_answer_in_french(
    open_page: OpenPage, http: httpx.AsyncClient
):
    page = await open_page(locale="fr-FR")
    await expect(page.locator("html")).to_have_attribute("lang", "fr")
    await expect(page.locator("#auth-submit")).to_have_text("Se connecter")
    await expect(page.get_by_role("tab", name="Créer un compte")).to_be_visible()

    alice = await signup(http, "Amélie Dupont")
    room = await alice.new_room("Équipe")
    page = await room_page(open_page, alice, room, locale="fr-FR")
    await expect(page.get_by_role("button", name="Envoyer")).to_be_visible()
    await send(page, "@architect quelle est la prochaine étape pour le lancement ?")
    reply = page.locator("#message-items .msg.agent").last
    await expect(reply).to_contain_text("je n'ai trouvé aucune connaissance")
    await expect(page.locator("#conn-status")).to_have_text("en direct")


async def test_arabic_is_right_to_left_and_the_language_can_be_switched(
    open_page: OpenPage, http: httpx.AsyncClient
):
    alice = await signup(http, "Amira Haddad")
    room = await alice.new_room("الفريق")
    page = await room_page(open_page, alice, room, locale="ar")
    html = page.locator("html")
    await expect(html).to_have_attribute("dir", "rtl")
    await expect(html).to_have_attribute("lang", "ar")
    await expect(page.get_by_role("button", name="إرسال")).to_be_visible()
    sidebar_x = (await page.locator(".sidebar").bounding_box())["x"]
    assert sidebar_x > 500, "the room list sits on the right in a right-to-left layout"

    await send(page, "@architect ما هي الخطوة التالية؟")
    await expect(page.locator("#message-items .msg.agent").last).to_contain_text("لم أجد أي معرفة")

    await page.locator(".sidebar .language-select").select_option("en")
    await expect(html).to_have_attribute("dir", "ltr")
    await expect(page.get_by_role("button", name="Send")).to_be_visible()
    await page.reload()
    await expect(page.get_by_role("button", name="Send")).to_be_visible()  # the choice stays
