"""nbgrader settings of rnncourse, read by the `nbgrader` command run from the repository root
and by scripts/generate_exercises.py.

The course directory is the repository: the instructors' source notebooks live
in solutions/<assignment>/ and the student versions nbgrader generates from
them in exercises/<assignment>/ (nbgrader's default names are source/ and
release/). Regenerate the student versions with `make exercises`.
"""

c = get_config()  # noqa: F821 - provided by nbgrader when it reads this file

c.CourseDirectory.course_id = "rnncourse"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "exercises"

# The student versions need no gradebook; keep nbgrader from creating
# gradebook.db in the repository. A grader that wants one sets its own
# CourseDirectory.db_url outside the repository.
c.GenerateAssignment.no_database = True
c.SaveCells.enabled = False  # what `nbgrader generate_assignment --no-db` sets

# The stubs learners see in place of a solution.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
