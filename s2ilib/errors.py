"""Errors the workbook raises on bad input; the CLI turns them into exit status 2."""

from __future__ import annotations


class S2IError(Exception):
    """Bad input or state that a user can fix; the message says what and where."""


class FormatError(S2IError, ValueError):
    """A data file that does not hold what its layout promises.

    The message names the file, the record index (when one applies) and what was expected.
    """

    def __init__(self, path, problem: str, record: int | None = None, expected: str | None = None):
        self.path = str(path)
        self.record = record
        self.problem = problem
        self.expected = expected
        where = self.path if record is None else f"{self.path}, record {record}"
        message = f"{where}: {problem}"
        if expected:
            message += f" (expected {expected})"
        super().__init__(message)


class AudioError(S2IError, ValueError):
    """An audio file or waveform the front end cannot turn into a spectrogram."""
