"""The ``rnncourse`` command (also ``python -m rnncourse``).

``rnncourse grade ASSIGNMENT SUBMISSIONS [--out DIR] [--workers N] ...`` grades
a class: see :func:`rnncourse.grader.core.grade`; ``rnncourse grade ASSIGNMENT
--check-solutions`` is a dry run on the course's own notebooks (exit 1 unless
the solutions score full marks and the released notebooks zero: see
:mod:`rnncourse.grader.solutions_check`). Exit status 0 when the batch
completed, whatever the submissions did; 2 for an instructor error (an
unknown assignment, a missing folder, a gradebook that cannot be opened),
with a message; 130 when interrupted.
"""

import argparse
import os
import sys
import time


def _positive(kind):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{text!r} must be positive")
        return value

    return parse


def _parser():
    parser = argparse.ArgumentParser(prog="rnncourse", description="Tools of the rnncourse course.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    g = commands.add_parser(
        "grade",
        help="grade a class's submissions of one assignment, sandboxed",
        description=(
            "Grade every student's notebook(s) of ASSIGNMENT found in SUBMISSIONS (one folder per student, "
            "or nbgrader's submitted/<student>/<assignment>/ layout). Writes DIR/grades.csv, "
            "DIR/feedback/<student>/<notebook>.html and a cache (DIR/.cache); records every result in "
            "nbgrader's gradebook. Student code runs in a sandbox (bubblewrap, an unprivileged uid, cgroups); "
            "the checks are judged outside it. A cell that stops the sandbox (a timeout, a crash, a memory kill) "
            "costs only the checks that needed it."
        ),
    )
    g.add_argument("assignment", help="the assignment, e.g. 02_rnn")
    g.add_argument("submissions", nargs="?", help="the folder of submissions: SUBMISSIONS/<student>/... (not with --check-solutions)")
    g.add_argument("--out", metavar="DIR", help="where to write grades.csv and feedback (default: graded/ASSIGNMENT)")
    g.add_argument("--workers", type=_positive(int), metavar="N", help="submissions graded at once (default: the CPU count)")
    g.add_argument("--db", metavar="URL", help="the gradebook's database URL (default: sqlite:///COURSE/gradebook.db)")
    g.add_argument("--secret-file", metavar="FILE", help="the instructor's secret (default: COURSE/.rnncourse-secret; created if missing)")
    g.add_argument("--course", metavar="DIR", help="the course folder with the sources and nbgrader_config.py (default: the current folder when it holds one, else this repository)")
    g.add_argument(
        "--cell-timeout", type=_positive(float), default=60.0, metavar="S",
        help="seconds per cell, or per test cell's checks (default 60); a cell that passes it is skipped and the "
        "rest of the notebook graded in a fresh sandbox",
    )
    g.add_argument(
        "--timeout", type=_positive(float), default=600.0, metavar="S",
        help="seconds per notebook, every restart after a stop included (default 600)",
    )
    g.add_argument("--memory", type=_positive(int), default=2048, metavar="MB", help="memory per notebook in MB (default 2048)")
    g.add_argument("--max-output", type=_positive(int), default=1_000_000, metavar="BYTES", help="bytes of output per notebook (default 1000000)")
    g.add_argument("--max-processes", type=_positive(int), default=64, metavar="N", help="processes and threads per notebook (default 64)")
    g.add_argument("--max-notebook-mb", type=_positive(float), default=20.0, metavar="MB", help="largest notebook file read (default 20)")
    g.add_argument(
        "--autograded", metavar="DIR",
        help="also write nbgrader's autograded notebooks to DIR/<student>/ASSIGNMENT/ (e.g. COURSE/autograded), for formgrader",
    )
    g.add_argument(
        "--student", dest="students", nargs="+", action="extend", metavar="ID",
        help="grade only these students again (ids as in grades.csv): their rows of DIR/grades.csv are replaced, "
        "every other row stays as it was",
    )
    g.add_argument(
        "--submitted-at", dest="submitted_at", nargs="+", action="extend", metavar="ID=TIME", default=[],
        help="the submission time of a student, in place of their timestamp.txt (e.g. alice='2024-05-01 14:38:12'; "
        "UTC unless a zone follows)",
    )
    g.add_argument(
        "--check-solutions", action="store_true",
        help="a dry run instead: grade the assignment's source notebooks (answers in place) and its released "
        "notebooks in the sandbox, with a throw-away gradebook; exit 1 unless they score full marks and zero",
    )
    g.add_argument("--no-progress", action="store_true", help="no progress bar (it is off anyway when stderr is not a terminal)")
    return parser


def _check_solutions(args):
    from rnncourse.grader.core import GradeError
    from rnncourse.grader.solutions_check import check_solutions
    from rnncourse.grader.source import CourseError

    try:
        table, problems = check_solutions(
            args.assignment, course=args.course, workers=args.workers, cell_timeout=args.cell_timeout,
            timeout=args.timeout, memory=args.memory, max_output=args.max_output, max_processes=args.max_processes,
            max_notebook_mb=args.max_notebook_mb, progress=False if args.no_progress else None,
        )
    except (GradeError, CourseError) as err:
        print(f"rnncourse grade: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rnncourse grade: interrupted", file=sys.stderr)
        return 130
    for row in table:
        print(f"rnncourse grade --check-solutions: {row['student_id']} {row['notebook']}: {row['score']} of "
              f"{row['max_score']} ({row['manual_pending']} to grade by hand), {row['status']}", file=sys.stderr)
    for problem in problems:
        print(f"rnncourse grade --check-solutions: FAILED: {problem}", file=sys.stderr)
    if problems:
        return 1
    print(f"rnncourse grade --check-solutions: {args.assignment}: the solutions get full marks, the released "
          "notebooks zero", file=sys.stderr)
    return 0


def _grade(args):
    from rnncourse.grader.core import GradeError, grade
    from rnncourse.grader.source import CourseError

    if args.check_solutions:
        if args.submissions is not None or args.students or args.out or args.db or args.autograded or args.submitted_at:
            print("rnncourse grade: error: --check-solutions takes the assignment alone (and limits): it grades the "
                  "course's own notebooks and writes nothing", file=sys.stderr)
            return 2
        return _check_solutions(args)
    if args.submissions is None:
        print("rnncourse grade: error: the submissions folder is missing: rnncourse grade ASSIGNMENT SUBMISSIONS",
              file=sys.stderr)
        return 2
    out = args.out or os.path.join("graded", args.assignment)
    submitted_at = {}
    for given in args.submitted_at:
        student, equals, when = given.partition("=")
        if not equals or not student:
            print(f"rnncourse grade: error: --submitted-at takes ID=TIME (e.g. alice='2024-05-01 14:38:12'), got "
                  f"{given!r}", file=sys.stderr)
            return 2
        submitted_at[student] = when
    start = time.monotonic()
    try:
        rows = grade(
            args.assignment,
            args.submissions,
            out,
            course=args.course,
            workers=args.workers,
            db=args.db,
            secret_file=args.secret_file,
            cell_timeout=args.cell_timeout,
            timeout=args.timeout,
            memory=args.memory,
            max_output=args.max_output,
            max_processes=args.max_processes,
            max_notebook_mb=args.max_notebook_mb,
            progress=False if args.no_progress else None,
            autograded=args.autograded,
            students=args.students,
            submitted_at=submitted_at,
        )
    except (GradeError, CourseError) as err:
        print(f"rnncourse grade: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rnncourse grade: interrupted", file=sys.stderr)
        return 130
    counts = {}
    for row in rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "no submission found"
    if args.students:
        summary += f" (graded again: {', '.join(dict.fromkeys(args.students))})"
    print(
        f"rnncourse grade: {len(rows)} notebook(s) of {args.assignment}: {summary}; "
        f"{time.monotonic() - start:.1f} s; {os.path.join(out, 'grades.csv')}",
        file=sys.stderr,
    )
    return 0


def main(argv=None):
    args = _parser().parse_args(argv)
    if args.command == "grade":
        return _grade(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
