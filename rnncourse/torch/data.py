"""Batches for training recurrent models: language-model streams and length buckets.

- :func:`batchify_stream` and :func:`tbptt_chunks` turn one long token
  stream into the consecutive chunks that stateful truncated BPTT trains on
  (``fit(..., tbptt=True)``); :func:`stream_cross_entropy` scores a language
  model on such streams, the state carried from start to end.
- :class:`LengthBuckets`: minibatches of variable-length sequences of
  similar lengths, so that little of each batch is padding;
  :func:`pad_batch` builds each such batch.
- :func:`series_windows`: forecasting examples cut from one series.

The synthetic translation tasks (numbers and dates written in words) live in
:mod:`rnncourse.datasets`, with the other data sets of the book, since they
need no PyTorch; their names are also importable from here, where they were
first published.
"""

import numpy as np
import torch

from ..datasets import (  # noqa: F401  (re-exported: their first home was this module)
    DATE_FORMATS,
    MONTHS,
    TRANSLATION_TASKS,
    date_translation_pairs,
    format_date,
    number_alignment,
    number_to_words,
    number_translation_pairs,
    number_words,
)
from ..validation import check_int

__all__ = [
    "batchify_stream",
    "tbptt_chunks",
    "stream_cross_entropy",
    "LengthBuckets",
    "pad_batch",
    "series_windows",
    *TRANSLATION_TASKS,  # defined in rnncourse.datasets
]


def batchify_stream(token_ids, batch_size):
    """Cut one long token stream into ``batch_size`` parallel streams.

    L: stream length, N: ``batch_size``, S = L // N steps per stream. Row n
    is the contiguous stretch ``token_ids[n*S : (n+1)*S]``, so consecutive
    columns are consecutive tokens, and the state at the end of one chunk of
    columns is the right start for the next chunk. The last ``L - N*S``
    tokens are dropped.

    Parameters
    ----------
    token_ids : (L,) integers (tensor, NumPy array or list).
    batch_size : N >= 1.

    Returns
    -------
    (N, S) int64 tensor, a view of ``token_ids`` when it is an int64 tensor.
    """
    batch_size = check_int("batch_size", batch_size)
    ids = torch.as_tensor(token_ids)
    if ids.dim() != 1 or ids.dtype.is_floating_point or ids.dtype == torch.bool:
        raise ValueError(f"token_ids is {ids.dtype} of shape {tuple(ids.shape)}; expected (L,) integers")
    steps = ids.shape[0] // batch_size
    if steps < 2:
        raise ValueError(
            f"token_ids has length L = {ids.shape[0]}; expected L >= 2 * batch_size = {2 * batch_size} "
            "(each stream needs an input and a next token)"
        )
    return ids[: batch_size * steps].to(torch.int64).view(batch_size, steps)


def tbptt_chunks(data, k):
    """Consecutive (input, target) chunks of ``k`` steps for stateful truncated BPTT.

    N: streams, S: steps (``data`` is (N, S), from :func:`batchify_stream`).
    Chunk j is ``x = data[:, jk : jk+k]`` and ``y = data[:, jk+1 : jk+k+1]``:
    every target is the token after its input, and chunk j+1's inputs
    continue where chunk j's stopped. The last chunk is shorter when
    ``S - 1`` is not a multiple of k. Pass the result to
    ``fit(..., tbptt=True)``, which carries the state across chunks.

    Parameters
    ----------
    data : (N, S) integer tensor, S >= 2.
    k : int >= 1, the truncation length (steps per chunk).

    Returns
    -------
    list of ``(x, y)`` pairs of (N, k) views of ``data`` (a list, so it can
    be iterated once per epoch).
    """
    k = check_int("k", k)
    if not isinstance(data, torch.Tensor) or data.dim() != 2 or data.shape[1] < 2:
        got = tuple(data.shape) if isinstance(data, torch.Tensor) else type(data).__name__
        raise ValueError(f"data is {got}; expected an (N, S) tensor with S >= 2 (see batchify_stream)")
    S = data.shape[1]
    chunks = []
    for start in range(0, S - 1, k):
        stop = min(start + k, S - 1)  # the last target is data[:, S - 1]
        chunks.append((data[:, start:stop], data[:, start + 1 : stop + 1]))
    return chunks


@torch.no_grad()
def stream_cross_entropy(model, data, k, *, device=None):
    """A language model's mean cross-entropy per predicted token over whole streams, in nats.

    N: streams, S: steps, V: vocabulary size. ``data`` (N, S) is read in
    the consecutive chunks of :func:`tbptt_chunks`, the state carried from
    each chunk to the next, so every token is predicted from the whole
    stream before it, as if each stream were read in one call; ``k`` only
    bounds the memory used. The result is the total negative log-likelihood
    of the ``N * (S - 1)`` predicted tokens divided by their number, so
    chunks of different lengths are weighted by their tokens (a mean of
    per-chunk means would not be). Divide by ``ln 2`` for bits per token.

    Parameters
    ----------
    model : a language model called as ``model(x, state) -> (logits, state)``
        with ``x`` (N, k) token indices, ``logits`` (N, k, V) and ``state``
        None at the start (e.g. :class:`~rnncourse.torch.models.CharLanguageModel`).
        It is run in eval mode and put back in the mode it came in.
    data : (N, S) integer tensor, S >= 2 (see :func:`batchify_stream`).
    k : int >= 1, steps per chunk.
    device : where to compute; default the device of the model's parameters.

    Returns
    -------
    float, nats per token.
    """
    chunks = tbptt_chunks(data, k)
    if device is None:
        device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        total, count, state = torch.zeros((), dtype=torch.float64, device=device), 0, None
        for x, y in chunks:
            logits, state = model(x.to(device), state)
            total += torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]).double(), y.to(device).reshape(-1), reduction="sum"
            )
            count += y.numel()
    finally:
        model.train(was_training)
    return total.item() / count


class LengthBuckets:
    """Minibatches of sequences of similar lengths, in a new random order at every pass.

    B: number of sequences. The sequences are sorted by length and cut
    into consecutive groups of ``batch_size``; each group becomes one batch,
    ``collate(indices)``. A padded batch is as long as its longest sequence,
    and a recurrent layer runs that many steps, so batching sequences of
    similar lengths wastes little work on padding. Each iteration shuffles
    the order of the batches with PyTorch's global random generator (so
    :func:`~rnncourse.torch.runtime.seed_everything` makes it reproducible and
    :func:`~rnncourse.torch.train.fit` resumes it
    exactly); the groups themselves stay fixed.

    Parameters
    ----------
    lengths : (B,) integers, the length of each sequence.
    batch_size : int >= 1.
    collate : ``collate(indices) -> batch``, called with a (b,) int64
        tensor of sequence indices (b <= ``batch_size``); it builds the
        batch (pads, stacks, ...) that ``fit`` hands to the loss function.
    shuffle : bool; False keeps the batches in order of length.

    Examples
    --------
    >>> batches = LengthBuckets([5, 2, 9, 3], 2, lambda idx: idx.tolist(), shuffle=False)
    >>> list(batches)
    [[1, 3], [0, 2]]
    """

    def __init__(self, lengths, batch_size, collate, *, shuffle=True):
        lengths = torch.as_tensor(lengths)
        if lengths.dim() != 1 or lengths.dtype.is_floating_point or lengths.dtype == torch.bool:
            raise ValueError(f"lengths is {lengths.dtype} of shape {tuple(lengths.shape)}; expected (B,) integers")
        batch_size = check_int("batch_size", batch_size)
        if not callable(collate):
            raise ValueError(f"collate is {type(collate).__name__}; expected a function of a tensor of indices")
        order = torch.sort(lengths.cpu(), stable=True).indices
        self.groups = list(torch.split(order, batch_size))
        self.collate, self.shuffle = collate, shuffle

    def __len__(self):
        return len(self.groups)

    def __iter__(self):
        order = torch.randperm(len(self.groups)).tolist() if self.shuffle else range(len(self.groups))
        for g in order:
            yield self.collate(self.groups[g])


def pad_batch(sequences, lengths, labels, indices):
    """The sequences ``indices`` of a data set as one right-padded batch, with their lengths and labels.

    B: sequences in the data set, N: ``len(indices)``, T: the longest of
    them, D: features per step. Use it as the ``collate`` of
    :class:`LengthBuckets`: ``LengthBuckets(lengths[train], 32, lambda idx:
    pad_batch(seqs, lengths, labels, train[idx]))``.

    Parameters
    ----------
    sequences : list of B tensors or arrays (T_b, D).
    lengths : (B,) integers, the T_b.
    labels : (B,) integer class labels.
    indices : (N,) integers, the sequences to take.

    Returns
    -------
    x : (N, T, D) float32, zero after each sequence's end.
    lengths : (N,) int64.
    labels : (N,) int64.
    """
    indices = torch.as_tensor(indices, dtype=torch.int64)
    x = torch.nn.utils.rnn.pad_sequence(
        [torch.as_tensor(sequences[i], dtype=torch.float32) for i in indices.tolist()], batch_first=True)
    return x, torch.as_tensor(lengths)[indices].to(torch.int64), torch.as_tensor(labels)[indices].to(torch.int64)


def series_windows(values, origins, window, horizon, scale=1.0):
    """Forecasting examples from one series, each relative to the last value before its origin.

    For origin t (the first step to forecast) the input is the ``window``
    values before t and the target the ``horizon`` values from t, both minus
    ``values[t - 1]`` and divided by ``scale``: a model then learns the shape
    of what comes next, not the level, which a rising series leaves behind.
    Add ``values[t - 1]`` back (times ``scale``) to a forecast.

    Parameters
    ----------
    values : (M,) series.
    origins : (n,) integers, each in ``[window, M - horizon]``.
    window : W >= 1.
    horizon : H >= 1.
    scale : float > 0.

    Returns
    -------
    x : (n, W) float32 tensor.
    target : (n, H) float32 tensor.
    """
    values = torch.tensor(np.array(values, dtype=np.float64))  # a copy: the caller's array may be read-only
    window, horizon = check_int("window", window), check_int("horizon", horizon)
    origins = torch.as_tensor(origins, dtype=torch.int64)
    if origins.numel() and (origins.min() < window or origins.max() > len(values) - horizon):
        raise ValueError(f"origins range over [{int(origins.min())}, {int(origins.max())}]; expected each in "
                         f"[window, M - horizon] = [{window}, {len(values) - horizon}]")
    ref = values[origins - 1, None]
    x = torch.stack([values[t - window : t] for t in origins.tolist()]) - ref
    target = torch.stack([values[t : t + horizon] for t in origins.tolist()]) - ref
    return (x / scale).to(torch.float32), (target / scale).to(torch.float32)
