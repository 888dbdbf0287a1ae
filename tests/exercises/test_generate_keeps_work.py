"""``make exercises`` never overwrites a learner's work (scripts/generate_exercises.py's manifest)."""

import json
import shutil

from exercisetools import EXERCISES, load_script

SCRIPT = load_script()


def _generated(tmp_path, text):
    """A stand-in for a generated release of 02_rnn: the real notebook with ``text`` in a new markdown cell."""
    folder = tmp_path / "generated"
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "02_rnn").mkdir(parents=True)
    nb = json.loads((EXERCISES / "02_rnn" / "02_rnn.ipynb").read_text())
    nb["cells"].append({"cell_type": "markdown", "metadata": {}, "source": text})
    (folder / "02_rnn" / "02_rnn.ipynb").write_text(json.dumps(nb))
    return folder


def test_a_notebook_changed_since_it_was_generated_is_skipped_unless_forced(tmp_path):
    """Fails if install overwrites saved answers, deletes a learner's other files, or never updates a notebook."""
    release = tmp_path / "release"
    release.mkdir()
    notebook = release / "02_rnn" / "02_rnn.ipynb"
    assert SCRIPT.install(_generated(tmp_path, "version 1"), ["02_rnn"], release) == []
    assert "version 1" in notebook.read_text()
    # untouched since written: a new version replaces it
    assert SCRIPT.install(_generated(tmp_path, "version 2"), ["02_rnn"], release) == []
    assert "version 2" in notebook.read_text()
    # the learner saves answers, and keeps a file of their own beside it
    answers = notebook.read_text().replace("version 2", "my answers")
    notebook.write_text(answers)
    (release / "02_rnn" / "scratch.py").write_text("mine")
    assert SCRIPT.install(_generated(tmp_path, "version 3"), ["02_rnn"], release) == ["02_rnn/02_rnn.ipynb"]
    assert notebook.read_text() == answers and (release / "02_rnn" / "scratch.py").read_text() == "mine"
    # still skipped the next time (the record is of what the script wrote, not of what it found)
    assert SCRIPT.install(_generated(tmp_path, "version 3"), ["02_rnn"], release) == ["02_rnn/02_rnn.ipynb"]
    assert SCRIPT.install(_generated(tmp_path, "version 3"), ["02_rnn"], release, force=True) == []
    assert "version 3" in notebook.read_text() and (release / "02_rnn" / "scratch.py").exists()
    # a file that holds the new version already is not the learner's
    notebook.write_text((tmp_path / "generated" / "02_rnn" / "02_rnn.ipynb").read_text())
    json.loads((release / SCRIPT.MANIFEST).read_text())  # the record stays JSON
    assert SCRIPT.install(_generated(tmp_path, "version 3"), ["02_rnn"], release) == []


def test_make_exercises_says_what_it_skipped(tmp_path, monkeypatch, capsys):
    release = tmp_path / "release"
    shutil.copytree(EXERCISES, release)
    monkeypatch.setattr(SCRIPT, "RELEASE", release)
    generated = _generated(tmp_path, "a new version")
    monkeypatch.setattr(SCRIPT, "generate", lambda ids, release=None: shutil.copytree(generated, release, dirs_exist_ok=True))
    (release / "02_rnn" / "02_rnn.ipynb").write_text("{}")  # a learner's save (any change)
    assert SCRIPT.main(["02_rnn"]) == 0
    out = capsys.readouterr().out
    assert "skipped exercises/02_rnn/02_rnn.ipynb" in out and "FORCE=1" in out
    assert (release / "02_rnn" / "02_rnn.ipynb").read_text() == "{}"
    assert SCRIPT.main(["02_rnn", "--force"]) == 0
    assert "a new version" in (release / "02_rnn" / "02_rnn.ipynb").read_text()


def test_the_committed_record_matches_the_committed_exercises():
    """Fails if exercises/ was regenerated without its record: a fresh clone's `make exercises` would then
    take the committed notebooks for a learner's work and never update them."""
    manifest = SCRIPT.read_manifest(EXERCISES)
    files = {p.relative_to(EXERCISES).as_posix() for p in EXERCISES.glob("*/*") if p.is_file()}
    assert set(manifest) == files
    for rel, digest in manifest.items():
        assert SCRIPT.sha256(EXERCISES / rel) == digest, rel
