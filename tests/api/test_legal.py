"""Legal pages over HTTP, in every export archive, and the breach report (API and CLI)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from typer.testing import CliRunner

from iaf.cli import app as cli_app
from tests.gdpr_helpers import compliance_officer, org_user, read_archive, wait_user_export
from tests.helpers import signup


async def test_pages_are_served_as_html_and_markdown(client):
    index = await client.get("/api/legal")
    assert index.status_code == 200
    names = [page["name"] for page in index.json()["pages"]]
    assert names == ["privacy-policy", "terms", "cookie-policy", "dpa", "record-of-processing"]
    assert "LEGAL_ORG_NAME" in index.json()["missing_settings"]
    for name in names:
        page = await client.get(f"/legal/{name}")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "<h1>" in page.text
        source = await client.get(f"/legal/{name}.md")
        assert source.status_code == 200
        assert source.headers["content-type"].startswith("text/markdown")
        assert source.text.startswith("# ")
    missing = await client.get("/legal/secrets")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "page_not_found"


async def test_every_export_archive_carries_the_pages(client, settings):
    alice = await signup(client, "Legal Alice")
    assert (await alice.get("/api/user/data-export")).status_code == 202
    done = await wait_user_export(alice)
    assert done["status"] == "complete", done
    archive = await client.get(done["download_url"].replace(settings.public_base_url, ""))
    document, files = read_archive(archive.content)
    assert set(document["information"]["legal_pages"]) == {
        "privacy-policy",
        "terms",
        "cookie-policy",
        "dpa",
        "record-of-processing",
    }
    assert files["legal/privacy-policy.md"].decode().startswith("# Privacy policy")
    assert b"legal/*.md" in files["README.txt"]


async def test_breach_report_lists_the_organisation_people_of_the_window(client, api_url):
    began = datetime.now(UTC) - timedelta(seconds=1)
    admin = await signup(client, "Breach Admin")
    officer = await compliance_officer(admin)
    writer = await org_user(admin, "Breach Writer")
    elsewhere = await signup(client, "Other Org Person")
    room = await writer.new_room()
    for text in ("one", "two"):
        await writer.say(room["id"], text)
    await elsewhere.say((await elsewhere.new_room())["id"], "not theirs")
    window = {
        "from": began.isoformat(),
        "to": (datetime.now(UTC) + timedelta(minutes=1)).isoformat(),
    }

    report = (await officer.get("/api/compliance/breach", params=window)).json()
    people = {p["user_id"]: p for p in report["people"]}
    assert set(people) == {admin.id, officer.id, writer.id}
    assert people[writer.id]["records_in_window"]["messages"] == 2
    assert people[writer.id]["email"] is None and len(people[writer.id]["subject_ref"]) == 32
    assert report["records_in_window"]["messages"] == 2
    with_email = await officer.get(
        "/api/compliance/breach", params={**window, "include_email": True}
    )
    assert {p["email"] for p in with_email.json()["people"]} >= {writer.user["email"]}

    before = {"from": "2000-01-01T00:00:00Z", "to": "2000-02-01T00:00:00Z"}
    assert (await officer.get("/api/compliance/breach", params=before)).json()["people"] == []
    refusals = [
        (writer, window, 403),
        (officer, {"from": window["to"], "to": window["from"]}, 422),
        (officer, {"from": "2026-01-01T00:00:00", "to": "2026-02-01T00:00:00"}, 422),
        (officer, {"from": "2000-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, 422),
        (officer, {"from": "yesterday", "to": window["to"]}, 422),
    ]
    for person, params, status in refusals:
        response = await person.get("/api/compliance/breach", params=params)
        assert response.status_code == status, (params, response.text)

    key = (await officer.post("/api/auth/api-keys", json={"name": "cli"})).json()["key"]
    env = {"IAF_API_URL": api_url, "IAF_API_KEY": key, "COLUMNS": "250"}
    args = ["gdpr", "breach", "--from", began.date().isoformat(), "--to", window["to"]]
    runner = CliRunner()
    quiet = await asyncio.to_thread(runner.invoke, cli_app, args, env=env)
    assert quiet.exit_code == 0, quiet.output
    assert writer.id in quiet.output and writer.user["email"] not in quiet.output
    loud = await asyncio.to_thread(runner.invoke, cli_app, [*args, "--emails"], env=env)
    assert loud.exit_code == 0 and writer.user["email"] in loud.output
