"""Collecting from a learning platform's downloads: nbgrader's ``zip_collect``, with timestamps to the second.

Platforms write the submission time into each file's name with their own
separators (``alice_attempt_2024-05-01-14-38-12_02_rnn.ipynb``), and
nbgrader's date parser misreads such a string (that one becomes 2024-05-02
02:00). :class:`FileNameCollector` is nbgrader's ``FileNameCollectorPlugin``
(the same ``named_regexp``) that rewrites a ``timestamp`` group made of a
year, month, day, hour, minute and optionally second, in that order and
with any separators, as ``YYYY-MM-DD hh:mm:ss``; a timestamp of another form
is passed on as it is, for nbgrader to read or reject. Set it in
``nbgrader_config.py``::

    c.ZipCollectApp.collector_plugin = "rnncourse.grader.collect.FileNameCollector"

A file name is untrusted input: the timestamp is rewritten only when it is
nothing but those six numbers, each in its range.
"""

import re
from datetime import datetime

from nbgrader.plugins import FileNameCollectorPlugin

__all__ = ["FileNameCollector", "normalized_timestamp"]

_SEPARATED = re.compile(
    r"(\d{4})[-_.T ]?(\d{2})[-_.T ]?(\d{2})[-_.T ]?(\d{2})[-_.:hH ]?(\d{2})(?:[-_.:mM ]?(\d{2}))?[sS]?",
    re.ASCII,
)


def normalized_timestamp(text):
    """``YYYY-MM-DD hh:mm:ss`` for a timestamp written as its numbers with any separators; else ``text``."""
    found = _SEPARATED.fullmatch(text.strip()) if isinstance(text, str) and len(text) <= 64 else None
    if found is None:
        return text
    year, month, day, hour, minute, second = (int(g) if g is not None else 0 for g in found.groups())
    try:
        return datetime(year, month, day, hour, minute, second).strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:  # a 13th month, a 25th hour: not a time, nbgrader says so
        return text


class FileNameCollector(FileNameCollectorPlugin):
    """nbgrader's file-name collector, reading the submission time to the second (see the module)."""

    def collect(self, submission_file):
        info = super().collect(submission_file)
        if info and info.get("timestamp"):
            info["timestamp"] = normalized_timestamp(info["timestamp"])
        return info
