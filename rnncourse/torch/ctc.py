"""Connectionist temporal classification (Graves et al., 2006): paths, the forward algorithm, decoding, scoring.

T: frames, C: labels (not counting the blank), L: target length, N: batch size.
The blank is index 0 and the labels are 1..C, the convention of
``torch.nn.functional.ctc_loss`` and of :class:`~rnncourse.torch.models.CTCRecognizer`.

- :func:`ctc_collapse`: the label sequence a frame-by-frame path reads as
  (merge repeats, then drop blanks).
- :func:`ctc_forward`: the forward variables of the CTC lattice, whose sum
  over the last frame's two final states is the probability of the target:
  the dynamic program behind ``ctc_loss``, written out.
- :func:`ctc_greedy_decode`: best-path decoding of a batch.
- :func:`edit_distance` and :func:`label_error_rate`: how far decoded label
  sequences are from the truth.
- :func:`ctc_batch`: a list of utterances as the padded batch a recognizer
  and ``ctc_loss`` take.
"""

import itertools

import torch
from torch.nn.utils.rnn import pad_sequence

__all__ = ["ctc_collapse", "ctc_forward", "ctc_greedy_decode", "edit_distance", "label_error_rate", "ctc_batch"]


def ctc_collapse(path, blank=0):
    """The labels a path reads as: repeated labels merged, then blanks dropped.

    ``[1, 1, 0, 1, 2, 2]`` reads as ``[1, 1, 2]``: the blank keeps the two 1's apart.

    Parameters
    ----------
    path : sequence of T ints, one output per frame.
    blank : the blank's index.

    Returns
    -------
    list of ints.
    """
    return [int(label) for label, _ in itertools.groupby(path) if label != blank]


def ctc_forward(log_probs, target, blank=0):
    """The forward variables of CTC: ``log alpha[t, s]``, the log-probability of all path prefixes up to frame t
    that are in state s.

    The states are the target with a blank before, between and after its
    labels: ``z = (blank, l_1, blank, l_2, ..., l_L, blank)``, 2L + 1 of them.
    A path starts in ``z_0`` or ``z_1``; from state s it goes to s (stay),
    s + 1, or s + 2 when ``z_{s+2}`` is a label different from ``z_s``
    (skipping the blank between two different labels; two equal labels need
    the blank between them). So::

        alpha[0, s] = p_0(z_s)                 for s in {0, 1}
        alpha[t, s] = p_t(z_s) * (alpha[t-1, s] + alpha[t-1, s-1] + [skip] alpha[t-1, s-2])

    and ``p(target) = alpha[T-1, 2L] + alpha[T-1, 2L-1]`` (ending in the last
    label or the blank after it). The sum over exponentially many paths
    costs ``T (2L + 1)`` steps. Computed in logs, in float64.

    Parameters
    ----------
    log_probs : (T, C + 1) tensor of log-probabilities per frame.
    target : sequence of L labels in [1, C].
    blank : the blank's index.

    Returns
    -------
    log_alpha : (T, 2L + 1) float64 tensor (``-inf`` where no path can be).
    log_likelihood : float, ``log p(target)``; its negative is ``ctc_loss(..., reduction="sum")``.
    """
    log_probs = torch.as_tensor(log_probs, dtype=torch.float64)
    if log_probs.dim() != 2:
        raise ValueError(f"log_probs has shape {tuple(log_probs.shape)}; expected (T, C + 1)")
    target = [int(label) for label in target]
    if any(label == blank or not 0 <= label < log_probs.shape[1] for label in target):
        raise ValueError(f"target is {target}; expected labels in [0, {log_probs.shape[1]}) other than the blank")
    states = [blank]
    for label in target:
        states += [label, blank]
    T, R = log_probs.shape[0], len(states)
    emit = log_probs[:, states]  # (T, R): log p_t(z_s)
    log_alpha = torch.full((T, R), -torch.inf, dtype=torch.float64)
    log_alpha[0, :2] = emit[0, :2]
    skip = torch.tensor([s >= 2 and states[s] != blank and states[s] != states[s - 2] for s in range(R)])
    for t in range(1, T):
        prev = log_alpha[t - 1]
        stay_or_step = torch.logaddexp(prev, torch.cat([prev.new_full((1,), -torch.inf), prev[:-1]]))
        skipped = torch.cat([prev.new_full((2,), -torch.inf), prev[:-2]]).masked_fill(~skip, -torch.inf)
        log_alpha[t] = emit[t] + torch.logaddexp(stay_or_step, skipped)
    return log_alpha, float(torch.logsumexp(log_alpha[-1, -2:], 0))


def ctc_greedy_decode(log_probs, lengths=None, blank=0):
    """Best path decoding: the most likely output at every frame, repeats merged, blanks dropped.

    N: batch size, T: frames, C + 1: outputs per frame. For frames
    ``a a - a b b -`` (``-`` the blank) it gives ``a a b``: a repeated label
    counts twice only when a blank separates its runs. This reads the single
    most likely frame-by-frame path, not the most likely label sequence
    (which sums over all paths, and needs a beam search), but for a
    well-trained CTC model the two rarely differ.

    Parameters
    ----------
    log_probs : (N, T, C + 1) tensor (log-probabilities or any scores
        with the same arg max).
    lengths : (N,) integers in ``[0, T]``, frames to read in each sequence;
        None for all T.
    blank : int, the index of the blank.

    Returns
    -------
    list of N lists of ints, the decoded label indices.
    """
    if not isinstance(log_probs, torch.Tensor) or log_probs.dim() != 3:
        got = tuple(log_probs.shape) if isinstance(log_probs, torch.Tensor) else type(log_probs).__name__
        raise ValueError(f"log_probs is {got}; expected a tensor of shape (N, T, C + 1)")
    N, T, outputs = log_probs.shape
    if isinstance(blank, bool) or not isinstance(blank, int) or not 0 <= blank < outputs:
        raise ValueError(f"blank is {blank!r}; expected an index in [0, {outputs})")
    if lengths is None:
        lengths = torch.full((N,), T)
    lengths = torch.as_tensor(lengths).cpu()
    if lengths.dtype.is_floating_point or lengths.shape != (N,) or (N and (lengths.min() < 0 or lengths.max() > T)):
        raise ValueError(f"lengths is {lengths.tolist()}; expected (N,) = ({N},) integers in [0, T = {T}]")
    best = log_probs.argmax(-1).cpu()
    return [ctc_collapse(path[:length], blank) for path, length in zip(best.tolist(), lengths.tolist())]


def edit_distance(a, b):
    """The fewest insertions, deletions and substitutions that turn sequence ``a`` into ``b`` (Levenshtein).

    One row of the dynamic-programming table at a time: ``O(len(a) len(b))``
    time, ``O(len(b))`` memory.
    """
    row = list(range(len(b) + 1))
    for i, u in enumerate(a, 1):
        diagonal, row[0] = row[0], i
        for j, v in enumerate(b, 1):
            diagonal, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diagonal + (u != v))
    return row[-1]


def label_error_rate(decoded, targets):
    """The summed edit distance of decoded label sequences to their targets, over the targets' total length.

    Parameters
    ----------
    decoded : list of N sequences of labels.
    targets : list of N sequences of labels (lists or 1-D tensors), not all empty.

    Returns
    -------
    float (0 for a perfect transcription; it can exceed 1 when many labels are inserted).
    """
    targets = [t.tolist() if isinstance(t, torch.Tensor) else list(t) for t in targets]
    if len(decoded) != len(targets):
        raise ValueError(f"decoded has {len(decoded)} sequences and targets {len(targets)}; expected the same number")
    total = sum(len(t) for t in targets)
    if total == 0:
        raise ValueError("the targets hold no label; the label error rate divides by their total length")
    return float(sum(edit_distance(list(d), t) for d, t in zip(decoded, targets)) / total)


def ctc_batch(frames, targets):
    """Utterances as one padded batch, in the form a recognizer and ``torch.nn.functional.ctc_loss`` take.

    Parameters
    ----------
    frames : list of N tensors or arrays (T_n, D).
    targets : list of N sequences of labels (L_n,), in [1, C].

    Returns
    -------
    x : (N, max T_n, D) float32, zero-padded.
    lengths : (N,) int64, the T_n.
    targets : (sum L_n,) int64, the targets one after another (``ctc_loss``'s concatenated form).
    target_lengths : (N,) int64, the L_n.
    """
    frames = [torch.as_tensor(f, dtype=torch.float32) for f in frames]
    targets = [torch.as_tensor(t, dtype=torch.int64) for t in targets]
    return (pad_sequence(frames, batch_first=True), torch.tensor([len(f) for f in frames]),
            torch.cat(targets), torch.tensor([len(t) for t in targets]))
