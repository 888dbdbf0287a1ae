"""Checks of assignment 01, sequence modeling: one-hot, embeddings, perplexity (the trusted side).

The learner writes ``one_hot(idx, V)``, ``embedding_forward(idx, W)``,
``embedding_backward(dout, cache)`` and ``perplexity(probs, y)`` (how they are
called: :mod:`rnncourse.checks.calls.sequence_modeling`; the cache of an
embedding is its two inputs, ``(idx, W)``, so its backward's case holds them). The
references are :func:`rnncourse.numpy.embedding_forward` and
:func:`~rnncourse.numpy.embedding_backward` (a one-hot encoding is the
embedding whose matrix is the identity) and
:func:`~rnncourse.numpy.temporal_softmax_loss` (the softmax of ``log p`` is
``p``, so the loss on ``log p`` is the cross-entropy of ``p``).
"""

import numpy as np

from rnncourse.numpy import embedding_backward, embedding_forward, temporal_softmax_loss

from ._core import Case, Check, Mistake, describe, random_cases, random_dims

THREE = (np.float64, np.float64, np.float32)  # the dtypes of most hidden cases here


# --- one_hot --------------------------------------------------------------------------


def _one_hot_reference(i):
    V = int(i["V"])
    return {"out": embedding_forward(i["idx"], np.eye(V))[0]}


def _ids(rng, N, T, V, high=None):
    return rng.integers(0, V if high is None else high, size=(N, T))


def _one_hot_hidden(rng):
    cases = []
    for _ in range(4):
        d = random_dims(rng, N=(1, 4), T=(1, 6), V=(2, 12))
        idx = _ids(rng, d["N"], d["T"], d["V"])
        cases.append((describe(d, np.float64), {"idx": idx, "V": np.array(d["V"])}))
    return cases


ONE_HOT = Check(
    name="one_hot",
    reference=_one_hot_reference,
    visible=(
        Case(
            "every_token",
            "N=2, T=3, V=5",
            "out[n, t] must be 1 at column idx[n, t] and 0 elsewhere.",
            lambda rng: {"idx": np.array([[0, 3, 4], [2, 1, 3]]), "V": np.array(5)},
        ),
        Case(
            "unused_tokens",
            "V=7 but idx only holds ids below 4",
            "out[n, t] must be 1 at column idx[n, t] and 0 elsewhere.",
            lambda rng: {"idx": np.array([[3, 0, 1], [1, 2, 3]]), "V": np.array(7)},
            shape_hint="V is given: tokens of the vocabulary that do not occur in idx still get a column.",
        ),
    ),
    hidden=_one_hot_hidden,
    mistakes=(
        Mistake(
            "The 1 is in the wrong column: it belongs at column idx[n, t], counting from 0.",
            lambda i: {"out": embedding_forward(np.clip(i["idx"] - 1, 0, None), np.eye(int(i["V"])))[0]},
        ),
    ),
)


# --- embedding_forward ----------------------------------------------------------------


def _embedding_inputs(rng, N, T, V, D, dtype=np.float64, high=None):
    return {"idx": _ids(rng, N, T, V, high), "W": rng.standard_normal((V, D)).astype(dtype)}


def _embedding_hidden(rng):
    return random_cases(rng, _embedding_inputs, THREE, N=(1, 4), T=(1, 6), V=(2, 10), D=(1, 6))


EMBEDDING_FORWARD = Check(
    name="embedding_forward",
    reference=lambda i: {"out": embedding_forward(i["idx"], i["W"])[0]},
    visible=(
        Case(
            "lookup",
            "N=2, T=3, V=5, D=4",
            "out[n, t] must be row idx[n, t] of W.",
            lambda rng: _embedding_inputs(rng, 2, 3, 5, 4),
        ),
    ),
    hidden=_embedding_hidden,
    mistakes=(
        Mistake(
            "out[n, t] holds the embedding of another token: it must be W[idx[n, t]].",
            lambda i: {"out": i["W"][np.clip(i["idx"] - 1, 0, None)]},
        ),
    ),
)


# --- embedding_backward ---------------------------------------------------------------


def _embedding_backward_reference(i):
    _, cache = embedding_forward(i["idx"], i["W"])
    return {"dW": embedding_backward(i["dout"], cache)}


def _assign_instead_of_add(i):
    """``dW[idx] += dout``: with a repeated id NumPy keeps one of the contributions, not their sum."""
    V, D = i["W"].shape
    dW = np.zeros((V, D))
    dW[i["idx"].ravel()] += i["dout"].reshape(-1, D)
    return {"dW": dW}


def _mean_per_token(i):
    V, D = i["W"].shape
    ids, dout = i["idx"].ravel(), i["dout"].reshape(-1, D)
    dW = np.zeros((V, D))
    np.add.at(dW, ids, dout)
    counts = np.bincount(ids, minlength=V)
    return {"dW": dW / np.maximum(counts, 1)[:, None]}


def _embedding_backward_inputs(rng, N, T, V, D, dtype=np.float64, idx=None):
    inputs = _embedding_inputs(rng, N, T, V, D, dtype)
    if idx is not None:
        inputs["idx"] = np.asarray(idx)
    inputs["dout"] = rng.standard_normal((N, T, D)).astype(dtype)
    return inputs


def _embedding_backward_hidden(rng):
    # small V: ids repeat
    return random_cases(rng, _embedding_backward_inputs, THREE, N=(2, 4), T=(2, 6), V=(2, 6), D=(1, 5))


EMBEDDING_BACKWARD = Check(
    name="embedding_backward",
    reference=_embedding_backward_reference,
    visible=(
        Case(
            "distinct_ids",
            "every id at most once, V=6 with two ids unused",
            "Row i of dW is dout at the position of token i, and 0 for a token that does not occur.",
            lambda rng: _embedding_backward_inputs(rng, 2, 2, 6, 3, idx=[[4, 0], [2, 5]]),
        ),
        Case(
            "repeated_ids",
            "ids that occur several times",
            "A token that occurs several times collects the sum of dout over all its positions.",
            lambda rng: _embedding_backward_inputs(rng, 2, 3, 5, 3, idx=[[1, 3, 1], [1, 0, 3]]),
        ),
    ),
    hidden=_embedding_backward_hidden,
    mistakes=(
        Mistake(
            "A repeated token kept only one of its gradients: dW[idx] += dout does not add repeated "
            "ids up. Use np.add.at(dW, idx, dout) or a loop.",
            _assign_instead_of_add,
        ),
        Mistake(
            "A repeated token got the mean of its gradients; it must get their sum.",
            _mean_per_token,
        ),
    ),
)


# --- perplexity -----------------------------------------------------------------------


def _perplexity_reference(i):
    # softmax(log p) = p when each row of p sums to 1, so this loss is -mean log p[y].
    # A probability of 0 (log = -inf) is allowed: it only zeroes that entry of the softmax.
    with np.errstate(divide="ignore"):
        log_p = np.log(i["probs"])
    cross_entropy, _ = temporal_softmax_loss(log_p, i["y"])
    return {"perplexity": np.exp(np.float64(cross_entropy))}


def _log_p_of_y(i):
    N, T, _ = i["probs"].shape
    return np.log(i["probs"][np.arange(N)[:, None], np.arange(T)[None, :], i["y"]])


def _probs(rng, N, T, V, dtype=np.float64):
    logits = 1.5 * rng.standard_normal((N, T, V))
    p = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return (p / p.sum(axis=-1, keepdims=True)).astype(dtype)


def _perplexity_inputs(rng, N, T, V, dtype=np.float64):
    return {"probs": _probs(rng, N, T, V, dtype), "y": _ids(rng, N, T, V)}


def _uniform(rng):
    return {"probs": np.full((2, 3, 4), 0.25), "y": _ids(rng, 2, 3, 4)}


def _perfect(rng):
    y = _ids(rng, 2, 3, 4)
    return {"probs": np.eye(4)[y], "y": y}


def _perplexity_hidden(rng):
    return random_cases(rng, _perplexity_inputs, THREE, N=(1, 4), T=(2, 7), V=(2, 9))


PERPLEXITY = Check(
    name="perplexity",
    reference=_perplexity_reference,
    visible=(
        Case(
            "uniform",
            "a uniform model over V=4 tokens",
            "A model that spreads its probability evenly over V tokens has perplexity exactly V.",
            _uniform,
            shape_hint="The perplexity is one number for the whole batch: average over all N * T tokens.",
        ),
        Case(
            "perfect",
            "a model that gives the right token probability 1",
            "A model that gives every correct token probability 1 has perplexity 1.",
            _perfect,
            shape_hint="The perplexity is one number for the whole batch: average over all N * T tokens.",
        ),
        Case(
            "general",
            "N=2, T=3, V=5",
            "perplexity = exp(-mean over all n, t of log probs[n, t, y[n, t]]).",
            lambda rng: _perplexity_inputs(rng, 2, 3, 5),
            shape_hint="The perplexity is one number for the whole batch: average over all N * T tokens.",
        ),
    ),
    hidden=_perplexity_hidden,
    mistakes=(
        Mistake(
            "The sign: that is 1 / perplexity. Perplexity is exp of the *negative* mean log-probability.",
            lambda i: {"perplexity": np.exp(_log_p_of_y(i).mean())},
        ),
        Mistake(
            "The log-probabilities are summed; perplexity uses their mean over the N * T tokens.",
            lambda i: {"perplexity": np.exp(-_log_p_of_y(i).sum())},
        ),
        Mistake(
            "That is the mean of the per-sequence perplexities; average the log-probabilities over all "
            "tokens first, then take exp once.",
            lambda i: {"perplexity": np.exp(-_log_p_of_y(i).mean(axis=1)).mean()},
        ),
        Mistake(
            "The probabilities were averaged; average the log-probabilities instead (a geometric mean).",
            lambda i: {"perplexity": 1 / np.exp(_log_p_of_y(i)).mean()},
        ),
        Mistake(
            "Read the probability of the correct token y[n, t], not the largest probability.",
            lambda i: {"perplexity": np.exp(-np.log(i["probs"].max(axis=-1)).mean())},
        ),
        Mistake(
            "The bases differ: exp goes with the natural log (or 2 ** with log2), not a mix.",
            lambda i: {"perplexity": 2.0 ** (-_log_p_of_y(i).mean())},
        ),
    ),
)


CHECKS = (ONE_HOT, EMBEDDING_FORWARD, EMBEDDING_BACKWARD, PERPLEXITY)
