"""
The CSV report of a process: every input row (or course) with its outcome.

Cells a spreadsheet would run as a formula are prefixed with a quote (OWASP's advice on
CSV injection): the report repeats what users sent, and operators open it in Excel.
"""

from __future__ import annotations

import csv
import io

from plugin_app import storage
from plugin_app.data import ProcessKind
from plugin_app.models import BulkProcess

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralize(cell: str) -> str:
    """The cell as text a spreadsheet shows, never evaluates."""
    return "'" + cell if cell.startswith(_FORMULA_STARTS) else cell


def _rows(process: BulkProcess) -> tuple[list[str], list[list[str]]]:
    items = list(process.items.order_by("position"))
    if process.kind == ProcessKind.EXPORT:
        header = ["course_id", "status", "error", "object"]
        return header, [[i.course_id, i.status, i.error, i.result.get("object", "")] for i in items]
    input_header = list(items[0].data.get("cells", {})) if items else []
    header = [*input_header, "status", "error", "asset_name", "asset_url", "usage_key"]
    rows = []
    for item in items:
        cells = item.data.get("cells", {})
        result = item.result
        rows.append(
            [
                *(cells.get(h, "") for h in input_header),
                item.status,
                item.error,
                result.get("asset_name", ""),
                result.get("asset_url", ""),
                result.get("usage_key", ""),
            ]
        )
    return header, rows


def write_report(process: BulkProcess) -> str:
    """Write the report of the process into storage; return its storage name."""
    header, rows = _rows(process)
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow([neutralize(h) for h in header])
    writer.writerows([neutralize(str(cell)) for cell in row] for row in rows)
    name = storage.object_name("reports", f"{process.process_id.hex}.csv")
    with storage.open_writer(name, "text/csv; charset=utf-8") as out:
        out.write(text.getvalue().encode("utf-8-sig"))
    return name
