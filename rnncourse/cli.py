"""The ``rnncourse`` command (also ``python -m rnncourse``).

``rnncourse grade ASSIGNMENT SUBMISSIONS [--out DIR] [--workers N] ...`` grades
a class: see :func:`rnncourse.grader.core.grade`; ``rnncourse grade ASSIGNMENT
--check-solutions`` is a dry run on the course's own notebooks (exit 1 unless
the solutions score full marks and the released notebooks zero: see
:mod:`rnncourse.grader.solutions_check`). ``rnncourse report DIR`` builds the class
report (DIR/report.html, DIR/lms.csv) again from DIR's files
(:mod:`rnncourse.grader.report`); ``rnncourse lms DIR... --out FILE`` joins
several assignments' grades into one CSV (:mod:`rnncourse.grader.lms`). Exit status 0 when the batch
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
            "DIR/feedback/<student>/<notebook>.html, the class report (DIR/report.html, DIR/checks.json, "
            "DIR/lms.csv) and a cache (DIR/.cache); records every result in "
            "nbgrader's gradebook. Student code runs in a sandbox (bubblewrap, an unprivileged uid, cgroups); "
            "the checks are judged outside it. A cell that stops the sandbox (a timeout, a crash, a memory kill) "
            "costs only the checks that needed it."
        ),
    )
    g.add_argument("assignment", help="the assignment, e.g. 02_rnn")
    g.add_argument("submissions", nargs="?", help="the folder of submissions: SUBMISSIONS/<student>/... (not with --check-solutions)")
    g.add_argument("--out", metavar="DIR", help="where to write grades.csv and feedback (default: graded/ASSIGNMENT)")
    g.add_argument("--workers", type=_positive(int), metavar="N", help="submissions graded at once (default: the CPU count)")
    g.add_argument(
        "--scheduler", metavar="ADDRESS",
        help="grade on a Dask cluster: the scheduler's address (tcp://HOST:8786, or tls://... with Dask's TLS "
        "configuration); each worker runs the sandboxes, this process judges and writes everything (--workers is ignored)",
    )
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
    r = commands.add_parser(
        "report",
        help="build DIR/report.html and DIR/lms.csv again from DIR/grades.csv and DIR/checks.json",
        description=(
            "Build the class report DIR/report.html (statuses, distribution of scores, per-check pass rates, most "
            "frequent mistakes) and DIR/lms.csv again from what rnncourse grade left in DIR: after hand grading "
            "and a re-grade with --student, say. Reads nothing else and runs nothing."
        ),
    )
    r.add_argument("dir", metavar="DIR", help="a folder written by rnncourse grade (e.g. graded/02_rnn)")
    m = commands.add_parser(
        "lms",
        help="join the grades of several assignments into one CSV for a learning-management system",
        description=(
            "One row per student: the points of each assignment (the sum over its notebooks of grades.csv's score), "
            "the total and the maximum total. One folder written by rnncourse grade per assignment."
        ),
    )
    m.add_argument("dirs", nargs="+", metavar="DIR", help="graded folders, one per assignment (e.g. graded/02_rnn graded/04_lstm)")
    m.add_argument("--out", required=True, metavar="FILE", help="the CSV to write (e.g. lms.csv)")
    return parser


def _error(command, message):
    """Say on stderr why ``rnncourse COMMAND`` stops, and return the exit status of an instructor's error, 2."""
    print(f"rnncourse {command}: error: {message}", file=sys.stderr)
    return 2


def _report(args):
    from rnncourse.grader import lms
    from rnncourse.grader.core import GradeError
    from rnncourse.grader.report import write_report

    try:
        path = write_report(args.dir)
        lms.write(os.path.join(args.dir, lms.LMS), [args.dir])
    except (GradeError, OSError) as err:
        return _error("report", err)
    print(f"rnncourse report: {path}; {os.path.join(args.dir, lms.LMS)}", file=sys.stderr)
    return 0


def _lms(args):
    from rnncourse.grader import lms
    from rnncourse.grader.core import GradeError

    try:
        rows = lms.write(args.out, args.dirs)
    except (GradeError, OSError) as err:
        return _error("lms", err)
    print(f"rnncourse lms: {len(rows)} student(s), {len(args.dirs)} assignment(s): {args.out}", file=sys.stderr)
    return 0


def _limits(args):
    """The limits of the sandbox and the progress bar, as ``grade`` and ``check_solutions`` take them."""
    return {
        "cell_timeout": args.cell_timeout,
        "timeout": args.timeout,
        "memory": args.memory,
        "max_output": args.max_output,
        "max_processes": args.max_processes,
        "max_notebook_mb": args.max_notebook_mb,
        "progress": False if args.no_progress else None,
    }


def _run_grader(run):
    """``(run(), None)``, or ``(None, exit status)`` after saying why it stopped.

    The status is 2 for an instructor error (GradeError, CourseError), 130 when interrupted.
    """
    from rnncourse.grader.core import GradeError
    from rnncourse.grader.source import CourseError

    try:
        return run(), None
    except (GradeError, CourseError) as err:
        return None, _error("grade", err)
    except KeyboardInterrupt:
        print("rnncourse grade: interrupted", file=sys.stderr)
        return None, 130


def _check_solutions(args):
    from rnncourse.grader.solutions_check import check_solutions

    done, status = _run_grader(
        lambda: check_solutions(args.assignment, course=args.course, workers=args.workers, **_limits(args))
    )
    if done is None:
        return status
    table, problems = done
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
    from rnncourse.grader.core import grade

    if args.check_solutions:
        if (args.submissions is not None or args.students or args.out or args.db or args.autograded or args.submitted_at
                or args.scheduler):
            return _error("grade", "--check-solutions takes the assignment alone (and limits): it grades the "
                          "course's own notebooks and writes nothing")
        return _check_solutions(args)
    if args.submissions is None:
        return _error("grade", "the submissions folder is missing: rnncourse grade ASSIGNMENT SUBMISSIONS")
    out = args.out or os.path.join("graded", args.assignment)
    submitted_at = {}
    for given in args.submitted_at:
        student, equals, when = given.partition("=")
        if not equals or not student:
            return _error("grade", f"--submitted-at takes ID=TIME (e.g. alice='2024-05-01 14:38:12'), got {given!r}")
        submitted_at[student] = when
    start = time.monotonic()
    rows, status = _run_grader(
        lambda: grade(
            args.assignment,
            args.submissions,
            out,
            course=args.course,
            workers=args.workers,
            db=args.db,
            secret_file=args.secret_file,
            autograded=args.autograded,
            students=args.students,
            scheduler=args.scheduler,
            **_limits(args),
            submitted_at=submitted_at,
        )
    )
    if rows is None:
        return status
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
    if args.command == "report":
        return _report(args)
    if args.command == "lms":
        return _lms(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
