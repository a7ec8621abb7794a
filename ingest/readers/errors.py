"""The one error a recording reader raises.

::

    ValueError
     └── RecordingError(path, line, column, message)

Every reader turns whatever goes wrong with a file (bad bytes, a bad
number, a missing column, a pyarrow or csv failure) into a
:class:`RecordingError` naming the file, the line (1-based: the line of a
text file, the row of a Parquet file, ``None`` when the whole file is at
fault) and the column (a column name, or for line protocol the 1-based
character position in the line).  Nothing else escapes a reader.
"""

from __future__ import annotations

from pathlib import Path


class RecordingError(ValueError):
    """A recording file that cannot be read, with where the problem is."""

    def __init__(self, path: str | Path, line: int | None, column: str | int | None, message: str):
        self.path = str(path)
        self.line = line
        self.column = column
        self.message = message
        where = self.path
        if line is not None:
            where += f", line {line}"
        if column is not None:
            where += f", column {column!r}" if isinstance(column, str) else f", column {column}"
        super().__init__(f"{where}: {message}")
