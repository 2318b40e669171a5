"""The exports directory in the verification: the subject's archives are traces, a colleague's
archive that only names them is counted for review."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from iaf.gdpr.exports_scan import scan_exports
from iaf.gdpr.scan import Needles

SUBJECT_ID = "5d0c1a52-3f7e-4b55-8d5e-0f5e2b9c7a10"
NEEDLES = Needles.of("ann@x.com", "Ann Lee", SUBJECT_ID)


def archive(path: Path, document: dict[str, object]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zip_file:
        zip_file.writestr("export.json", json.dumps(document))
        zip_file.writestr("csv/messages.csv", "id,content\n1,hello\n")
    return path


def test_the_subjects_archive_is_a_finding_and_a_namesake_in_another_only_for_review(tmp_path):
    archive(tmp_path / "a.zip", {"subject": {"id": SUBJECT_ID, "email": "ann@x.com"}})
    archive(tmp_path / "b.zip", {"subject": {"id": "other"}, "messages": ["thanks Ann Lee"]})
    archive(tmp_path / "c.zip", {"subject": {"id": "other", "email": "joann@x.com"}})
    (tmp_path / "d.partial").write_bytes(b"PK\x03\x04 truncated " + SUBJECT_ID.encode())
    checked, findings, review = scan_exports(tmp_path, NEEDLES, SUBJECT_ID)
    assert checked == 4
    assert sorted((f.location, f.needle) for f in findings) == [
        ("exports:a.zip", "email"),
        ("exports:a.zip", "id"),
        ("exports:d.partial", "id"),
    ]
    assert [(f.location, f.needle) for f in review] == [("exports:b.zip", "name")]


def test_a_missing_directory_is_empty(tmp_path):
    assert scan_exports(tmp_path / "none", NEEDLES, SUBJECT_ID) == (0, [], [])


def test_another_persons_archive_that_holds_the_subjects_id_is_only_for_review(tmp_path):
    """A referrer's export names whom they referred: their copy, expiring with its link."""
    archive(tmp_path / "r.zip", {"subject": {"id": "referrer"}, "meta": {"who": SUBJECT_ID}})
    checked, findings, review = scan_exports(tmp_path, NEEDLES, SUBJECT_ID)
    assert (checked, findings) == (1, [])
    assert [(f.location, f.needle) for f in review] == [("exports:r.zip", "id")]
