"""CSV cells that a spreadsheet opens as data, never as a formula (OWASP "CSV injection")."""

from __future__ import annotations

from collections.abc import Iterable

# Excel, LibreOffice and Google Sheets start a formula (or a DDE call) with any of these.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> object:
    """A text cell that would start a formula gets a leading `'`, which spreadsheets show as plain text."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return f"'{value}"
    return value


def safe_row(values: Iterable[object]) -> list[object]:
    return [safe_cell(value) for value in values]


class Echo:
    """A file-like object whose write returns the line: csv.writer over it yields rows to stream."""

    def write(self, value: str) -> str:
        return value
