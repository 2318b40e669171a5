"""The exports directory in the verification scan: no archive of the subject may survive.

Export archives are zips (deflated), so each member is read and searched, not the raw file.
A file that holds the subject's id is theirs (every export names its subject by id) or
carries their id: a trace. The e-mail or name alone in someone else's archive (a colleague's
own message that named the subject, exported before the erasure) is that person's copy, gone
when its link expires: counted for review.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from iaf.gdpr.scan import Needles
from iaf.schemas.gdpr import FindingOut


def _texts(path: Path) -> list[str]:
    try:
        with zipfile.ZipFile(path) as archive:
            return [
                archive.read(member).decode("utf-8", "replace") for member in archive.namelist()
            ]
    except (zipfile.BadZipFile, OSError, EOFError):
        # An interrupted write (.partial): whatever is stored uncompressed is still read.
        try:
            return [path.read_bytes().decode("utf-8", "replace")]
        except OSError:  # removed meanwhile (an export expiring)
            return []


def scan_exports(
    directory: Path, needles: Needles
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
        for text in _texts(path):
            kinds.update(needles.found_in_text(text))
        location = f"exports:{path.name}"
        out = findings if "id" in kinds else review
        out += [FindingOut(location=location, needle=k, rows=1) for k in sorted(kinds)]
    return checked, findings, review
