"""The person's own pages: name, e-mail (confirmed by a mailed link) and password (other
sessions signed out); consents with their history, a data export downloaded as a zip, and
account deletion with its grace period, cancelled."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import httpx
from playwright.async_api import expect

from tests.helpers import signup, unique_email
from tests.web.conftest import PASSWORD, MailSink, OpenPage

CONFIRM_LINK = r"https?://[^\s]+?(/confirm-email#token=[A-Za-z0-9_-]+)"


async def test_change_name_email_and_password(
    open_page: OpenPage, http: httpx.AsyncClient, mail: MailSink
):
    alice = await signup(http, "Alice Martin")
    other_session = await open_page(alice, path="/settings/profile")
    page = await open_page(alice, path="/settings/profile")
    form = page.locator("#profile-form")
    await expect(form.get_by_label("Name")).to_have_value("Alice Martin")
    await form.get_by_label("Name").fill("Alice Martin-Durand")
    new_email = unique_email("alice-new")
    await form.get_by_label("E-mail").fill(new_email)
    await form.get_by_role("button", name="Save").click()
    await expect(page.locator("#me-name")).to_have_text("Alice Martin-Durand")
    await expect(page.locator("#pending-email")).to_have_text(
        f"Waiting for confirmation: {new_email}"
    )

    for _ in range(300):
        links = mail.links_to(new_email, CONFIRM_LINK)
        if links:
            break
        await page.wait_for_timeout(100)
    assert links, "the confirmation mail never arrived"
    confirm = await open_page(path=links[0])
    await expect(confirm.locator("#notice-text")).to_have_text(
        f"Your e-mail address is now {new_email}."
    )
    assert "token" not in confirm.url  # the token leaves the address bar
    await page.reload()
    await expect(page.locator("#me-email")).to_have_text(new_email)

    passwords = page.locator("#password-form")
    await passwords.get_by_label("Current password").fill("wrong password")
    await passwords.get_by_label("New password").fill("a brand new secret")
    await passwords.get_by_role("button", name="Change password").click()
    await expect(passwords.get_by_role("alert")).to_have_text("That is not your current password.")
    await passwords.get_by_label("Current password").fill(PASSWORD)
    await passwords.get_by_role("button", name="Change password").click()
    await expect(page.locator("#toast")).to_contain_text("Password changed")
    await page.reload()
    await expect(page.locator("#me-name")).to_have_text("Alice Martin-Durand")  # still in

    await other_session.reload()  # the other session was signed out
    await expect(other_session.locator("#auth-view")).to_be_visible()
    await expect(other_session.locator("#toast")).to_contain_text("Your session has ended")


async def test_consents_export_and_a_cancelled_account_deletion(
    open_page: OpenPage, http: httpx.AsyncClient, tmp_path: Path
):
    alice = await signup(http, "Alice Martin")
    await alice.say((await alice.new_room("Notes"))["id"], "something to export")
    page = await open_page(alice, path="/settings/privacy")
    await expect(page.locator("#export-status")).to_have_text("No export requested yet.")
    consents = page.locator("#consents-form")
    await consents.get_by_label("Analytics").check()
    await consents.get_by_label("Marketing e-mails").check()
    await consents.get_by_role("button", name="Save").click()
    history = page.locator("#consent-history li")
    await expect(history.filter(has_text="allowed")).to_have_count(2)
    before = await history.count()
    await consents.get_by_label("Marketing e-mails").uncheck()
    await consents.get_by_role("button", name="Save").click()
    await expect(history).to_have_count(before + 1)
    await expect(history.filter(has_text="Marketing e-mails · withdrawn")).to_have_count(1)

    await page.get_by_role("button", name="Request an export").click()
    download_link = page.get_by_role("link", name="Download the zip")
    await expect(download_link).to_be_visible(timeout=60_000)
    async with page.expect_download() as waiting:
        await download_link.click()
    archive = tmp_path / "export.zip"
    await (await waiting.value).save_as(archive)
    with zipfile.ZipFile(archive) as opened:
        names = opened.namelist()
        everything = b"".join(opened.read(n) for n in names)
    assert names and b"something to export" in everything

    deletion = page.locator("#delete-form")
    await deletion.get_by_label("Your password, to confirm").fill("not it")
    await deletion.get_by_role("button", name="Delete my account").click()
    await expect(deletion.get_by_role("alert")).to_have_text("That is not your current password.")
    await deletion.get_by_label("Your password, to confirm").fill(PASSWORD)
    await deletion.get_by_role("button", name="Delete my account").click()
    await expect(page.locator("#deletion-text")).to_have_text(
        re.compile(r"^Your account will be deleted on .+\. Until then you can keep it\.$")
    )
    await page.get_by_role("button", name="Keep my account").click()
    await expect(page.locator("#toast")).to_have_text("Your account stays.")
    await expect(deletion).to_be_visible()
    assert (await alice.get("/api/me")).status_code == 200
