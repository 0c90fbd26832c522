"""Reading SDS CSV files as SDS reads them, and the import report a load ends with.

``CsvFolder.rows`` reads one file into ``Row`` objects that remember their file and line, keyed
by the canonical (classic or v2.1) column names whatever the file calls them (the UK format
renames columns). SDS refuses a whole file when a required column header is missing; it rejects
a single row when a required field is empty or its id repeats an earlier row; it drops a bad
optional field with a warning. The loaders add the rules that need other files (a school that
is not in the school file, an enrollment of an unknown person).

Failure policy: a missing required file or column raises ``ValueError`` naming it (nothing is
loaded); everything else about a row goes into the ``ImportReport``.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

#: dates as SDS accepts them: ISO 8601 (``YYYY-MM-DD``, ``YYYYMMDD``) and the US form
#: (``M/D/YYYY``) Microsoft's classic and UK samples use
ISO_DATE = re.compile(r"^(\d{4})-?(\d{2})-?(\d{2})$")
US_DATE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class Problem:
    """A rejected row or a warning: where it is and why."""

    file: str
    line: int
    reason: str

    def as_json(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "reason": self.reason}

    def __str__(self) -> str:
        return f"{self.file} line {self.line}: {self.reason}"


@dataclass
class ImportReport:
    """What one SDS folder load did: counts created, rows rejected, warnings."""

    format: str
    folder: str
    created: dict[str, int] = field(default_factory=dict)
    rejected: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "folder": self.folder,
            "created": dict(self.created),
            "rejected": [p.as_json() for p in self.rejected],
            "warnings": [p.as_json() for p in self.warnings],
        }

    def lines(self) -> list[str]:
        """The report for people: one summary line, then one line per rejected row and warning."""
        counts = ", ".join(f"{n} {what}" for what, n in self.created.items())
        out = [
            f"Import {self.format} {self.folder}: created {counts}; "
            f"{len(self.rejected)} rows rejected, {len(self.warnings)} warnings"
        ]
        out += [f"  rejected {p}" for p in self.rejected]
        out += [f"  warning {p}" for p in self.warnings]
        return out


@dataclass(frozen=True)
class Row:
    """One CSV record; ``values`` are keyed by canonical column name, stripped."""

    file: str
    line: int
    values: Mapping[str, str]

    def __getitem__(self, column: str) -> str:
        return self.values.get(column, "")

    def opt(self, column: str) -> str | None:
        return self.values.get(column) or None


class CsvFolder:
    """The CSV files of one SDS folder, read into rows with the report they add to.

    ``columns`` maps file name -> canonical column -> the column as this format spells it.
    """

    def __init__(
        self,
        folder: Path,
        report: ImportReport,
        columns: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        self.folder = folder
        self.report = report
        self.columns = columns or {}

    def label(self, file: str, column: str) -> str:
        """The column as the file spells it."""
        return self.columns.get(file, {}).get(column, column)

    def reject(self, row: Row, reason: str) -> None:
        self.report.rejected.append(Problem(row.file, row.line, reason))

    def warn(self, row: Row, reason: str) -> None:
        self.report.warnings.append(Problem(row.file, row.line, reason))

    def rows(
        self,
        file: str,
        required: tuple[str, ...],
        *,
        key: str | None = None,
        optional_file: bool = False,
    ) -> list[Row]:
        """The accepted rows of ``file``: each has every ``required`` field, and a ``key``
        not seen on an earlier row."""
        path = self.folder / file
        if not path.is_file():
            if optional_file:
                return []
            raise ValueError(f"{path} is missing")
        renamed = {self.label(file, c): c for c in self.columns.get(file, {})}
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            headers = set(reader.fieldnames or ())
            missing = [self.label(file, c) for c in required if self.label(file, c) not in headers]
            if missing:
                raise ValueError(f"{path} has no column {', '.join(missing)}")
            out: list[Row] = []
            seen: dict[str, int] = {}
            for record in reader:
                values = {
                    renamed.get(k, k): (v or "").strip()
                    for k, v in record.items()
                    if k and isinstance(v, str)
                }
                row = Row(file, reader.line_num, values)
                empty = [self.label(file, c) for c in required if not row[c]]
                if empty:
                    self.reject(row, f"no value for required field {', '.join(empty)}")
                    continue
                if key is not None:
                    first = seen.setdefault(row[key], row.line)
                    if first != row.line:
                        self.reject(
                            row,
                            f"duplicate {self.label(file, key)} '{row[key]}' (first on line "
                            f"{first})",
                        )
                        continue
                out.append(row)
        return out

    def date(self, row: Row, column: str) -> str | None:
        """An optional date field as ``YYYY-MM-DD`` (Graph's ``Edm.Date``); a value that is not
        a date is dropped with a warning."""
        value = row.opt(column)
        if value is None:
            return None
        iso, us = ISO_DATE.match(value), US_DATE.match(value)
        try:
            if iso:
                parsed = date(int(iso[1]), int(iso[2]), int(iso[3]))
            elif us:
                parsed = date(int(us[3]), int(us[1]), int(us[2]))
            else:
                raise ValueError(value)
        except ValueError:
            self.warn(row, f"{self.label(row.file, column)} '{value}' is not a date: dropped")
            return None
        return parsed.isoformat()

    def email(self, row: Row, column: str) -> str | None:
        """An optional e-mail field; one that is not an address is dropped with a warning."""
        value = row.opt(column)
        if value is None or EMAIL.match(value):
            return value
        self.warn(
            row, f"{self.label(row.file, column)} '{value}' is not an e-mail address: dropped"
        )
        return None
