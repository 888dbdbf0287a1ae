"""Grading speed: ``rnncourse grade`` against plain ``nbgrader autograde`` on the same batch, in one run.

    .venv/bin/python benchmarks/grade_vs_nbgrader.py                 # 60 submissions of 02_rnn, 2 workers
    .venv/bin/python benchmarks/grade_vs_nbgrader.py --n 20 --workers 2 --keep

The batch is a class of realistic submissions of the NumPy-only RNN assignment
(02_rnn), built by ``tests/grader/corpus.py``: a fifth right, a sixth blank,
the rest with one realistic mistake each (a transposed ``Wh``, a forgotten
bias, a state not carried, a missing tanh derivative, ``db`` as a mean...).
The same notebooks are graded twice, in a temporary folder:

1. ``rnncourse grade 02_rnn SUBMISSIONS --workers N`` against a copy of the
   course (its own gradebook, secret and output folder: nothing is cached);
   every notebook in the sandbox, the checks judged outside it;
2. ``nbgrader autograde 02_rnn`` in a fresh nbgrader course folder
   (``source/``, ``generate_assignment`` with its own gradebook,
   ``submitted/<student>/02_rnn/``), which runs each notebook in a Jupyter
   kernel of this Python, one after the other, with no sandbox.

3. the cluster path, ``rnncourse grade ... --scheduler ADDRESS``, on a Dask
   cluster of this machine (a scheduler and workers of one thread each,
   started for the run and stopped after), with 1 worker and then 2 workers,
   each into a fresh output folder (nothing cached): the same sandbox on
   the workers, the judging, the cache and every write in the grader's
   process. Printed: submissions per minute, the 2-worker/1-worker ratio,
   and the CPU seconds per submission on each side (the single writer: the
   grading command; the workers: a cpuacct cgroup of theirs, when run as
   root), the figures the instructor guide's N-machine estimate uses; and
   the grader's once-per-batch CPU (one submission through the cluster),
   so that its CPU per submission can be told from its start-up.
   ``--no-cluster`` skips it.

Only the grading command is timed (the set-up of either course is not). It
prints submissions per minute for both, their ratio, the CPU time of each
(everything the command started, sandboxed processes included: a cpuacct
cgroup when run as root, else ``getrusage``), the machine (CPU count, model,
load), how many sandboxes the grader started (one per notebook, and one
more per restart after a stop: none in this batch, whose notebooks all run
to their end), and whether both agree on which submissions get full marks
on the auto-graded part (listing the disagreements). Timings on a machine shared
with other work are inflated: compare figures taken on the same machine in
the same run; the load average is printed for that reason.
"""

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "grader"))

import corpus  # noqa: E402 - the batch builder lives with the grader's tests

ASSIGNMENT = corpus.ASSIGNMENT
THREADS = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


CPUACCT = Path("/sys/fs/cgroup/cpuacct")


def children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def cpuacct_group():
    """A cpuacct cgroup (v1) of our own, or None (not root, no such hierarchy)."""
    if os.geteuid() != 0 or not (CPUACCT / "cgroup.procs").exists():
        return None
    group = CPUACCT / f"rnncourse-benchmark-{os.getpid()}-{time.monotonic_ns()}"
    try:
        group.mkdir()
    except OSError:
        return None
    return group


def timed(cmd, cwd, env):
    """Run ``cmd``; (wall seconds, CPU seconds of it and everything it started, completed process).

    The CPU time comes from a cpuacct cgroup that the command joins before it
    starts, so the sandboxed processes count too (the grader moves them into
    pids, memory and freezer cgroups, not cpuacct). Without one (not root),
    it is getrusage's time of the waited-for children, which misses the
    processes that someone else reaps.
    """
    group = cpuacct_group()

    def join():  # in the child, before exec
        (group / "cgroup.procs").write_text(str(os.getpid()))

    cpu0, t0 = children_cpu(), time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                          preexec_fn=join if group is not None else None)
    wall = time.perf_counter() - t0
    if group is not None:
        cpu = int((group / "cpuacct.usage").read_text()) / 1e9
        for _ in range(50):  # the last processes may take a moment to leave
            try:
                group.rmdir()
                break
            except OSError:
                time.sleep(0.1)
    else:
        cpu = children_cpu() - cpu0
    if done.returncode != 0:
        sys.exit(f"{' '.join(map(str, cmd[:3]))} ... failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return wall, cpu, done


def venv_env():
    """This environment's bin/ first on PATH (nbgrader calls ``alembic``; Jupyter finds this Python's kernel)."""
    env = dict(os.environ, **THREADS)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def grade_with_rnncourse(work, batch, workers, env, scheduler=None):
    course = corpus.make_course(work / "course")  # with corpus.TEST_SECRET: right answers pass every hidden case
    submissions = work / "submissions"
    for student, (nb, _, _) in batch.items():
        corpus.write_student(submissions / student, nb)
    cmd = [*corpus.grader_command(), "grade", ASSIGNMENT, str(submissions), "--out", str(work / "out"),
           "--course", str(course), "--db", f"sqlite:///{work / 'gradebook.db'}",
           "--secret-file", str(course / ".rnncourse-secret"), "--workers", str(workers), "--no-progress"]
    cmd += ["--scheduler", scheduler] if scheduler else []
    wall, cpu, _ = timed(cmd, work, env)
    rows = corpus.read_grades(work / "out" / "grades.csv")
    full = {r["student_id"]: r["score"] == r["max_score"] - (r["manual_pending"] or 0) for r in rows}
    statuses = {}
    for r in rows:
        statuses[r["status"]] = statuses.get(r["status"], 0) + 1
    # Sandboxes started (one per notebook, plus one per restart after a stop), from the grader's cache.
    sandboxes = sum(json.loads(p.read_text())["result"].get("attempts", 1) for p in (work / "out" / ".cache").glob("*.json"))
    statuses["sandboxes"] = sandboxes
    return wall, cpu, full, statuses


NBGRADER_CONFIG = """c = get_config()
c.CourseDirectory.root = {root!r}
c.CourseDirectory.course_id = "rnncourse-benchmark"
c.CourseDirectory.db_url = "sqlite:///{root}/gradebook.db"
c.ClearSolutions.code_stub = {{"python": "# YOUR CODE HERE\\nraise NotImplementedError()"}}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
"""


def grade_with_nbgrader(work, batch, env):
    work.mkdir(parents=True)
    (work / "nbgrader_config.py").write_text(NBGRADER_CONFIG.format(root=str(work)))
    shutil.copytree(ROOT / "solutions" / ASSIGNMENT, work / "source" / ASSIGNMENT)
    nbgrader = [sys.executable, "-m", "nbgrader"]
    timed([*nbgrader, "generate_assignment", ASSIGNMENT, "--force"], work, env)  # records it in the gradebook
    for student, (nb, _, _) in batch.items():
        corpus.write_student(work / "submitted" / student / ASSIGNMENT, nb)
    wall, cpu, _ = timed([*nbgrader, "autograde", ASSIGNMENT], work, env)
    full = {}
    with corpus.open_gradebook(work / "gradebook.db") as gb:
        for sub in gb.assignment_submissions(ASSIGNMENT):
            full[sub.student.id] = sub.code_score == sub.max_code_score
    return wall, cpu, full


def grade_on_cluster(work, batch, env, n):
    """The cluster path with 1 and 2 local workers: ``{workers: (wall, writer CPU, workers' CPU or None, full, statuses)}``."""
    from dask_cluster import LocalDaskCluster

    group = cpuacct_group()  # the workers' CPU time, sandboxes included

    def join():
        (group / "cgroup.procs").write_text(str(os.getpid()))

    def used():
        return int((group / "cpuacct.usage").read_text()) / 1e9 if group is not None else 0.0

    figures = {}
    cluster = LocalDaskCluster(work / "dask", workers=1, preexec_fn=join if group is not None else None)
    try:
        for workers in (1, 2):
            if workers == 2:
                cluster.add_worker()
            before = used()
            wall, cpu, full, statuses = grade_with_rnncourse(work / f"workers-{workers}", batch, 1, env, cluster.address)
            figures[workers] = (wall, cpu, used() - before if group is not None else None, full, statuses)
            print(f"rnncourse grade --scheduler, {workers} worker(s): {wall:6.1f} s wall, {cpu:6.1f} s CPU in the "
                  f"grader's process ({1000 * cpu / n:.0f} ms per submission), "
                  + (f"{figures[workers][2]:6.1f} s CPU on the workers ({figures[workers][2] / n:.2f} s per submission), "
                     if group is not None else "")
                  + f"{60 * n / wall:6.1f} submissions/min  (statuses: {statuses})")
            print(f"load average {os.getloadavg()[0]:.2f}")
        # The grader's once-per-batch cost (imports, the gradebook, the connection, the workers' check):
        # one submission through the same cluster; the rest of the 2-worker run's CPU is per submission.
        first = dict([next(iter(batch.items()))])
        _, once, _, _ = grade_with_rnncourse(work / "once", first, 1, env, cluster.address)
        writer = (figures[2][1] - once) / max(n - 1, 1)
        print(f"the grader's process: {once:.1f} s CPU once per batch (one submission's run), then "
              f"{1000 * writer:.0f} ms CPU per submission (the 2-worker run's rest, over {n - 1})")
    finally:
        cluster.close()
        if group is not None:
            for _ in range(50):
                try:
                    group.rmdir()
                    break
                except OSError:
                    time.sleep(0.1)
    print(f"ratio (2 workers / 1 worker, submissions per minute): {figures[1][0] / figures[2][0]:.2f}")
    return figures


def machine():
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{os.cpu_count()} CPUs ({usable} usable), {model or 'unknown model'}; load average {os.getloadavg()[0]:.2f}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=60, help="submissions in the batch (default 60)")
    parser.add_argument("--workers", type=int, default=2, help="rnncourse grade --workers (default 2)")
    parser.add_argument("--seed", type=int, default=0, help="which realistic batch (default 0)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder and print where it is")
    parser.add_argument("--no-cluster", action="store_true", help="skip the Dask cluster path (1 and 2 local workers)")
    parser.add_argument("--no-nbgrader", action="store_true", help="skip nbgrader autograde")
    args = parser.parse_args(argv)

    batch = corpus.realistic_batch(args.n, args.seed)
    kinds = {}
    for _, kind, _ in batch.values():
        kinds[kind] = kinds.get(kind, 0) + 1
    print(f"machine: {machine()}")
    print(f"batch: {args.n} submissions of {ASSIGNMENT}: " + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())))

    work = Path(tempfile.mkdtemp(prefix="grade-vs-nbgrader-"))
    env = venv_env()
    try:
        rc_wall, rc_cpu, rc_full, statuses = grade_with_rnncourse(work / "rnncourse", batch, args.workers, env)
        print(f"rnncourse grade --workers {args.workers}: {rc_wall:6.1f} s wall, {rc_cpu:6.1f} s CPU, "
              f"{60 * args.n / rc_wall:6.1f} submissions/min  (statuses: {statuses})")
        print(f"load average {os.getloadavg()[0]:.2f}")
        nb_full = None
        if not args.no_nbgrader:
            nb_wall, nb_cpu, nb_full = grade_with_nbgrader(work / "nbgrader", batch, env)
            print(f"nbgrader autograde:         {nb_wall:6.1f} s wall, {nb_cpu:6.1f} s CPU, "
                  f"{60 * args.n / nb_wall:6.1f} submissions/min")
            print(f"ratio (rnncourse / nbgrader, submissions per minute): {nb_wall / rc_wall:.2f}")
            print(f"load average {os.getloadavg()[0]:.2f}")
        if not args.no_cluster:
            figures = grade_on_cluster(work / "cluster", batch, env, args.n)
            print(f"ratio (--scheduler with 2 workers / --workers {args.workers}, submissions per minute): "
                  f"{rc_wall / figures[2][0]:.2f}")
            for workers, (*_, full, _) in figures.items():
                if full != rc_full:
                    print(f"DISAGREEMENT: the cluster with {workers} worker(s) and the local path differ on full marks")
        nb_full = rc_full if nb_full is None else nb_full

        expected = {s: full for s, (_, _, full) in batch.items()}
        disagreements = [s for s in sorted(batch) if not (rc_full.get(s) == nb_full.get(s) == expected[s])]
        print(f"full marks on the auto-graded part: rnncourse {sum(map(bool, rc_full.values()))}, "
              f"nbgrader {sum(map(bool, nb_full.values()))}, expected {sum(expected.values())}")
        if disagreements:
            print("disagreements (student, kind, rnncourse, nbgrader, expected):")
            for s in disagreements:
                print(f"  {s} {batch[s][1]:30s} {rc_full.get(s)} {nb_full.get(s)} {expected[s]}")
        else:
            print("no disagreement: both give full marks to exactly the right submissions")
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
