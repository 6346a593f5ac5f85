"""The one spreadsheet-safety rule (`app/services/sheets.py`), cell by cell, in CSV and XLSX."""

from __future__ import annotations

import csv
import io

import pytest
from openpyxl import Workbook, load_workbook

from app.services.sheets import add_sheet, csv_bytes, neutralise, xlsx_bytes

RUNNABLE = ["=1+1", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1", '=HYPERLINK("http://x")']
PLAIN = ["县司法局", "2.3.3", "60%", "a=b", " =1", ""]


@pytest.mark.parametrize("text", RUNNABLE)
def test_runnable_text_gets_an_apostrophe(text: str) -> None:
    assert neutralise(text) == "'" + text


@pytest.mark.parametrize("value", [*PLAIN, 42, -5, 0.5, None])
def test_other_cells_are_unchanged(value: object) -> None:
    assert neutralise(value) == value  # numbers stay numbers, negative ones included


def test_csv_and_xlsx_keep_every_runnable_cell_as_text() -> None:
    rows = [[text, -5] for text in RUNNABLE]
    read = list(csv.reader(io.StringIO(csv_bytes(["内容", "数"], rows).decode("utf-8-sig"), newline="")))
    assert read[0] == ["内容", "数"]
    assert [r[0] for r in read[1:]] == ["'" + t for t in RUNNABLE] and {r[1] for r in read[1:]} == {"-5"}
    book = Workbook()
    add_sheet(book, "表", ["内容", "数"], rows)
    sheet = load_workbook(io.BytesIO(xlsx_bytes(book)))["表"]
    assert sheet.freeze_panes == "A2" and book.sheetnames == ["表"]
    cells = list(sheet.iter_rows(min_row=2))
    # XML may read CR back as LF (expat does, lxml does not): compare with line ends folded.
    assert [str(c[0].value).replace("\r", "\n") for c in cells] == ["'" + t.replace("\r", "\n") for t in RUNNABLE]
    assert {c[0].data_type for c in cells} == {"s"} and {c[1].value for c in cells} == {-5}
