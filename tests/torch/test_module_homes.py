"""Each training helper has one home by subject; the old import paths still give the same objects."""

import subprocess
import sys

import pytest

import rnncourse.datasets as datasets
import rnncourse.torch as rt
from rnncourse.torch import checkpoint, ctc, data, models, runtime, train

HOMES = {
    runtime: ["seed_everything", "select_device", "to_device"],
    data: ["batchify_stream", "tbptt_chunks", "stream_cross_entropy", "LengthBuckets", "pad_batch",
           "series_windows"],
    train: ["History", "fit"],
    checkpoint: ["save_checkpoint", "load_checkpoint", "CHECKPOINT_FORMAT"],
    ctc: ["ctc_greedy_decode", "ctc_collapse", "ctc_forward", "edit_distance", "label_error_rate", "ctc_batch"],
    datasets: ["MONTHS", "DATE_FORMATS", "format_date", "date_translation_pairs", "number_to_words",
               "number_words", "number_alignment", "number_translation_pairs"],
}


@pytest.mark.parametrize("module, name", [(m, n) for m, names in HOMES.items() for n in names],
                         ids=lambda x: getattr(x, "__name__", x))
def test_each_name_is_defined_in_its_home(module, name):
    obj = getattr(module, name)
    if callable(obj):
        assert obj.__module__ == module.__name__, f"{name} is defined in {obj.__module__}, not {module.__name__}"
    assert name in module.__all__


# The paths the book, the API page, the exercises and the tests used before the split.
OLD_PATHS = {
    models: ["ctc_greedy_decode"],
    train: HOMES[runtime] + ["batchify_stream", "tbptt_chunks", "stream_cross_entropy", "LengthBuckets"],
    data: HOMES[datasets],
    rt: HOMES[runtime] + HOMES[data] + HOMES[train] + HOMES[datasets] + ["ctc_greedy_decode"],
}


@pytest.mark.parametrize("module, name", [(m, n) for m, names in OLD_PATHS.items() for n in names],
                         ids=lambda x: getattr(x, "__name__", x))
def test_the_old_import_paths_give_the_same_objects(module, name):
    home = next(m for m, names in HOMES.items() if name in names)
    assert getattr(module, name) is getattr(home, name)
    if module is not rt:  # the package itself gathers its modules' __all__ with star imports
        assert name in module.__all__, f"from {module.__name__} import * would miss {name}"


@pytest.mark.parametrize("module", ["rnncourse.datasets", "rnncourse.validation"])
def test_the_data_sets_import_no_torch(module):
    code = f"import sys, {module}; assert 'torch' not in sys.modules, 'importing {module} imported torch'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_data_sets_make_the_same_pairs_as_before_the_move():
    # The seeded pairs the chapter trains on: a change of the draws would move every number of chapter 6.
    train_pairs, test_pairs = datasets.number_translation_pairs(20500, 2000, seed=0, max_digits=9)
    assert train_pairs[:2] == [
        ("sixty-seven million three hundred and twenty-six thousand five hundred and fifty-one", "67326551"),
        ("thirty-four thousand two hundred and eighty", "34280"),
    ]
    assert len(test_pairs) == 2000
