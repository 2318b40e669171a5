"""The legal templates: every placeholder is filled from settings, unset details are shown
as such, values are escaped in HTML, and the export links every page."""

from __future__ import annotations

import re

import pytest

from iaf.gdpr.art15 import LEGAL_PAGE_NAMES, art15_information
from iaf.legal import pages
from iaf.settings import Settings


def _settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def test_every_page_renders_and_names_what_is_not_set():
    settings = _settings()
    for page in pages.PAGES:
        text = pages.render_markdown(page.name, settings)
        assert text.startswith("# ")
        assert "$" not in text  # no placeholder left unfilled
    assert "[set LEGAL_ORG_NAME]" in pages.render_markdown("privacy-policy", settings)
    assert "LEGAL_DPO_EMAIL" in pages.missing_settings(settings)


def test_operator_details_fill_the_pages_and_are_escaped_in_html():
    settings = _settings(
        legal_org_name="Acme <b>SAS</b>",
        legal_org_address="1 rue de la Paix, Paris",
        legal_contact_email="privacy@acme.example",
        legal_dpo_name="Dana Protect",
        legal_dpo_email="dpo@acme.example",
        legal_supervisory_authority="the CNIL",
        legal_hosting="OVHcloud, France",
        legal_governing_law="French law",
        legal_effective_date="2026-12-01",
        erasure_grace_days=14,
        default_llm_model="openai/gpt-4o-mini",
    )
    assert pages.missing_settings(settings) == []
    text = pages.render_markdown("privacy-policy", settings)
    assert "**Acme <b>SAS</b>**" in text and "dpo@acme.example" in text
    assert "Deletion waits\n  14 days" in text or "waits 14 days" in " ".join(text.split())
    assert "openai" in text
    page = pages.render_html("privacy-policy", settings)
    assert "Acme &lt;b&gt;SAS&lt;/b&gt;" in page and "<b>SAS</b>" not in page
    assert "<table>" in page
    record = pages.render_markdown("record-of-processing", settings)
    assert re.search(r"\| 5 \| search \|", record)


def test_unknown_pages_are_refused():
    with pytest.raises(KeyError):
        pages.render_markdown("../settings", _settings())
    with pytest.raises(KeyError):
        pages.render_html("nope", _settings())


def test_the_export_information_links_every_page():
    settings = _settings(public_base_url="https://chat.acme.example/")
    links = art15_information(settings)["legal_pages"]
    assert set(links) == pages.PAGE_NAMES == set(LEGAL_PAGE_NAMES)
    assert links["terms"] == "https://chat.acme.example/legal/terms"
    assert set(pages.all_markdown(settings)) == {f"{n}.md" for n in LEGAL_PAGE_NAMES}
