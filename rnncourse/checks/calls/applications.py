"""How the checks of 07_applications call the learner's functions (cases and judge: :mod:`rnncourse.checks.applications`).

``pad_sequences`` gets a list of arrays: the case holds them end to end
(``flat``) with their ``lengths``, and the run splits them. ``train_char_lm``
returns its parameters, which travel back as ``params.<name>`` arrays.
"""

from collections.abc import Mapping

import numpy as np

from . import Call, Needs, OutputError, Written, call, call_and_unpack

ASSIGNMENT = "07_applications"

PARAM_NAMES = ("W_embed", "Wx", "Wh", "b", "bx", "bh", "W_out", "b_out")
PARAMS_PREFIX = "params."
PARAM_AXES = {
    "W_embed": "V E", "Wx": "E GH", "Wh": "H GH", "b": "GH", "bx": "GH", "bh": "GH", "W_out": "H V", "b_out": "V",
}  # fmt: skip


def split_sequences(i):
    """The list of sequences a ``pad_sequences`` case stands for."""
    return np.split(i["flat"], np.cumsum(i["lengths"])[:-1])


def _pad_run(fns, i, out):
    out["padded"], out["lengths"], out["mask"] = call_and_unpack(
        fns, "pad_sequences", ("padded", "lengths", "mask"), split_sequences(i), int(i["pad_value"])
    )


def _train_run(fns, i, out):
    params = call(fns, "train_char_lm", i["ids"], int(i["vocab_size"]))
    if isinstance(getattr(params, "params", None), Mapping):
        raise OutputError(
            f"train_char_lm returned a {type(params).__name__}; return its parameters, model.params (a dict of arrays)"
        )
    if not isinstance(params, Mapping):
        raise OutputError(
            f"train_char_lm returned a {type(params).__name__}; expected a dict name -> array laid out as CharRNN.params"
        )
    if not any(k in params for k in PARAM_NAMES) and any("weight" in str(k) for k in params):
        raise OutputError(
            "train_char_lm returned a PyTorch state_dict; convert it to CharRNN.params: W_embed = embedding.weight, "
            "Wx = weight_ih_l0.T, Wh = weight_hh_l0.T, b = bias_ih_l0 + bias_hh_l0, W_out = the head's weight.T, b_out"
        )
    for k in PARAM_NAMES:
        if k in params:
            out[PARAMS_PREFIX + k] = params[k]


CALLS = (
    Call(
        "bits_per_character", ASSIGNMENT, 3,
        outputs={"bpc": ""},
        args=("scores", "y", "mask"), optional=("mask",), returns=("bpc",),
    ),
    Call("pad_sequences", ASSIGNMENT, 2, outputs={"padded": "N T", "lengths": "N", "mask": "N T"}, run=_pad_run),
    Call("last_states", ASSIGNMENT, 2, outputs={"h_last": "N H"}, args=("h", "lengths"), returns=("h_last",)),
    Call(
        "sample_with_temperature", ASSIGNMENT, 2,
        outputs={"probs": "N V", "idx": "N"},
        args=("logits", "temperature", "u"), returns=("idx", "probs"),
    ),
    Call(
        "seasonal_naive", ASSIGNMENT, 2,
        outputs={"forecast": "N S"},
        args=("y", "season", "horizon"), returns=("forecast",),
    ),
    # What comes back (b for an rnn or lstm, bx and bh for a gru); judged by the
    # held-out metric, not compared with a reference.
    Call(
        "train_char_lm", ASSIGNMENT, 5,
        outputs={PARAMS_PREFIX + k: axes for k, axes in PARAM_AXES.items()},
        run=_train_run,
    ),
)  # fmt: skip

WRITTEN = (
    Written("q_lengths", ASSIGNMENT, 2, "why a many-to-one model on a padded batch must use the lengths"),
    Written("q_exposure_bias", ASSIGNMENT, 2, "exposure bias when a one-step forecaster is rolled out"),
)

# Problem 6 may train with CharRNN or with PyTorch. CharRNN brings rnncourse.numpy's models and its
# temporal_softmax_loss, which is bits_per_character times ln 2: the notebook hands that model over,
# and this one overlap with an assigned function comes with it.
NEEDS = Needs(
    course={
        "rnncourse.checks.char_lm": (
            "ALPHABET", "THRESHOLD_BPC", "baseline_bits_per_character", "char_lm_data", "char_lm_scores", "decode",
            "generate_text",
        ),
        "rnncourse.numpy": ("Adam", "CharRNN", "clip_grad_norm_global"),
    },
    libraries=("numpy", "matplotlib", "torch"),
)  # fmt: skip
