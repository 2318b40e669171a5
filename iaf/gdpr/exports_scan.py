"""The exports directory in the erasure: no archive of the subject may survive.

Export archives are zips (deflated), so each member is read and searched, not the raw file.
An archive whose subject is the erased person, or a file that is not another person's
archive and holds their id, is a trace. Another person's archive that holds evidence of
the subject (their address, id, distinctive name, or words) is withdrawn by the erasure
(`archives_naming`): its owner asks for a fresh one. What the scan still finds in another
person's archive (a name that is also a common word) is counted for review.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from iaf.gdpr.scan import Needles
from schemas.gdpr import FindingOut


def _texts(path: Path) -> tuple[list[str], str | None]:
    """The file's texts, and the id of the archive's subject when it is a readable export."""
    try:
        with zipfile.ZipFile(path) as archive:
            texts = [
                archive.read(member).decode("utf-8", "replace") for member in archive.namelist()
            ]
            return texts, _subject_id(archive)
    except (zipfile.BadZipFile, OSError, EOFError):
        # An interrupted write (.partial): whatever is stored uncompressed is still read.
        try:
            return [path.read_bytes().decode("utf-8", "replace")], None
        except OSError:  # removed meanwhile (an export expiring)
            return [], None


def _subject_id(archive: zipfile.ZipFile) -> str | None:
    try:
        document = json.loads(archive.read("export.json"))
        return str(document["subject"]["id"])
    except (KeyError, TypeError, ValueError):
        return None


def scan_exports(
    directory: Path, needles: Needles, subject_id: str
) -> tuple[int, list[FindingOut], list[FindingOut]]:
    """(files checked, findings, review) for every file under the exports directory."""
    checked = 0
    findings: list[FindingOut] = []
    review: list[FindingOut] = []
    if not directory.is_dir():
        return 0, [], []
    for path in sorted(p for p in directory.iterdir() if p.is_file()):
        checked += 1
        kinds: set[str] = set()
        texts, owner = _texts(path)
        for text in texts:
            kinds.update(needles.found_in_text(text))
        location = f"exports:{path.name}"
        theirs = owner == subject_id or (owner is None and "id" in kinds)
        out = findings if theirs and kinds else review
        out += [FindingOut(location=location, needle=k, rows=1) for k in sorted(kinds)]
    return checked, findings, review


def archives_naming(directory: Path, needles: Needles, subject_id: str) -> list[str]:
    """Names of other people's archives that hold evidence of the subject."""
    if not directory.is_dir():
        return []
    named: list[str] = []
    for path in sorted(p for p in directory.iterdir() if p.is_file()):
        texts, owner = _texts(path)
        if owner is None or owner == subject_id:
            continue  # the subject's own go with their requests; unreadable files: the scan
        kinds: set[str] = set()
        for text in texts:
            kinds.update(needles.found_in_text(text))
        if needles.evidence(kinds):
            named.append(path.name)
    return named
