"""scripts/execute_book.py executes, before the build, exactly the notebooks the build would execute.

If it missed a page, the build would run that page itself, one page at a time;
if the notebook it caches differed from the one myst-nb reads in the build (in
a code cell, its metadata or the kernelspec), the build would find no match in
the cache and run every page again: correct, but as slow as before. Both
failures are silent in the build's output, so they are checked here.
"""

import importlib.util

import pytest
import yaml

from booktools import ROOT, source_of, toc_files


def load_script():
    spec = importlib.util.spec_from_file_location("execute_book", ROOT / "scripts" / "execute_book.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


execute_book = load_script()


def test_every_page_with_code_is_executed_beforehand():
    with_code = [source_of(page) for page in toc_files()
                 if "```{code-cell}" in source_of(page).read_text(encoding="utf-8")]
    assert with_code, "no page of the book has a code cell: the test reads the wrong folder"
    assert execute_book.notebook_sources(ROOT) == with_code


def test_pages_without_code_are_not_executed():
    sources = execute_book.notebook_sources(ROOT)
    assert ROOT / "book" / "references.md" not in sources


def build_reader_notebook(path):
    """The notebook myst-nb reads for the page during the build, with the book's MyST configuration."""
    from myst_nb.core.config import NbParserConfig
    from myst_nb.core.read import create_nb_reader
    from myst_parser.config.main import MdParserConfig

    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    md_config = MdParserConfig(enable_extensions=set(config["parse"]["myst_enable_extensions"]))
    text = path.read_text(encoding="utf-8")
    reader = create_nb_reader(str(path), md_config, NbParserConfig(), text)
    assert reader is not None, f"myst-nb does not read {path.name} as a notebook"
    return reader.read(text), reader.read_fmt


@pytest.mark.parametrize("path", execute_book.notebook_sources(ROOT), ids=lambda p: p.stem)
def test_cached_notebook_matches_the_one_the_build_reads(path, tmp_path):
    from jupyter_cache import get_cache

    cache = get_cache(str(tmp_path / "cache"))
    ours = execute_book.read_notebook(path)
    theirs, read_fmt = build_reader_notebook(path)
    assert execute_book.READERS[path.suffix] == read_fmt, "the project record names another reader than myst-nb's"
    assert cache.create_hashed_notebook(ours)[1] == cache.create_hashed_notebook(theirs)[1]


def test_execution_config_is_the_books():
    mode, timeout, allow_errors = execute_book.execution_config(ROOT)
    assert (mode, allow_errors) == ("cache", False)
    assert timeout >= 60


def test_run_order_starts_new_pages_from_the_end_then_the_slowest():
    pages = [("a", None), ("b", 5.0), ("c", None), ("d", 50.0), ("e", 20.0)]
    assert [name for name, _ in execute_book.run_order(pages)] == ["c", "a", "d", "e", "b"]
