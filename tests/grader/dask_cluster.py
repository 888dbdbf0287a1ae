"""A Dask cluster of 127.0.0.1 made of real processes: ``dask scheduler`` and ``dask worker`` (each under its nanny).

Used by test_cluster.py and by benchmarks/grade_vs_nbgrader.py. Every process
is started in a session of its own, so that :meth:`LocalDaskCluster.close`
stops each one (a nanny and its worker together) and nothing else.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

DASK = Path(sys.executable).with_name("dask")
THREADS = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


class LocalDaskCluster:
    """A scheduler and ``workers`` workers of one thread each; ``client`` is a distributed.Client of it.

    ``env`` is added to the processes' environment (e.g. Dask configuration as
    ``DASK_DISTRIBUTED__...`` variables); ``preexec_fn`` runs in each worker
    before it starts (the benchmark puts them in a cpuacct cgroup). Logs go to
    ``folder/<name>.log``.
    """

    def __init__(self, folder, workers=2, env=None, preexec_fn=None):
        from distributed import Client

        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.env = dict(os.environ, **THREADS, **(env or {}))
        self.preexec_fn = preexec_fn
        self.file = self.folder / "scheduler.json"
        self.processes, self.logs = [], []
        try:
            self._start("scheduler", [str(DASK), "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                                      "--scheduler-file", str(self.file)])
            deadline = time.monotonic() + 120
            while not self.file.exists():
                if time.monotonic() > deadline or self.processes[0].poll() is not None:
                    raise RuntimeError(f"the Dask scheduler did not start: see {self.folder / 'scheduler.log'}")
                time.sleep(0.2)
            self.client = Client(scheduler_file=str(self.file), timeout=60, set_as_default=False)
            self.address = self.client.scheduler.address
            for _ in range(workers):
                self.add_worker()
        except BaseException:
            self.close()
            raise

    def _start(self, name, cmd, preexec_fn=None):
        log = open(self.folder / f"{name}.log", "w")
        self.logs.append(log)
        self.processes.append(subprocess.Popen(cmd, env=self.env, cwd=self.folder, stdout=subprocess.DEVNULL, stderr=log,
                                               start_new_session=True, preexec_fn=preexec_fn))

    def add_worker(self):
        """Start one more worker (one thread, no memory limit of Dask's: the sandbox has its own) and wait for it."""
        n = len(self.processes)
        self._start(f"worker{n}", [str(DASK), "worker", "--scheduler-file", str(self.file), "--host", "127.0.0.1",
                                   "--nthreads", "1", "--name", f"w{n}", "--no-dashboard", "--memory-limit", "0",
                                   "--death-timeout", "60"], self.preexec_fn)
        self.client.wait_for_workers(n, timeout=120)

    def worker_pids(self):
        """``{worker address: pid of the worker process}`` (its nanny's child)."""
        return self.client.run(os.getpid)

    def close(self):
        client = getattr(self, "client", None)
        if client is not None:
            client.close()
        for proc in self.processes:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for proc in self.processes:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        for log in self.logs:
            log.close()
