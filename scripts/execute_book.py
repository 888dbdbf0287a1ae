"""Execute the book's notebook pages in parallel into the build's cache, before the build.

Usage: python scripts/execute_book.py [--jobs N] [--build-dir _build] [PAGE ...]

With PAGE arguments (source files such as book/05_gru.md), only those pages.

`jupyter-book build` executes the pages one after another, and each page runs
with one BLAS thread (see the Makefile), so on a machine with two cores one of
them idles through the whole execution phase. This script fills the same
jupyter-cache that the build reads (``<build-dir>/.jupyter_cache``, the
``execute_notebooks: cache`` mode of ``_config.yml``) by executing the pages N
at a time, longest first; the build then finds every page in the cache and
only renders it. Nothing else changes: each page is read by myst-nb's own
reader, executed by the same function as in the build (jupyter-cache's
``single_nb_execution``) in the page's folder, with the timeout and
``allow_errors`` of ``_config.yml``, and cached with its execution time as
the build would cache it (so ``scripts/exec_times.py`` reports it). A page
already in the cache (unchanged since it last ran) is not run again.

A page that fails does not stop the others. Its error is printed, and the
script exits with status 1 once every page has run (so `make book` stops
there, without running the failed pages a second time in the build). The
pages that succeeded are cached: the next `make book` runs only the others.

"Longest first" uses the time each page took the last time it was cached
(an unchanged page is skipped anyway; a changed one keeps its old record
until cleaned). Pages never run before (all of them in a clean build) come
first, in reverse order of the table of contents: the later chapters run the
larger experiments, and a slow page started last leaves the other workers
idle. On the clean build of 7 December 2026 (19 pages, 2 at a time) the
table-of-contents order ended with chapter 9 running alone; replaying the
measured page times, that order takes 1146 s (1152 s measured), the reverse
order 1055 s, longest first 1049 s.
"""

import argparse
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "book"))
from booktools import toc_files  # noqa: E402  (the table of contents, read as the book's tests read it)

# The jupyter-cache reader that myst-nb records for each kind of source (myst_nb/core/read.py).
READERS = {".md": {"name": "myst_nb_md", "type": "plugin"}, ".ipynb": {"name": "nbformat", "type": "plugin"}}


def notebook_sources(root):
    """The source files of the pages that myst-nb executes: .ipynb files, and MyST Markdown notebooks."""
    from myst_nb.core.read import is_myst_markdown_notebook

    sources = []
    for page in toc_files(root / "_toc.yml"):
        for path in [root / page] if Path(page).suffix in READERS else [root / (page + s) for s in READERS]:
            if path.is_file():
                if path.suffix == ".ipynb" or is_myst_markdown_notebook(path.read_text(encoding="utf-8")):
                    sources.append(path)
                break
    return sources


def read_notebook(path):
    """The page's notebook, read by the reader that myst-nb uses for it in the build."""
    from jupyter_cache.readers import get_reader

    return get_reader(READERS[path.suffix])(str(path))


def execution_config(root):
    """(mode, timeout, allow_errors) from _config.yml's `execute` section, with jupyter-book's defaults."""
    config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8")) or {}
    execute = config.get("execute") or {}
    return (execute.get("execute_notebooks", "auto"), execute.get("timeout", 30),
            bool(execute.get("allow_errors", False)))


def last_seconds(cache, path):
    """Seconds the page took when it was last cached, or None if it never was."""
    records = [r for r in cache.list_cache_records() if Path(r.uri) == path]
    if not records:
        return None
    newest = max(records, key=lambda r: r.created)
    return newest.data.get("execution_seconds")


def run_order(pages):
    """[(path, last seconds or None)] in table-of-contents order -> the order to start them in.

    Never run before (None) first, in reverse table-of-contents order; then the slowest first.
    """
    never = [item for item in pages if item[1] is None]
    known = [item for item in pages if item[1] is not None]
    return never[::-1] + sorted(known, key=lambda item: -item[1])


def execute(path, timeout, allow_errors):
    """Run one page's notebook in its folder (in a worker process): (notebook, seconds, error text or None)."""
    from jupyter_cache.executors.utils import single_nb_execution

    notebook = read_notebook(path)
    result = single_nb_execution(notebook, cwd=str(path.parent), timeout=timeout,
                                 allow_errors=allow_errors, meta_override=True)
    return result.nb, result.time, result.exc_string


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    parser.add_argument("--jobs", type=int, default=available,
                        help=f"pages executed at once (default: the CPUs available, here {available})")
    parser.add_argument("--build-dir", type=Path, default=ROOT / "_build",
                        help="the book's build folder (default: _build)")
    parser.add_argument("pages", nargs="*", type=Path, metavar="PAGE",
                        help="only these pages of the table of contents (default: all)")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1, got {args.jobs}")

    mode, timeout, allow_errors = execution_config(ROOT)
    if mode != "cache":
        print(f"_config.yml executes notebooks with '{mode}', not 'cache': the build runs them itself")
        return 0

    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    cache = get_cache(str(args.build_dir / ".jupyter_cache"))
    sources = notebook_sources(ROOT)
    if args.pages:
        wanted = {page.resolve() for page in args.pages}
        unknown = sorted(str(page) for page in wanted - set(sources))
        if unknown:
            print(f"Not notebook pages of _toc.yml: {', '.join(unknown)}; expected files such as "
                  f"{sources[0].relative_to(ROOT)}")
            return 2
        sources = [path for path in sources if path in wanted]
    to_run = []
    for path in sources:
        try:
            cache.match_cache_notebook(read_notebook(path))
        except KeyError:
            to_run.append((path, last_seconds(cache, path)))
    cached = len(sources) - len(to_run)
    to_run = run_order(to_run)
    if not to_run:
        print(f"All {cached} notebook page(s) unchanged since they were executed: nothing to run")
        return 0
    print(f"Executing {len(to_run)} page(s), {args.jobs} at a time ({cached} unchanged, taken from the cache)",
          flush=True)

    failed = []
    started = time.monotonic()
    with ProcessPoolExecutor(max_workers=args.jobs, mp_context=get_context("spawn")) as pool:
        futures = {pool.submit(execute, path, timeout, allow_errors): path for path, _ in to_run}
        for future in as_completed(futures):
            path = futures[future]
            name = path.relative_to(ROOT)
            try:
                notebook, seconds, error = future.result()
            except Exception as err:  # the kernel would not start, the file vanished...
                notebook, seconds, error = None, 0.0, f"{type(err).__name__}: {err}"
            if error is not None:
                failed.append(name)
                print(f"  FAILED {name} after {seconds:.1f} s:\n{error}", flush=True)
                continue
            # As myst-nb caches a page it executed itself (myst_nb/core/execute/cache.py).
            cache.add_nb_to_project(str(path), read_data=READERS[path.suffix])
            cache.cache_notebook_bundle(CacheBundleIn(notebook, str(path), data={"execution_seconds": seconds}),
                                        check_validity=False, overwrite=True)
            print(f"  {name}: {seconds:.1f} s", flush=True)

    print(f"Executed {len(to_run) - len(failed)} of {len(to_run)} page(s) in {time.monotonic() - started:.0f} s",
          flush=True)
    if failed:
        print("Failed: " + ", ".join(map(str, failed)) + " (the others are cached; fix these and build again)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
