"""Recording results in nbgrader's gradebook, so that ``nbgrader export`` and formgrader keep working.

The assignment, its notebooks and their cells (graded, solution, task and
source cells) are created or updated from the instructor's source, as
``nbgrader generate_assignment`` would. Each result sets ``auto_score`` of
every auto-graded cell (0 when the notebook is missing or unreadable), with
nbgrader's own rule for ``needs_manual_grade`` (true when a grader already
gave a manual score). Cells graded by hand are left to the instructor:
:meth:`Recorder.record` answers the points given by hand so far and the
points still pending, for the row (:mod:`rnncourse.grader.rows`).

A hand grade follows its answer. The gradebook has no field for the text a
person graded, so a side table in the same database,
``rnncourse_answer_digest`` (nbgrader's ``Grade`` id -> the sha256 of the
answer's text, from the result's ``answers``, and ``regrade``), remembers
the text each written answer had at the last run. When it changed (a
resubmission) and the answer has a manual score, ``regrade`` is set and so
is nbgrader's own ``needs_manual_grade``, so that formgrader lists it as
needing grading; the answer then counts as pending (``manual_pending``),
not as given, until a person saves a grade in formgrader, which clears
``needs_manual_grade`` (and the next run ``regrade``). nbgrader creates
every grade with ``needs_manual_grade`` set, so that flag alone cannot tell
a changed answer from a score set by a script.

Late work is nbgrader's: the submission's ``timestamp`` (the time the grader
was given: ``timestamp.txt`` or the instructor's ``--submitted-at``; none
when there is neither), the assignment's ``duedate`` and the student's
``extension`` give nbgrader's ``total_seconds_late``, and the
``LateSubmissionPlugin`` that the course's ``nbgrader_config.py`` configures
(``AssignLatePenalties.plugin_class``, default ``LateSubmissionPlugin``
with its ``penalty_method``) gives each notebook's
``late_submission_penalty``, with nbgrader's own clamp to ``[0, score]``:
what ``nbgrader autograde`` would store, so that ``nbgrader export`` shows it.

Any SQLAlchemy URL works: ``sqlite:///PATH`` (the default) or
``postgresql://USER:PASSWORD@HOST/DB`` (psycopg 3, pinned in
requirements.txt). Several graders may write into one database at once (two
teaching assistants grading two assignments): a write that loses a race with
another (a student or the course created by both, a deadlock) is retried.
No message of this module shows the database's password.
"""

import logging
import os
import random
import re
import shutil
import sys
import time
import warnings
from pathlib import Path

from collections import namedtuple

from nbgrader.api import Grade, Gradebook, MissingEntry, SubmittedNotebook
from sqlalchemy import Boolean, Column, MetaData, String, Table, select

from . import GradeError


def _alembic_on_path():
    """nbgrader runs the ``alembic`` command to create a database: find it next to this Python if not on PATH."""
    if shutil.which("alembic") is None:
        here = Path(sys.executable).parent
        if (here / "alembic").exists():
            os.environ["PATH"] = f"{here}{os.pathsep}{os.environ.get('PATH', '')}"


def _checksum(cell):
    """nbgrader's checksum of a source cell (what ``nbgrader generate_assignment`` stores)."""
    import nbformat
    from nbgrader.utils import compute_checksum

    node = nbformat.from_dict({"cell_type": cell.cell_type, "source": cell.source, "metadata": cell.metadata})
    return compute_checksum(node)


def redacted(db_url):
    """``db_url`` with its password as ``***``: the form every message shows."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(db_url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a URL SQLAlchemy cannot parse may still hold a password
        return re.sub(r"(://[^/@]*?:)[^/@]*@", r"\1***@", str(db_url))


def _password(db_url):
    try:
        from sqlalchemy.engine import make_url

        return make_url(db_url).password or ""
    except Exception:  # noqa: BLE001
        found = re.search(r"://[^/@]*?:([^/@]*)@", str(db_url))
        return found.group(1) if found else ""


def scrubbed(text, db_url):
    """``text`` (an error's message, say) without the password of ``db_url``, raw or URL-encoded."""
    from urllib.parse import quote, unquote

    text = str(text).replace(str(db_url), redacted(db_url))
    password = _password(db_url)
    for form in {password, quote(password, safe=""), unquote(password)} - {""}:
        text = text.replace(form, "***")
    return text


ATTEMPTS = 6

# nbgrader's Grade id -> the sha256 (hex) of the written answer's text at the last run (see the module's doc)
ANSWER_DIGESTS = Table(
    "rnncourse_answer_digest",
    MetaData(),
    Column("grade_id", String(32), primary_key=True),
    Column("digest", String(64), nullable=False),
    Column("regrade", Boolean, nullable=False, default=False),
)


def _lost_a_race(err):
    """True for a database error that another writer caused and a retry settles.

    A row both writers inserted (a unique violation: the same student or the
    course created by two graders at once, or the tables created by both on
    a new database), a deadlock or a serialization failure.
    """
    from sqlalchemy import exc

    if isinstance(err, exc.IntegrityError):
        return True
    code = getattr(getattr(err, "orig", None), "sqlstate", None) or getattr(getattr(err, "orig", None), "pgcode", None)
    return isinstance(err, exc.DBAPIError) and code in ("40001", "40P01", "42P07", "23505")


def _pause(attempt):
    time.sleep(random.uniform(0.05, 0.2) * (attempt + 1))


def late_policy(config=None, where="nbgrader's defaults", folder=None):
    """nbgrader's ``AssignLatePenalties`` under ``config`` (the course's nbgrader settings; None: nbgrader's defaults).

    Its plugin (``plugin_inst``) computes the penalty. A plugin class of the
    instructor's may be a module of the course ``folder``, as nbgrader,
    which runs from the course folder, imports it; one that Python cannot
    load is an instructor error, which names ``where`` the config came from.
    """
    from nbgrader.preprocessors import AssignLatePenalties

    path = [str(folder)] if folder is not None else []
    sys.path[:0] = path
    try:
        policy = AssignLatePenalties(config=config, log=logging.getLogger("rnncourse.grader.late"))
        policy.init_plugin()
    except Exception as err:  # noqa: BLE001 - a plugin class that does not import, a bad penalty_method
        raise GradeError(f"the late submission plugin of {where} cannot be used: {type(err).__name__}: {err}") from None
    finally:
        for entry in path:
            sys.path.remove(entry)
    return policy


#: What :meth:`Recorder.record` answers for one result: the points given by hand and those pending, a note for the
#: row ("", or why the gradebook could not record it, or why there is no late penalty), the seconds past the due date (None: no due date or no
#: submission time) and the late penalty of the notebook (points, 0 for none).
Recorded = namedtuple("Recorded", "given pending note late_by late_penalty")


class Recorder:
    """An open gradebook for one assignment; ``late``: :func:`late_policy`'s object (default: nbgrader's defaults)."""

    def __init__(self, db_url, assignment, late=None):
        self.assignment = assignment
        self.db_url = db_url
        self.late = late if late is not None else late_policy()
        _alembic_on_path()
        for attempt in range(ATTEMPTS):
            self.gb = None
            try:
                self.gb = Gradebook(db_url, course_id=assignment.course_id)
                ANSWER_DIGESTS.create(self.gb.engine, checkfirst=True)
                self._ensure_assignment()
                break
            except Exception as err:  # noqa: BLE001 - a bad URL, a missing driver, a locked file
                if self.gb is not None:
                    self.gb.db.rollback()
                    self.gb.close()
                if attempt + 1 < ATTEMPTS and _lost_a_race(err):
                    _pause(attempt)
                    continue
                message = f"cannot use the gradebook {redacted(db_url)}: {type(err).__name__}: {err}"
                raise GradeError(scrubbed(message, db_url)) from None
        self.warned = False

    def _ensure_assignment(self):
        gb, name = self.gb, self.assignment.name
        gb.update_or_create_assignment(name)
        for nb in self.assignment.notebooks:
            gb.update_or_create_notebook(nb.name, name)
            points = {c.grade_id: c.points for c in nb.graded}
            for cell in nb.cells:
                if cell.task:
                    gb.update_or_create_task_cell(cell.grade_id, nb.name, name, max_score=points[cell.grade_id], cell_type="markdown")
                elif cell.graded:
                    gb.update_or_create_grade_cell(
                        cell.grade_id, nb.name, name, max_score=points[cell.grade_id], cell_type=cell.cell_type
                    )
                if cell.solution:
                    gb.update_or_create_solution_cell(cell.grade_id, nb.name, name)
                gb.update_or_create_source_cell(
                    cell.grade_id,
                    nb.name,
                    name,
                    cell_type=cell.cell_type,
                    locked=cell.locked,
                    source=cell.source,
                    checksum=_checksum(cell),
                )

    def _grades(self, notebook, student, grade_ids):
        """grade_id -> Grade of one submitted notebook; rows missing (a cell added since) are created."""
        gb, name = self.gb, self.assignment.name
        try:
            submitted = gb.find_submission_notebook(notebook, name, student)
        except MissingEntry:
            submitted = SubmittedNotebook(notebook=gb.find_notebook(notebook, name), assignment=gb.find_submission(name, student))
            gb.db.add(submitted)
        grades = {g.name: g for g in submitted.grades}
        for grade_id in grade_ids:
            if grade_id not in grades:
                grades[grade_id] = Grade(cell_id=gb.find_graded_cell(grade_id, notebook, name).id, notebook=submitted)
                gb.db.add(grades[grade_id])
        return grades

    def record(self, job, result, submitted_at=None):
        """Record one result, submitted at ``submitted_at`` (UTC, naive; None: unknown); a ``Recorded``.

        Its ``note`` is empty, or says why the result could not be recorded
        (a database error); the grading goes on either way.
        """
        for attempt in range(ATTEMPTS):
            try:
                with warnings.catch_warnings():
                    # nbgrader's add_submission makes SQLAlchemy warn about its own session use; harmless
                    warnings.simplefilter("ignore")
                    given, pending = self._record(job, result, submitted_at)
                    late_by, late_penalty, note = self._late(job, result)
                return Recorded(given, pending, note, late_by, late_penalty)
            except Exception as err:  # noqa: BLE001 - e.g. a database that refuses a value
                self.gb.db.rollback()
                if attempt + 1 < ATTEMPTS and _lost_a_race(err):
                    _pause(attempt)
                    continue
                pending = sum(c["points"] for c in result["cells"] if not c["auto"])
                detail = scrubbed(f"{type(err).__name__}: {str(err)[:200]}", self.db_url)
                return Recorded(0, pending, f"not recorded in the gradebook ({detail})", None, 0)

    def _record(self, job, result, submitted_at):
        """Write one result; ``(manual points given, manual points pending)``."""
        gb, name = self.gb, self.assignment.name
        gb.update_or_create_student(job.student)
        # The gradebook's submission time is the one this run was given, none included: never an older run's.
        gb.update_or_create_submission(name, job.student, timestamp=submitted_at)
        given, pending = 0, 0
        grades = self._grades(result["notebook"], job.student, [c["grade_id"] for c in result["cells"]])
        gb.db.flush()  # the new grades get their ids
        answers = result.get("answers") or {}
        for cell in result["cells"]:
            grade = grades[cell["grade_id"]]
            if cell["auto"]:
                grade.auto_score = float(cell["earned"])
                grade.needs_manual_grade = grade.manual_score is not None
                continue
            regrade = self._follow(grade, answers.get(cell["grade_id"]))  # the answer's text remembered at every run
            if grade.manual_score is None or regrade:
                pending += cell["points"]
            else:
                given += grade.manual_score
        gb.db.commit()
        return given, pending

    def _follow(self, grade, digest):
        """Remember ``digest`` (None: unknown) as the text of ``grade``'s answer; True when it is to be graded again.

        It is, from the run that finds the text changed while the answer has a
        manual score, until a person saves a grade (formgrader clears
        ``needs_manual_grade``).
        """
        table, db = ANSWER_DIGESTS, self.gb.db
        before = db.execute(select(table.c.digest, table.c.regrade).where(table.c.grade_id == grade.id)).one_or_none()
        regrade = bool(before and before.regrade and grade.needs_manual_grade)
        if before is not None and digest is not None and before.digest != digest and grade.manual_score is not None:
            regrade = grade.needs_manual_grade = True
        if before is None and digest is not None:
            db.execute(table.insert().values(grade_id=grade.id, digest=digest, regrade=regrade))
        elif before is not None:
            values = {"regrade": regrade, **({"digest": digest} if digest is not None else {})}
            db.execute(table.update().where(table.c.grade_id == grade.id).values(**values))
        return regrade

    def _to_regrade(self, grade):
        """True when ``grade``'s answer is to be graded again (see ``_follow``), as the last run found."""
        table = ANSWER_DIGESTS
        flag = self.gb.db.execute(select(table.c.regrade).where(table.c.grade_id == grade.id)).scalar_one_or_none()
        return bool(flag and grade.needs_manual_grade)

    def _late(self, job, result):
        """``(late_by, late_penalty, note)`` of the notebook just recorded, the penalty stored as nbgrader's autograde would.

        As nbgrader's ``AssignLatePenalties.preprocess``: the penalty is reset,
        then, for a submission past its due date (extension included), set to
        what the configured plugin answers for the notebook's score, clamped by
        nbgrader to ``[0, score]``. A plugin that raises or answers something
        that is not a number gives no penalty, and ``note`` says why.
        """
        gb, name = self.gb, self.assignment.name
        submission = gb.find_submission(name, job.student)
        notebook = gb.find_submission_notebook(result["notebook"], name, job.student)
        known = submission.timestamp is not None and submission.duedate is not None
        late_by = submission.total_seconds_late if known else None
        notebook.late_submission_penalty = None
        note = ""
        if late_by:
            try:
                penalty = self.late.plugin_inst.late_submission_penalty(job.student, notebook.score, late_by)
                if penalty is not None:
                    notebook.late_submission_penalty = float(self.late._check_late_penalty(notebook, float(penalty)))
            except Exception as err:  # noqa: BLE001 - the instructor's plugin failed on this one: the row says so
                notebook.late_submission_penalty = None
                note = f"no late penalty: the late submission plugin failed ({type(err).__name__}: {str(err)[:200]})"
        gb.db.commit()
        return late_by, float(notebook.late_submission_penalty or 0), note

    def hand_grades(self, job, result):
        """``{grade_id: (points given by hand, the grader's comment)}`` for the written answers of ``result``.

        Only answers a person has graded (a manual score) are in it; the
        comment is formgrader's, "" when none. An answer graded, then changed
        (to be graded again) has ``(None, "")``. For
        the feedback page: a database error gives ``{}`` (the page then says
        the answers await grading), never a failure.
        """
        from nbgrader.api import MissingEntry

        gb, name, hand = self.gb, self.assignment.name, {}
        try:
            for cell in result["cells"]:
                if cell["auto"]:
                    continue
                try:
                    grade = gb.find_grade(cell["grade_id"], result["notebook"], name, job.student)
                except MissingEntry:
                    continue
                if grade.manual_score is None:
                    continue
                if self._to_regrade(grade):
                    hand[cell["grade_id"]] = (None, "")
                    continue
                try:
                    comment = gb.find_comment(cell["grade_id"], result["notebook"], name, job.student).manual_comment
                except MissingEntry:  # a graded cell that is no solution cell has no comment
                    comment = None
                hand[cell["grade_id"]] = (float(grade.manual_score), comment or "")
        except Exception:  # noqa: BLE001 - the page without hand grades rather than no page
            gb.db.rollback()
            return {}
        return hand

    def close(self):
        self.gb.close()
