"""Regenerate the student notebooks in exercises/ from the nbgrader sources in solutions/.

    .venv/bin/python scripts/generate_exercises.py            # every assignment
    .venv/bin/python scripts/generate_exercises.py 02_rnn     # one assignment
    .venv/bin/python scripts/generate_exercises.py --check    # exit 1 if exercises/ is stale
    .venv/bin/python scripts/generate_exercises.py --force    # overwrite changed notebooks too (maintainers)

An assignment is a folder ``solutions/<assignment>/`` holding its source
notebook(s). For each, nbgrader's ``generate_assignment`` (its Python API,
with the settings of ``nbgrader_config.py``) removes the solutions, the hidden
tests and the outputs, locks the read-only cells and records checksums; the
result replaces ``exercises/<assignment>/``. Nothing is written to a gradebook
database: generating the student version needs none, and a database in the
repository would only go stale. The generated notebooks are checked to hold
no ``BEGIN SOLUTION``, ``BEGIN HIDDEN TESTS`` or ``BEGIN MARK SCHEME`` marker.

A learner's work is never overwritten: ``exercises/.generated.json`` records
the sha256 of every file this script last wrote, and a file that differs from
its record (a learner saved answers in it) is skipped, with a line saying so;
``--force`` (``make exercises FORCE=1``) overwrites it. Files the script did
not generate are left alone.
"""

import argparse
import hashlib
import json
import logging
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "solutions"
RELEASE = ROOT / "exercises"
MANIFEST = ".generated.json"
MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS", "BEGIN MARK SCHEME")


def assignments(source=SOURCE):
    """The assignment folders of ``source``: those that hold a notebook, in sorted order."""
    return sorted(p.name for p in Path(source).iterdir() if p.is_dir() and any(p.glob("*.ipynb")))


def generate(assignment_ids=None, source=SOURCE, release=None):
    """Generate the student version of each assignment into ``release/<assignment>/``.

    ``release`` defaults to a new temporary folder; returns its path. The
    folder ``source`` is only read.
    """
    from nbgrader.converters import GenerateAssignment
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config import Config

    source = Path(source).resolve()
    release = Path(release or tempfile.mkdtemp(prefix="rnncourse-exercises-")).resolve()
    assignment_ids = assignments(source) if assignment_ids is None else list(assignment_ids)

    config = Config()
    # The repository's nbgrader_config.py, so the CLI and this script agree.
    code = compile((ROOT / "nbgrader_config.py").read_text(), "nbgrader_config.py", "exec")
    exec(code, {"get_config": lambda: config})
    config.CourseDirectory.root = str(source.parent)
    config.CourseDirectory.source_directory = source.name
    config.CourseDirectory.release_directory = str(release)
    config.BaseConverter.force = True
    # Never a gradebook, whatever the config says: what `--no-db` sets.
    config.GenerateAssignment.no_database = True
    config.SaveCells.enabled = False

    log = logging.getLogger("rnncourse.generate_exercises")
    log.setLevel(logging.WARNING)
    for assignment_id in assignment_ids:
        if not any((source / assignment_id).glob("*.ipynb")):
            raise SystemExit(f"no notebook in {source / assignment_id}")
        coursedir = CourseDirectory(config=config)
        coursedir.assignment_id = assignment_id
        converter = GenerateAssignment(coursedir=coursedir, config=config, log=log)
        converter.start()  # raises NbGraderException (after logging why) when a notebook fails
        check_no_markers(release / assignment_id)
    return release


def check_no_markers(folder):
    """Raise if a notebook under ``folder`` still holds a solution, hidden-test or mark-scheme marker."""
    for path in sorted(Path(folder).rglob("*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            source = "".join(cell["source"])
            for marker in MARKERS:
                if marker in source:
                    raise SystemExit(f"{path}: a cell still holds '{marker}'")


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def read_manifest(release=None):
    """``{"02_rnn/02_rnn.ipynb": sha256, ...}``: what this script last wrote in ``release`` (default exercises/)."""
    release = RELEASE if release is None else release
    try:
        recorded = json.loads((Path(release) / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}
    return recorded if isinstance(recorded, dict) else {}


def install(generated, assignment_ids, release=None, force=False):
    """Copy the generated files into ``release/<assignment>/``; return the files skipped, a learner's work.

    A file is written when it is new, unchanged since this script last wrote
    it (its sha256 is the recorded one), already equal to the new version, or
    ``force`` is set; any other file is skipped. Files the script did not
    generate stay as they are.
    """
    release = Path(RELEASE if release is None else release)
    manifest = read_manifest(release)
    skipped = []
    for assignment_id in assignment_ids:
        source = Path(generated) / assignment_id
        for path in sorted(p for p in source.rglob("*") if p.is_file()):
            rel = path.relative_to(source.parent).as_posix()
            dest = release / rel
            new = sha256(path)
            if dest.exists() and not force and sha256(dest) not in (manifest.get(rel), new):
                skipped.append(rel)
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, dest)
            manifest[rel] = new
    text = json.dumps(dict(sorted(manifest.items())), indent=1) + "\n"
    (release / MANIFEST).write_text(text)
    return skipped


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("assignments", nargs="*", help="assignments to generate (default: all in solutions/)")
    parser.add_argument("--check", action="store_true", help="do not write; exit 1 if exercises/ is out of date")
    parser.add_argument("--force", action="store_true", help="overwrite notebooks changed since they were generated")
    args = parser.parse_args(argv)
    ids = args.assignments or assignments()

    with tempfile.TemporaryDirectory(prefix="rnncourse-exercises-") as tmp:
        generated = generate(ids, release=tmp)
        if args.check:
            diffs = differences(generated, RELEASE, ids)
            for line in diffs:
                print(line, file=sys.stderr)
            if diffs:
                print("exercises/ is out of date: run `make exercises`", file=sys.stderr)
                return 1
            print(f"exercises/ is up to date ({', '.join(ids)})")
            return 0
        skipped = install(generated, ids, force=args.force)
    for assignment_id in ids:
        print(f"generated exercises/{assignment_id}/")
    for rel in skipped:
        print(f"skipped exercises/{rel}: it changed since it was generated (your work?); "
              "move it aside, or overwrite it with `make exercises FORCE=1`")
    return 0


# --- comparing two releases -----------------------------------------------------------


def comparable(path):
    """What matters in a generated notebook: per cell, its type, source and nbgrader metadata.

    Cell ids, outputs, execution counts and other metadata are left out: they
    change when a notebook is opened and saved, not when the exercise changes.
    """
    nb = json.loads(Path(path).read_text())
    return [
        {
            "cell_type": cell["cell_type"],
            "source": "".join(cell["source"]),
            "nbgrader": cell.get("metadata", {}).get("nbgrader"),
            "tags": cell.get("metadata", {}).get("tags", []),
        }
        for cell in nb["cells"]
    ]


def differences(generated, release, assignment_ids):
    """Lines describing how ``release`` differs from ``generated`` for the given assignments; empty if equal."""
    lines = []
    for assignment_id in assignment_ids:
        new_dir, old_dir = Path(generated) / assignment_id, Path(release) / assignment_id
        new = {p.relative_to(new_dir) for p in new_dir.rglob("*") if p.is_file()}
        old = {p.relative_to(old_dir) for p in old_dir.rglob("*") if p.is_file()} if old_dir.exists() else set()
        for rel in sorted(new - old):
            lines.append(f"missing: exercises/{assignment_id}/{rel}")
        for rel in sorted(old - new):
            lines.append(f"extra: exercises/{assignment_id}/{rel}")
        for rel in sorted(new & old):
            a, b = new_dir / rel, old_dir / rel
            if rel.suffix == ".ipynb":
                if comparable(a) != comparable(b):
                    lines.append(f"differs: exercises/{assignment_id}/{rel}")
            elif a.read_bytes() != b.read_bytes():
                lines.append(f"differs: exercises/{assignment_id}/{rel}")
    return lines


if __name__ == "__main__":
    sys.exit(main())
