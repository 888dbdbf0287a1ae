"""Reading a notebook file that may be anything: empty, huge, not JSON, a link, a FIFO.

The grader reads every notebook (the instructor's and the students') through
:func:`read_notebook_file`, which never follows a symbolic link, never blocks
on a special file, reads at most ``max_bytes + 1`` bytes, and answers either
a plain dict ``{"metadata": dict, "cells": [cell, ...]}`` (each cell a dict
with ``cell_type``, ``source`` as one string, ``metadata`` as a dict) or a
:class:`ValueError` whose message says what is wrong, for the ``reason``
column. Its text is valid Unicode: JSON can spell a lone surrogate
(``"\\udcff"``), which no UTF-8 file can hold, so each becomes ``?``.
"""

import json
import os
import stat

MB = 1024 * 1024


def read_notebook_file(path, max_bytes):
    """``(data, notebook, notes)``: the file's bytes, the notebook as plain data, and remarks."""
    data = read_regular_file(path, max_bytes)
    notebook, notes = read_notebook_bytes(data, with_notes=True)
    return data, notebook, notes


def read_regular_file(path, max_bytes):
    """The bytes of the regular file ``path``, refusing links, special files and files over ``max_bytes``."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise ValueError("the file does not exist") from None
    except OSError as err:
        if os.path.islink(path):
            raise ValueError("the file is a symbolic link; only plain files are graded") from None
        raise ValueError(f"the file cannot be opened ({err.strerror})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ValueError("not a plain file")
        if info.st_size > max_bytes:
            raise ValueError(f"the file is {_size(info.st_size)}; the limit is {_size(max_bytes)}")
        chunks, total = [], 0
        while total <= max_bytes:
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > max_bytes:
            raise ValueError(f"the file is larger than {_size(max_bytes)}, the limit")
        return b"".join(chunks)
    finally:
        os.close(fd)


def _size(n):
    return f"{n / MB:.1f} MB" if n >= MB else f"{n} bytes"


def read_notebook_bytes(data, *, with_notes=False):
    """A notebook's bytes as plain data (see the module docstring), or :class:`ValueError`."""
    notes = []
    if not data.strip():
        raise ValueError("the file is empty")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ValueError(f"the file is not UTF-8 text (byte {err.start})") from None
    try:
        raw = json.loads(text)
    except RecursionError:
        raise ValueError("the file is not a notebook: its JSON is nested too deeply") from None
    except ValueError as err:
        line = getattr(err, "lineno", None)
        raise ValueError(f"the file is not valid JSON{f' (line {line})' if line else ''}") from None
    if not isinstance(raw, dict):
        raise ValueError("the file is JSON but not a notebook (no top-level object)")
    if "cells" not in raw and "worksheets" in raw:
        raw = _upgrade_v3(raw)
        notes.append("an nbformat 3 notebook, read as nbformat 4")
    cells = raw.get("cells")
    if not isinstance(cells, list):
        raise ValueError("the file is JSON but not a notebook (no list of cells)")
    major = raw.get("nbformat")
    if isinstance(major, int) and major > 4:
        notes.append(f"an nbformat {major} notebook, read as nbformat 4")
    metadata = raw.get("metadata") if isinstance(raw.get("metadata"), dict) else {}
    out, skipped = [], 0
    for cell in cells:
        if not isinstance(cell, dict) or not isinstance(cell.get("cell_type"), str):
            skipped += 1
            continue
        source = cell.get("source", "")
        if isinstance(source, list) and all(isinstance(s, str) for s in source):
            source = "".join(source)
        if not isinstance(source, str):
            skipped += 1
            continue
        meta = cell.get("metadata") if isinstance(cell.get("metadata"), dict) else {}
        out.append({"cell_type": cell["cell_type"], "source": source, "metadata": meta})
    if skipped:
        notes.append(f"{skipped} cell{'s' if skipped > 1 else ''} could not be read and {'were' if skipped > 1 else 'was'} skipped")
    notebook = valid_text({"metadata": metadata, "cells": out})
    return (notebook, notes) if with_notes else notebook


def valid_text(value):
    """``value`` (plain data) with every lone surrogate of its strings, keys included, replaced by ``?``."""
    if isinstance(value, str):
        return value if value.isascii() else value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, dict):
        return {valid_text(k): valid_text(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [valid_text(v) for v in value]
    return value


def _upgrade_v3(raw):
    try:
        import nbformat

        nb = nbformat.reads(json.dumps(raw), as_version=4)
        return json.loads(nbformat.writes(nb))
    except Exception as err:  # noqa: BLE001 - whatever nbformat makes of it, it is not gradable
        raise ValueError(f"an nbformat 3 notebook that cannot be converted ({type(err).__name__})") from None


def cell_source(cell):
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source if isinstance(source, str) else ""


def nbgrader_meta(cell):
    """A cell's nbgrader metadata as a dict ({} when absent or not a dict)."""
    meta = cell.get("metadata")
    meta = meta.get("nbgrader") if isinstance(meta, dict) else None
    return meta if isinstance(meta, dict) else {}


def kernel_name(notebook):
    """``(name, language)`` of the notebook's kernel, as its metadata says ("" when absent)."""
    meta = notebook.get("metadata", {})
    spec = meta.get("kernelspec") if isinstance(meta.get("kernelspec"), dict) else {}
    info = meta.get("language_info") if isinstance(meta.get("language_info"), dict) else {}
    name = spec.get("name") if isinstance(spec.get("name"), str) else ""
    language = spec.get("language") or info.get("name") or ""
    return name, language if isinstance(language, str) else ""
