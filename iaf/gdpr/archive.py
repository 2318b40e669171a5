"""The export archive: export.json (validated), one CSV per section, the schema, a README."""

from __future__ import annotations

import csv
import io
import json
import os
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from iaf.gdpr.export_schema import EXPORT_SCHEMA, validation_errors

README = """Your personal data from IAFactory Agents.

export.json   everything, including the information Art. 15 GDPR entitles you to ("information")
schema.json   the JSON Schema export.json follows
csv/*.csv     each section of export.json as a spreadsheet-friendly table (a cell that a
              spreadsheet would read as a formula, starting with = + - @, starts with ')

Messages written by other people are not included (Art. 20(4) GDPR); mentions_of_you lists
where you were mentioned.
"""


LEGAL_README = """
attachments/  the files you posted (attachments in export.json says which is which)
legal/*.md    the privacy policy, terms, cookie policy, data processing agreement template and
              record of processing as they stood when this archive was made (current versions:
              information.legal_pages in export.json)
"""


class InvalidExport(Exception):
    """The document does not match the shipped schema: never hand it out."""


# A spreadsheet reads a cell starting with one of these as a formula (=HYPERLINK(...) in a
# room name would open a link); tab and carriage return start one in some importers.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, int | float):  # -5 credits is a number, not a formula
        return str(value)
    if isinstance(value, dict | list):
        cell = json.dumps(value, ensure_ascii=False, default=str)
    else:
        cell = str(value)
    # The OWASP advice: a leading apostrophe makes the cell text; export.json keeps the value.
    return "'" + cell if cell.startswith(FORMULA_STARTS) else cell


def section_csv(records: list[dict[str, Any]]) -> str:
    columns: list[str] = []
    for record in records:
        columns += [key for key in record if key not in columns]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    for record in records:
        writer.writerow([_cell(record.get(column)) for column in columns])
    return buffer.getvalue()


def write_archive(
    document: dict[str, Any],
    path: Path,
    legal_pages: dict[str, str] | None = None,
    files: Iterable[tuple[str, bytes]] = (),
) -> int:
    """Validate, then write atomically (a retried activity simply rewrites it). Returns its size.

    `legal_pages` (file name -> Markdown) go to legal/ beside the data; `files` (archive path,
    bytes) are read one at a time, so attachments are never all in memory at once."""
    errors = validation_errors(document)
    if errors:
        raise InvalidExport("; ".join(errors))
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    partial = path.with_suffix(".partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            "export.json", json.dumps(document, ensure_ascii=False, indent=2, default=str)
        )
        archive.writestr("schema.json", json.dumps(EXPORT_SCHEMA, indent=2))
        archive.writestr("README.txt", README + (LEGAL_README if legal_pages else ""))
        for name, text in (legal_pages or {}).items():
            archive.writestr(f"legal/{name}", text)
        for name, data in files:
            archive.writestr(name, data)
        for name, records in document["sections"].items():
            archive.writestr(f"csv/{name}.csv", section_csv(records))
    partial.chmod(0o600)
    os.replace(partial, path)
    return path.stat().st_size
