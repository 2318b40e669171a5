"""Export CSVs open in spreadsheets: no cell may start a formula; export.json keeps values."""

from __future__ import annotations

import csv
import io

from iaf.gdpr.archive import section_csv


def test_cells_that_would_be_formulas_are_made_text():
    records = [
        {"name": '=HYPERLINK("http://evil.example","click")', "amount": -5},
        {"name": "+1 more", "amount": 3},
        {"name": "-minus", "amount": 0},
        {"name": "@SUM(A1:A9)", "amount": 1},
        {"name": "\tTAB", "amount": 1},
        {"name": "\rCR", "amount": 1},
        {"name": "plain = fine", "amount": 2},
    ]
    rows = list(csv.reader(io.StringIO(section_csv(records))))
    assert rows[0] == ["name", "amount"]
    names = [r[0] for r in rows[1:]]
    assert names == [
        '\'=HYPERLINK("http://evil.example","click")',
        "'+1 more",
        "'-minus",
        "'@SUM(A1:A9)",
        "'\tTAB",
        "'\rCR",
        "plain = fine",
    ]
    # Numbers are numbers: a negative amount is not a formula.
    assert [r[1] for r in rows[1:3]] == ["-5", "3"]


def test_json_cells_starting_with_a_formula_character_are_neutralised_too():
    rows = list(csv.reader(io.StringIO(section_csv([{"meta": ["=1+1"]}, {"meta": {"a": 1}}]))))
    assert rows[1] == ['["=1+1"]'] and rows[2] == ['{"a": 1}']
