"""Print how long each page of the book took to execute, after a build.

Usage: python scripts/exec_times.py [--build-dir _build] [--max-seconds S]

The times come from the build itself. myst-nb records, for every notebook
page it executed or took from the cache, the execution data of the run that
produced its outputs: seconds, whether it succeeded, and when that run
happened (a page whose notebook did not change is taken from the cache, not
re-run). Sphinx keeps them in ``<build-dir>/.doctrees/environment.pickle``.
If that file cannot be read, the times are read from the jupyter-cache in
``<build-dir>/.jupyter_cache`` instead (the newest record of each page).

With ``--max-seconds`` the script exits with status 1 if any page took longer.
"""

import argparse
import pickle
import sys
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def times_from_environment(build_dir):
    """{docname: (seconds, succeeded, how)} from the Sphinx environment, or None."""
    path = build_dir / ".doctrees" / "environment.pickle"
    if not path.is_file():
        return None
    try:
        with path.open("rb") as f:
            env = pickle.load(f)  # needs sphinx and myst_nb importable: run with the book's venv
    except Exception as err:  # an environment from another Sphinx version, a partial write...
        print(f"note: could not read {path} ({err}); trying the jupyter-cache", file=sys.stderr)
        return None
    rows = {}
    for docname, meta in getattr(env, "nb_metadata", {}).items():
        data = meta.get("exec_data") if isinstance(meta, dict) else None
        if data:
            when = data.get("mtime")
            how = f"run {datetime.fromtimestamp(when):%Y-%m-%d %H:%M:%S}" if when else ""
            rows[docname] = (float(data.get("runtime") or 0.0), bool(data.get("succeeded")), how)
    return rows


def times_from_cache(build_dir):
    """{page: (seconds, True, "run <date>")} from the newest jupyter-cache record of each source file."""
    path = build_dir / ".jupyter_cache"
    if not path.is_dir():
        return None
    from jupyter_cache import get_cache

    newest = {}
    for record in get_cache(str(path)).list_cache_records():
        uri = Path(record.uri)
        try:
            name = str(uri.relative_to(ROOT).with_suffix(""))
        except ValueError:
            name = str(uri)
        if name not in newest or record.created > newest[name].created:
            newest[name] = record
    return {
        name: (float(record.data.get("execution_seconds", 0.0)), True, f"run {record.created:%Y-%m-%d %H:%M:%S}")
        for name, record in newest.items()
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-dir", type=Path, default=ROOT / "_build",
                        help="the book's build folder (default: _build)")
    parser.add_argument("--max-seconds", type=float, default=None,
                        help="exit with status 1 if a page took longer than this")
    args = parser.parse_args(argv)

    rows = times_from_environment(args.build_dir)
    source = "build environment"
    if not rows:
        rows = times_from_cache(args.build_dir)
        source = "jupyter-cache"
    if not rows:
        print(f"No execution times in {args.build_dir}: build the book first (make book).")
        return 1

    width = max(len(name) for name in rows)
    print(f"Execution time of each page (from the {source}):")
    print(f"  {'page':<{width}}  {'seconds':>8}  status")
    for name in sorted(rows):
        seconds, ok, how = rows[name]
        status = ("ok" if ok else "FAILED") + (f", {how}" if how else "")
        print(f"  {name:<{width}}  {seconds:8.1f}  {status}")
    total = sum(seconds for seconds, _, _ in rows.values())
    print(f"  {'total':<{width}}  {total:8.1f}")

    if args.max_seconds is not None:
        slow = [name for name, (seconds, _, _) in rows.items() if seconds > args.max_seconds]
        if slow:
            print(f"Pages over {args.max_seconds:g} s: {', '.join(sorted(slow))}")
            return 1
    return 0 if all(ok for _, ok, _ in rows.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
