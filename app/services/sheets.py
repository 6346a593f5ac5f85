"""Every spreadsheet the service produces (CSV and XLSX): the one place that keeps cells inert.

A cell whose text starts with `=`, `+`, `-`, `@`, a tab or a carriage return is run as a formula by
Excel, WPS and LibreOffice ("CSV injection"): a unit's summary or an imported text could then fetch a
URL or run a command on the clerk's machine. Such text gets a leading apostrophe, the spreadsheet
convention for "this is text", in CSV and XLSX alike; XLSX text cells are also typed as strings, so
openpyxl never writes them as formulas. Headers are frozen and columns get readable widths.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.worksheet.worksheet import Worksheet

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")
MIN_WIDTH, MAX_WIDTH = 8, 60


def neutralise(value: Any) -> Any:
    """The cell as a spreadsheet should hold it: text a spreadsheet would run gets a leading `'`."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def csv_bytes(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    """UTF-8 with BOM (Excel opens Chinese correctly only with it), CRLF, every cell neutralised."""
    buffer = io.StringIO()
    buffer.write("\ufeff")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([neutralise(h) for h in header])
    for row in rows:
        writer.writerow(["" if cell is None else neutralise(cell) for cell in row])
    return buffer.getvalue().encode("utf-8")


def add_sheet(
    book: Workbook,
    title: str,
    header: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    widths: Mapping[str, float] | None = None,
) -> Worksheet:
    """A sheet with a bold, frozen header row, neutralised text cells and readable column widths
    (given, or from the longest value: a Chinese character counts twice)."""
    if not book.worksheets or book.worksheets[0].max_row > 1 or book.worksheets[0].title != "Sheet":
        sheet = book.create_sheet(title)
    else:  # the empty sheet a new Workbook starts with
        sheet = book.worksheets[0]
        sheet.title = title
    sheet.append(list(header))
    longest = [_display_width(h) for h in header]
    for row in rows:
        sheet.append([neutralise(cell) for cell in row])
        for index, cell in enumerate(sheet[sheet.max_row]):
            if isinstance(cell.value, str):
                cell.data_type = "s"  # never a formula, whatever it starts with
            if index < len(longest):
                longest[index] = max(longest[index], _display_width(cell.value))
    for index, name in enumerate(header, start=1):
        cell = sheet.cell(row=1, column=index)
        cell.font = Font(bold=True)
        cell.fill = HEADER_FILL
        cell.alignment = Alignment(horizontal="center", vertical="center")
        width = (widths or {}).get(name) or min(max(longest[index - 1] + 2, MIN_WIDTH), MAX_WIDTH)
        sheet.column_dimensions[cell.column_letter].width = width
    sheet.freeze_panes = "A2"
    return sheet


def xlsx_bytes(book: Workbook) -> bytes:
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _display_width(value: Any) -> int:
    text = "" if value is None else str(value)
    first_line = text.split("\n", 1)[0]
    return sum(2 if ord(ch) > 0x2E7F else 1 for ch in first_line)
