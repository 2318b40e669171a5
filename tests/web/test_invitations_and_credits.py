"""Invite by e-mail from the room settings (link read from the SMTP sink's .eml), accept in
another browser as a new person, see them join; resend and revoke; then the credits page:
balance, the cost of each reply, the referral grant, and what running out looks like."""

from __future__ import annotations

import re

import httpx
from playwright.async_api import expect

from tests.agent_helpers import rows
from tests.helpers import signup, unique_email
from tests.web.conftest import PASSWORD, MailSink, OpenPage, room_page, send

INVITE_LINK = r"https?://[^\s]+?(/api/chat/invitations/[A-Za-z0-9_-]+)"


async def wait_for_links(mail: MailSink, address: str, count: int, page) -> list[str]:
    """The .eml files arrive from the worker's mail activity; poll the folder, bounded."""
    for _ in range(300):
        links = mail.links_to(address, INVITE_LINK)
        if len(links) >= count:
            return links
        await page.wait_for_timeout(100)
    raise AssertionError(f"{count} mail(s) to {address} never arrived")


async def test_invite_accept_join_resend_revoke_and_the_referral_credits(
    open_page: OpenPage, http: httpx.AsyncClient, mail: MailSink
):
    alice = await signup(http, "Alice Martin")
    room = await alice.new_room("Partners")
    page = await room_page(open_page, alice, room)
    await page.get_by_role("link", name="Room settings").click()
    panel = page.locator("#room-panel")
    guest, other = unique_email("guest"), unique_email("other")
    for address in (guest, other):
        await panel.get_by_label("E-mail to invite").fill(address)
        await panel.get_by_role("button", name="Invite", exact=True).click()
        await expect(panel.locator("li.invitation", has_text=address)).to_contain_text("pending")

    guest_row = panel.locator("li.invitation", has_text=guest)
    await guest_row.get_by_role("button", name="Resend").click()
    links = await wait_for_links(mail, guest, 2, page)
    assert len(set(links)) == 1  # the resend carries the same working link
    other_row = panel.locator("li.invitation", has_text=other)
    await other_row.get_by_role("button", name="Revoke").click()
    await expect(other_row).to_contain_text("revoked")

    guest_page = await open_page(path=links[0])
    await guest_page.get_by_label("Your name").fill("Gabriel Guest")
    await guest_page.get_by_label("Choose a password").fill(PASSWORD)
    await guest_page.get_by_role("button", name="Accept Invitation").click()
    await expect(guest_page.locator("#room-title")).to_have_text("Partners")
    await expect(page.get_by_text("Gabriel Guest joined the room.")).to_be_visible()
    await expect(panel.locator("li.invitation", has_text=guest)).to_contain_text("accepted")

    # Credits: the guest's first message grants Alice her referral reward; her own question
    # to an agent costs credits, shown per reply.
    await send(guest_page, "Hello, happy to join!")
    await send(page, "@architect how do we onboard partners?")
    await expect(page.locator("#message-items .msg.agent")).to_contain_text("(offline model)")
    await page.get_by_role("link", name="Settings", exact=True).click()
    await page.get_by_role("link", name="Credits").click()
    ledger = page.locator("#ledger")
    await expect(ledger.locator("tr[data-kind=referral]")).to_contain_text("Referral reward")
    await expect(ledger.locator("tr[data-kind=referral] .amount")).to_have_text("+100")
    reply_row = ledger.locator("tr[data-kind=agent_reply]")
    await expect(reply_row).to_contain_text(re.compile(r"Reply by @architect: cost \d+ credits"))
    await expect(ledger.locator("tr[data-kind=grant]")).to_contain_text("Credits granted")
    balance = int(await page.locator("#credit-balance").inner_text())
    assert 1000 < balance < 1100  # starting credits + referral - the reply's cost
    await expect(page.locator("#referral-list")).to_contain_text("Gabriel Guest")


async def test_out_of_credits_the_agent_says_so(
    open_page: OpenPage, http: httpx.AsyncClient, database_url: str
):
    alice = await signup(http, "Alice Martin")
    balance = (await alice.get("/api/credits")).json()["balance"]
    rows(
        database_url,
        "INSERT INTO ledger_entries (user_id, amount, kind, source, source_id, meta)"
        " VALUES (%s, %s, 'adjustment', 'test-drain', %s, '{}') RETURNING id",
        alice.id,
        -balance,
        alice.id,
    )
    room = await alice.new_room("Broke")
    page = await room_page(open_page, alice, room)
    await send(page, "@architect are you there?")
    failed = page.locator("#reply-items .msg.failed")
    await expect(failed).to_contain_text("You have run out of credits: the agent cannot answer.")
    await failed.get_by_role("link", name="See your credits").click()
    await expect(page.locator("#credit-balance")).to_have_text("0")
