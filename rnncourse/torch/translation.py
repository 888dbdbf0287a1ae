"""Training and scoring a :class:`~rnncourse.torch.seq2seq.Seq2Seq` translator, as chapter 6 does.

N: batch size, S: source length, T: target length, V: target vocabulary size.

- :class:`TranslationTask`: the two vocabularies and how a source is cut into
  tokens; it encodes pairs into the padded tensors of teacher forcing,
  draws random training batches, translates (greedy or beam search), and
  scores exact match and sequence log-probabilities.
- :func:`teacher_forcing_loss`: the loss the translator is trained with.
- :func:`fit_translator`: the chapter's training recipe (Adam's steps with
  the gradient norm clipped to 1, random batches of 64 pairs, exact match on
  held-out pairs every ``eval_every`` steps), seeded, so that two pages
  that train the same model get the same model.
"""

import dataclasses

import numpy as np
import torch
import torch.nn.functional as F

from ..validation import check_int
from .runtime import seed_everything, select_device
from .seq2seq import PAD, Vocab
from .train import fit

__all__ = ["TranslationTask", "RandomPairBatches", "teacher_forcing_loss", "fit_translator"]


@dataclasses.dataclass
class TranslationTask:
    """The vocabularies of a translation task and how its sources are cut into tokens.

    Attributes
    ----------
    src_vocab, tgt_vocab : :class:`~rnncourse.torch.seq2seq.Vocab`.
    source_tokens : function ``str -> list of str`` (e.g.
        :func:`rnncourse.datasets.number_words`); targets are read character by character.
    max_len : the most tokens a translation may have, ``EOS`` included.
    device : where the models run; default :func:`~rnncourse.torch.runtime.select_device`.
    """

    src_vocab: Vocab
    tgt_vocab: Vocab
    source_tokens: object
    max_len: int
    device: object = None

    def __post_init__(self):
        self.max_len = check_int("max_len", self.max_len)
        self.device = select_device(self.device)

    def encode(self, pairs):
        """Padded id tensors of ``(source, target)`` pairs, for teacher forcing.

        Returns
        -------
        src : (N, S) int64, the source tokens, ``PAD`` after each source's end.
        src_lengths : (N,) int64.
        tgt_in : (N, T + 1) int64, ``BOS`` then the target: what the decoder reads.
        tgt_out : (N, T + 1) int64, the target then ``EOS``: what it must write.
        """
        src, src_lengths = self.src_vocab.encode_batch([self.source_tokens(s) for s, _ in pairs])
        tgt_in, _ = self.tgt_vocab.encode_batch([t for _, t in pairs], bos=True)
        tgt_out, _ = self.tgt_vocab.encode_batch([t for _, t in pairs], eos=True)
        return src, src_lengths, tgt_in, tgt_out

    def random_batches(self, pairs, batch_size, per_round, seed):
        """:class:`RandomPairBatches` of ``pairs``: ``per_round`` random batches at each pass, seeded."""
        return RandomPairBatches(self.encode(pairs), batch_size, per_round, seed)

    @torch.no_grad()
    def translate(self, model, pairs, beam_size=None):
        """The model's translations of the sources of ``pairs`` (greedy, or beam search), and its attention.

        The model is left in eval mode.

        Returns
        -------
        outputs : list of N str.
        weights : (N, max_len, S) NumPy array of attention weights, or None without attention.
        """
        src, src_lengths, _, _ = self.encode(pairs)
        src, src_lengths = src.to(self.device), src_lengths.to(self.device)
        model.eval()
        if beam_size is None:
            tokens, weights = model.greedy_decode(src, src_lengths, max_len=self.max_len)
        else:
            tokens, _, weights = model.beam_search(src, src_lengths, beam_size=beam_size, max_len=self.max_len)
        outputs = ["".join(self.tgt_vocab.decode(row)) for row in tokens.cpu()]
        return outputs, None if weights is None else weights.cpu().numpy()

    def exact_match(self, model, pairs, beam_size=None):
        """The share of ``pairs`` whose whole target the model writes exactly (one wrong token: wrong)."""
        outputs, _ = self.translate(model, pairs, beam_size)
        return float(np.mean([out == target for out, (_, target) in zip(outputs, pairs)]))

    @torch.no_grad()
    def sequence_log_prob(self, model, pairs, outputs):
        """``log p(output + EOS | source)`` under the model, for each pair's source and the given output.

        Returns
        -------
        (N,) NumPy array.
        """
        src, src_lengths, _, _ = self.encode(pairs)
        tgt, _ = self.tgt_vocab.encode_batch(outputs, eos=True)
        model.eval()
        log_prob = model.sequence_log_prob(src.to(self.device), src_lengths.to(self.device), tgt.to(self.device))
        return log_prob.cpu().numpy()


class RandomPairBatches:
    """``per_round`` batches of ``batch_size`` pairs drawn at random; each pass draws new ones.

    The draws come from the batches' own generator, seeded once, so the
    sequence of batches is the same in every run with the same seed. Each
    batch is cut to its own longest source and target.

    Parameters
    ----------
    tensors : ``(src, src_lengths, tgt_in, tgt_out)`` of :meth:`TranslationTask.encode`.
    batch_size : N >= 1.
    per_round : batches per pass (a pass is one "epoch" of :func:`~rnncourse.torch.train.fit`).
    seed : int.
    """

    def __init__(self, tensors, batch_size, per_round, seed):
        self.tensors = tensors
        self.batch_size, self.per_round = check_int("batch_size", batch_size), check_int("per_round", per_round)
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self):
        return self.per_round

    def __iter__(self):
        src, src_lengths, tgt_in, tgt_out = self.tensors
        for _ in range(self.per_round):
            idx = torch.randint(len(src), (self.batch_size,), generator=self.generator)
            S, T = int(src_lengths[idx].max()), int((tgt_out[idx] != PAD).sum(1).max())
            yield src[idx, :S], src_lengths[idx], tgt_in[idx, :T], tgt_out[idx, :T]


def teacher_forcing_loss(model, batch):
    """Cross-entropy of every target token given the true tokens before it (teacher forcing).

    The decoder reads ``tgt_in = [BOS, y_1, .., y_T]`` and is asked for
    ``tgt_out = [y_1, .., y_T, EOS]``; padding is ignored.
    """
    src, src_lengths, tgt_in, tgt_out = batch
    logits, _ = model(src, src_lengths, tgt_in)  # (N, T, V): the true previous tokens in
    return F.cross_entropy(logits.transpose(1, 2), tgt_out, ignore_index=PAD)


def fit_translator(model, optimizer, task, train_pairs, *, seed, steps, valid_pairs=None, eval_every=50,
                   batch_size=64):
    """Train a translator the chapter's way, seeded: ``steps`` steps of ``batch_size`` random pairs.

    Seeds every generator with ``seed`` (:func:`~rnncourse.torch.runtime.seed_everything`)
    and draws the batches from a generator seeded with ``seed`` too; the
    gradient norm is clipped to 1. With ``valid_pairs``, exact match on
    them is measured every ``eval_every`` steps (greedy decoding, which
    draws no random numbers: the model trained is the same with or without
    it).

    Returns
    -------
    :class:`~rnncourse.torch.train.History`; its ``metrics`` hold ``valid_exact``.
    """
    seed_everything(seed)
    eval_fn = None if valid_pairs is None else (lambda m: {"valid_exact": task.exact_match(m, valid_pairs)})
    return fit(model, task.random_batches(train_pairs, batch_size, eval_every, seed), teacher_forcing_loss,
               optimizer=optimizer, steps=steps, device=task.device, clip_grad_norm=1.0, progress=False,
               eval_fn=eval_fn)
