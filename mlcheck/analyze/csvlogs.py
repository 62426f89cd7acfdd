"""Reading Keras `CSVLogger` files and Lightning `CSVLogger` `metrics.csv` into scalar curves.

Keras writes one row per epoch (`epoch,accuracy,loss,val_accuracy,val_loss,...`) with any
delimiter it was given; Lightning writes step rows and epoch rows interleaved, each with `epoch`
and `step` and empty cells for what that row did not log.
"""

from __future__ import annotations

import csv
import io
import math
from array import array
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from mlcheck.analyze.events import Scalars, sorted_scalars

DELIMITERS = ",;\t|"


class CSVLogError(Exception):
    """The file is not a metrics CSV; the message names the problem."""


def sniff_delimiter(header: str) -> str:
    """The delimiter of a header line: csv.Sniffer over `DELIMITERS`, else the most frequent."""
    try:
        return csv.Sniffer().sniff(header, delimiters=DELIMITERS).delimiter
    except csv.Error:
        counts = {d: header.count(d) for d in DELIMITERS}
        best = max(counts, key=counts.get)
        return best if counts[best] else ","


def read_header(path: Path) -> list[str]:
    """The column names of a CSV file (empty when the first line is not a header)."""
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as fh:
        line = fh.readline()
    if not line.strip():
        return []
    delimiter = sniff_delimiter(line)
    return [c.strip() for c in next(csv.reader([line], delimiter=delimiter))]


def read_csv_log(
    path: Path, progress: Callable[[int], None] | None = None
) -> tuple[str, dict[str, Scalars], list[str]]:
    """(format, scalars by column, columns) of a Keras or Lightning CSV log.

    format is "lightning-csv" when there is a `step` column (x of each curve: the step; the
    `epoch` column becomes the "epoch" curve), else "keras-csv" (x: the `epoch` column, or the
    row number).
    """
    try:
        fh = open(path, encoding="utf-8-sig", newline="")
        header_line = fh.readline()
    except UnicodeDecodeError:
        raise CSVLogError(f"{path} is neither a TensorBoard event file nor a CSV text file") from None
    with fh:
        if not header_line.strip():
            raise CSVLogError(f"{path} is empty: no CSV header")
        delimiter = sniff_delimiter(header_line)
        columns = [c.strip() for c in next(csv.reader([header_line], delimiter=delimiter))]
        if len(columns) < 2 or any(not c for c in columns):
            raise CSVLogError(f"{path} does not look like a metrics CSV (header {header_line.strip()[:80]!r})")
        reader = csv.reader(_counting(fh, progress), delimiter=delimiter)
        try:
            data, filled = _read_cells(reader, len(columns))
        except (csv.Error, UnicodeDecodeError) as exc:
            raise CSVLogError(f"{path}: unreadable CSV ({exc})") from None
    arrays = {c: np.frombuffer(d, dtype=np.float64) if len(d) else np.zeros(0) for c, d in zip(columns, data)}
    has = {c: np.frombuffer(bytes(f), dtype=np.uint8).astype(bool) for c, f in zip(columns, filled)}
    lower = {c.lower(): c for c in columns}
    out: dict[str, Scalars] = {}
    if "step" in lower:
        fmt = "lightning-csv"
        x = arrays[lower["step"]]
        skip = {lower["step"]}
    else:
        fmt = "keras-csv"
        rows = len(arrays[columns[0]])
        x = arrays[lower["epoch"]] if "epoch" in lower else np.arange(rows, dtype=np.float64)
        skip = {lower["epoch"]} if "epoch" in lower else set()
    for column, values in arrays.items():
        if column in skip:
            continue
        # empty cells are rows that did not log this column; a "nan" cell is a real NaN loss
        present = has[column] & ~np.isnan(x)
        if not present.any():
            continue
        out[column] = sorted_scalars(x[present].astype(np.int64), values[present])
    return fmt, out, columns


def _read_cells(reader: Iterable[list[str]], width: int) -> tuple[list[array], list[bytearray]]:
    """Each column's numbers (NaN where a cell holds none) and, per column, 1 where the cell
    holds a number (or "nan"), 0 where it is empty or text."""
    data = [array("d") for _ in range(width)]
    filled = [bytearray() for _ in range(width)]
    nan = math.nan
    for row in reader:
        if not row:
            continue
        for k in range(width):
            cell = row[k].strip() if k < len(row) else ""
            try:
                data[k].append(float(cell))
                filled[k].append(1)
            except ValueError:  # empty, or text
                data[k].append(nan)
                filled[k].append(0)
    return data, filled


def _counting(fh: io.TextIOBase, progress: Callable[[int], None] | None):
    if progress is None:
        yield from fh
        return
    pending = 0
    for line in fh:
        pending += len(line)
        if pending > 1 << 20:
            progress(pending)
            pending = 0
        yield line
    progress(pending)
