"""An encoder-decoder (seq2seq) with attention, and its decoders: greedy and beam search.

Token conventions, stated once for the whole module:

- Token ids ``PAD = 0``, ``BOS = 1`` (begin of sequence), ``EOS = 2`` (end of
  sequence), ``UNK = 3`` (unknown token); real tokens start at 4. See :class:`Vocab`.
- A **source** batch is ``src (N, S)`` padded with ``PAD`` on the right, with
  ``src_lengths (N,)`` the number of real tokens (at least 1) of each row.
- A **target** ``y_1 .. y_T`` is trained with teacher forcing: the decoder
  reads ``tgt_in = [BOS, y_1, .., y_T]`` and is asked for
  ``tgt_out = [y_1, .., y_T, EOS]``, both padded with ``PAD`` (which the loss
  ignores: ``cross_entropy(..., ignore_index=PAD)``). :meth:`Vocab.encode_batch`
  builds them.
- A **decoded** sequence is ``(N, max_len)``: the generated tokens, ``EOS``
  included when it was generated, ``PAD`` after it. ``PAD`` and ``BOS`` are
  never generated.

The model (:class:`Seq2Seq`), with ``H`` the hidden size:

- **encoder**: embedding, then a bidirectional GRU or LSTM of ours; its
  outputs ``(N, S, 2H)`` are the keys and values of the attention, and its
  final states (forward and backward, ``(N, 2H)``) start the decoder through
  ``h_0 = tanh(W_b [h_fwd; h_bwd] + b_b)``.
- **decoder step** (Bahdanau et al., 2015): with ``s_{t-1}`` the previous
  decoder state and ``y_{t-1}`` the previous token,
  ``c_t = attention(s_{t-1}, encoder outputs)``, then
  ``s_t = cell([embed(y_{t-1}); c_t], s_{t-1})`` and
  ``logits_t = W_o [s_t; c_t] + b_o``.
- **no attention** (``attention=None``): the same decoder with ``c_t`` the
  final encoder state at every step (Cho et al., 2014): the whole source must
  pass through one fixed-size vector, the bottleneck attention removes.
"""

import math

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ..validation import check_choice, check_int
from .attention import AdditiveAttention, DotProductAttention, ScaledDotProductAttention, lengths_to_mask
from .cells import GRUCell, LSTMCell
from .rnn import GRU, LSTM

__all__ = ["PAD", "BOS", "EOS", "UNK", "SPECIAL_TOKENS", "Vocab", "Encoder", "Seq2Seq", "beam_search_trace"]

PAD, BOS, EOS, UNK = 0, 1, 2, 3
SPECIAL_TOKENS = ("<pad>", "<bos>", "<eos>", "<unk>")
_ATTENTIONS = ("additive", "dot", "scaled_dot", None)
_CELLS = ("gru", "lstm")


class Vocab:
    """Tokens to ids and back, with the special tokens of the module at ids 0 to 3.

    Parameters
    ----------
    tokens : iterable of str: the real tokens (characters, words). Duplicates
        are dropped; the ids follow sorted order, so the same tokens always
        give the same ids.

    Examples
    --------
    >>> v = Vocab.from_texts(["ab", "ba"])
    >>> v.encode("ab", eos=True)
    [4, 5, 2]
    >>> "".join(v.decode([4, 5, 2, 0]))
    'ab'
    """

    def __init__(self, tokens):
        tokens = sorted(set(tokens))
        clash = [t for t in tokens if t in SPECIAL_TOKENS]
        if clash:
            raise ValueError(f"tokens include {clash}; the special tokens {SPECIAL_TOKENS} are added by Vocab")
        self.itos = list(SPECIAL_TOKENS) + tokens
        self.stoi = {t: i for i, t in enumerate(self.itos)}

    @classmethod
    def from_texts(cls, texts):
        """A character vocabulary: every character that occurs in ``texts``."""
        return cls(ch for text in texts for ch in text)

    def __len__(self):
        return len(self.itos)

    def __repr__(self):
        return f"Vocab({len(self)} tokens: {len(self) - len(SPECIAL_TOKENS)} + {len(SPECIAL_TOKENS)} special)"

    def encode(self, tokens, bos=False, eos=False):
        """Ids of ``tokens`` (a str is a sequence of characters); unknown tokens give ``UNK``.

        Returns
        -------
        list of int, with ``BOS`` in front if ``bos`` and ``EOS`` at the end if ``eos``.
        """
        ids = [self.stoi.get(t, UNK) for t in tokens]
        return ([BOS] if bos else []) + ids + ([EOS] if eos else [])

    def decode(self, ids):
        """Tokens of ``ids`` up to the first ``EOS``, skipping ``PAD`` and ``BOS``.

        Parameters
        ----------
        ids : iterable of int, or a 1-D Tensor.

        Returns
        -------
        list of str.
        """
        if isinstance(ids, torch.Tensor):
            ids = ids.tolist()
        out = []
        for i in ids:
            if i == EOS:
                break
            if i not in (PAD, BOS):
                out.append(self.itos[i])
        return out

    def encode_batch(self, seqs, bos=False, eos=False, device=None):
        """Encode and right-pad with ``PAD`` a batch of token sequences.

        Parameters
        ----------
        seqs : list of N token sequences (str for characters).
        bos, eos : bool: add ``BOS`` in front / ``EOS`` at the end of each.
        device : torch.device, optional.

        Returns
        -------
        ids : LongTensor (N, T), T the longest encoded length.
        lengths : LongTensor (N,): the encoded length of each sequence.
        """
        encoded = [self.encode(s, bos=bos, eos=eos) for s in seqs]
        T = max((len(e) for e in encoded), default=0)
        ids = torch.full((len(encoded), T), PAD, dtype=torch.long)
        for n, e in enumerate(encoded):
            ids[n, : len(e)] = torch.tensor(e, dtype=torch.long)
        lengths = torch.tensor([len(e) for e in encoded], dtype=torch.long)
        return ids.to(device), lengths.to(device)


def _check_ids(name, ids):
    """``ids`` must be a 2-D LongTensor of token ids."""
    if not isinstance(ids, torch.Tensor):
        raise ValueError(f"{name} is a {type(ids).__name__}; expected a LongTensor (N, T) of token ids")
    if ids.dtype != torch.long or ids.dim() != 2:
        raise ValueError(
            f"{name} has dtype {ids.dtype} and shape {tuple(ids.shape)}; expected a LongTensor (N, T) of token ids"
        )


class Encoder(nn.Module):
    """Embedding and a bidirectional GRU or LSTM over a right-padded batch.

    N: batch size, S: padded source length, E: embedding size, H: hidden size
    per direction.

    The batch goes through the RNN as a ``PackedSequence``. A bidirectional
    RNN given the padded ``(N, S, E)`` tensor would read every row backward
    from position ``S - 1``: on a row shorter than ``S`` its backward pass
    would start on the padding and carry it into every real position, so a
    sentence would encode differently depending on the other sentences of its
    batch. Packed, each direction reads each row over its own length only
    (and no time is spent on padding).

    Parameters
    ----------
    vocab_size : int: source vocabulary size.
    embedding_size : int, E.
    hidden_size : int, H.
    cell : ``"gru"`` or ``"lstm"``.
    """

    def __init__(self, vocab_size, embedding_size, hidden_size, cell="gru"):
        super().__init__()
        check_choice("cell", cell, _CELLS)
        self.embedding = nn.Embedding(vocab_size, embedding_size, padding_idx=PAD)
        self.rnn = (GRU if cell == "gru" else LSTM)(embedding_size, hidden_size, batch_first=True, bidirectional=True)

    def forward(self, src, src_lengths):
        """Encode a batch.

        Parameters
        ----------
        src : LongTensor (N, S), padded with ``PAD``.
        src_lengths : LongTensor (N,), in [1, S].

        Returns
        -------
        outputs : Tensor (N, S, 2H): ``[h_fwd_t; h_bwd_t]``, zero at padding positions.
        final : Tensor (N, 2H): ``[h_fwd after the last real token; h_bwd after the first]``.
        """
        S = src.shape[1]
        # pack_padded_sequence wants the lengths on the CPU: one copy per batch, outside any loop.
        packed = pack_padded_sequence(self.embedding(src), src_lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, h_n = self.rnn(packed)
        h_n = h_n[0] if isinstance(h_n, tuple) else h_n  # an LSTM returns (h_n, c_n)
        outputs, _ = pad_packed_sequence(out, batch_first=True, total_length=S)
        return outputs, torch.cat([h_n[0], h_n[1]], dim=-1)


class Seq2Seq(nn.Module):
    """Encoder-decoder with attention (Bahdanau et al., 2015) or without (the bottleneck).

    N: batch size, S: padded source length, T: target length, V: target
    vocabulary size, E: embedding size, H: hidden size, A: attention size.
    The model is described in the module docstring; tokens follow its
    conventions (``PAD, BOS, EOS = 0, 1, 2``).

    Parameters
    ----------
    src_vocab, tgt_vocab : int or :class:`Vocab`: the vocabulary sizes.
    embedding_size : int, E (source and target).
    hidden_size : int, H: encoder size per direction and decoder size.
    attention : ``"additive"``, ``"dot"``, ``"scaled_dot"`` or None (no attention).
        For the dot scores the keys are the encoder outputs projected to the
        decoder size, ``W_k h_j`` (Luong's "general" score), and the values
        the encoder outputs themselves.
    attention_size : int, A, for ``"additive"``; default H.
    cell : ``"gru"`` or ``"lstm"``, for the encoder and the decoder. The LSTM
        decoder starts from ``c_0 = 0``.

    Examples
    --------
    >>> model = Seq2Seq(20, 15, attention="additive")
    >>> logits, weights = model(src, src_lengths, tgt_in)    # teacher forcing
    >>> loss = F.cross_entropy(logits.transpose(1, 2), tgt_out, ignore_index=PAD)
    >>> tokens, weights = model.greedy_decode(src, src_lengths, max_len=12)
    >>> tokens, scores, weights = model.beam_search(src, src_lengths, beam_size=4, max_len=12)
    """

    def __init__(
        self,
        src_vocab,
        tgt_vocab,
        embedding_size=32,
        hidden_size=64,
        attention="additive",
        attention_size=None,
        cell="gru",
    ):
        super().__init__()
        src_size = len(src_vocab) if isinstance(src_vocab, Vocab) else src_vocab
        tgt_size = len(tgt_vocab) if isinstance(tgt_vocab, Vocab) else tgt_vocab
        for name, size in (("src_vocab", src_size), ("tgt_vocab", tgt_size)):
            if check_int(name, size) <= len(SPECIAL_TOKENS):
                raise ValueError(f"{name} has size {size!r}; expected an int > {len(SPECIAL_TOKENS)} (the specials)")
        check_choice("attention", attention, _ATTENTIONS)
        check_choice("cell", cell, _CELLS)
        H, C = hidden_size, 2 * hidden_size  # C: size of the context (encoder outputs)
        self.attention_kind = attention
        self.cell_kind = cell
        self.tgt_vocab_size = tgt_size

        self.encoder = Encoder(src_size, embedding_size, H, cell)
        self.bridge = nn.Linear(C, H)
        self.embedding = nn.Embedding(tgt_size, embedding_size, padding_idx=PAD)
        self.cell = (GRUCell if cell == "gru" else LSTMCell)(embedding_size + C, H)
        self.out = nn.Linear(H + C, tgt_size)
        if attention == "additive":
            self.attention = AdditiveAttention(H, C, attention_size or H)
        elif attention in ("dot", "scaled_dot"):
            self.key_proj = nn.Linear(C, H, bias=False)
            self.attention = DotProductAttention() if attention == "dot" else ScaledDotProductAttention()
        else:
            self.attention = None
        # Added to the log-probabilities while decoding: PAD and BOS are never generated.
        never = torch.zeros(tgt_size)
        never[[PAD, BOS]] = -math.inf
        self.register_buffer("_never_generated", never, persistent=False)

    # ------------------------------------------------------------ the pieces

    def _start(self, src, src_lengths):
        """Encode; return the decoder's initial state and its memory of the source."""
        _check_ids("src", src)
        N, S = src.shape
        if not isinstance(src_lengths, torch.Tensor):
            src_lengths = torch.as_tensor(src_lengths)
        if src_lengths.shape != (N,) or src_lengths.dtype.is_floating_point:
            raise ValueError(
                f"src_lengths has shape {tuple(src_lengths.shape)} and dtype {src_lengths.dtype}; "
                f"expected integers of shape (N,) = ({N},)"
            )
        src_lengths = src_lengths.to(device=src.device, dtype=torch.long)
        # One check per batch, before any time loop (it reads the lengths on the host).
        if S == 0 or bool(((src_lengths < 1) | (src_lengths > S)).any()):
            raise ValueError(f"src_lengths holds {src_lengths.tolist()}; expected integers in [1, S] = [1, {S}]")

        enc_out, final = self.encoder(src, src_lengths)
        h0 = torch.tanh(self.bridge(final))
        state = h0 if self.cell_kind == "gru" else (h0, torch.zeros_like(h0))
        if self.attention is None:
            memory = dict(final=final)
        else:
            keys = enc_out if self.attention_kind == "additive" else self.key_proj(enc_out)
            memory = dict(
                keys=keys,
                keys_pre=self.attention.precompute_keys(keys),  # once per source, not per step
                values=enc_out,
                valid=lengths_to_mask(src_lengths, S),
            )
        return state, memory

    def _step(self, y_prev, state, memory):
        """One decoder step: previous tokens (N,) and state -> logits (N, V), state, weights (N, S) or None."""
        s_prev = state if self.cell_kind == "gru" else state[0]
        if self.attention is None:
            context, weights = memory["final"], None
        else:
            context, weights = self.attention(
                s_prev, memory["keys"], memory["values"], mask=memory["valid"], precomputed_keys=memory["keys_pre"]
            )
        state = self.cell(torch.cat([self.embedding(y_prev), context], dim=-1), state)
        s = state if self.cell_kind == "gru" else state[0]
        return self.out(torch.cat([s, context], dim=-1)), state, weights

    # ------------------------------------------------------------ training

    def forward(self, src, src_lengths, tgt_in):
        """Teacher forcing: the logits of every target position.

        Parameters
        ----------
        src : LongTensor (N, S), padded with ``PAD``.
        src_lengths : LongTensor (N,), in [1, S].
        tgt_in : LongTensor (N, T): ``BOS`` then the target tokens, padded with ``PAD``.

        Returns
        -------
        logits : Tensor (N, T, V): scores of the next token at each position.
        weights : Tensor (N, T, S), the attention weights (0 on source
            padding), or None without attention.
        """
        _check_ids("tgt_in", tgt_in)
        if tgt_in.shape[0] != src.shape[0] or tgt_in.shape[1] == 0:
            raise ValueError(
                f"tgt_in has shape {tuple(tgt_in.shape)}; expected (N, T) with N = {src.shape[0]} and T >= 1"
            )
        state, memory = self._start(src, src_lengths)
        logits, weights = [], []
        for t in range(tgt_in.shape[1]):
            logits_t, state, w = self._step(tgt_in[:, t], state, memory)
            logits.append(logits_t)
            weights.append(w)
        return torch.stack(logits, 1), None if self.attention is None else torch.stack(weights, 1)

    def sequence_log_prob(self, src, src_lengths, tgt):
        """Log-probability of whole target sequences: ``sum_t log p(y_t | y_<t, src)``.

        Parameters
        ----------
        src : LongTensor (N, S); src_lengths : LongTensor (N,).
        tgt : LongTensor (N, T): ``[y_1, .., y_T]``, usually ending with ``EOS``,
            then ``PAD`` (which does not count), as the decoders return them.

        Returns
        -------
        Tensor (N,): the scores :meth:`greedy_decode` and :meth:`beam_search`
        maximise (before the length penalty).
        """
        _check_ids("tgt", tgt)
        bos = torch.full_like(tgt[:, :1], BOS)
        logits, _ = self(src, src_lengths, torch.cat([bos, tgt[:, :-1]], dim=1))
        logp = torch.log_softmax(logits, dim=-1).gather(2, tgt[:, :, None])[:, :, 0]
        return (logp * (tgt != PAD)).sum(dim=1)

    @torch.no_grad()
    def next_token_log_probs(self, src, src_lengths, prefix):
        """``log p(y | prefix, src)`` over the target vocabulary, for one source sentence.

        The decoder reads ``BOS`` and ``prefix`` with teacher forcing; the
        tokens it never generates (``PAD``, ``BOS``) get ``-inf``, as in the
        decoders. With :func:`beam_search_trace` it replays a beam search
        one hypothesis at a time, to look at every step of it.

        Parameters
        ----------
        src : LongTensor (1, S); src_lengths : LongTensor (1,).
        prefix : sequence of token ids, the hypothesis so far (without ``BOS``).

        Returns
        -------
        Tensor (V,) of log-probabilities, on the CPU.
        """
        if src.shape[0] != 1:
            raise ValueError(f"src has shape {tuple(src.shape)}; expected (1, S): one source sentence")
        tgt_in = torch.tensor([[BOS, *prefix]], dtype=torch.long, device=src.device)
        logits, _ = self(src, src_lengths, tgt_in)
        return (torch.log_softmax(logits[0, -1], dim=-1) + self._never_generated).cpu()

    # ------------------------------------------------------------ decoding
    # Both decoders run all max_len steps: stopping when every sequence has
    # ended would need the device to tell the host at every step (a sync).

    @torch.no_grad()
    def greedy_decode(self, src, src_lengths, max_len):
        """Greedy decoding: at each step the most probable next token.

        Parameters
        ----------
        src : LongTensor (N, S), padded with ``PAD``.
        src_lengths : LongTensor (N,), in [1, S].
        max_len : int: the most tokens generated per sequence, ``EOS`` included.

        Returns
        -------
        tokens : LongTensor (N, max_len): ``EOS`` ends a sequence, ``PAD``
            follows; a sequence without ``EOS`` ran out of room.
        weights : Tensor (N, max_len, S), the attention weights (0 after
            ``EOS``), or None without attention.
        """
        max_len = check_int("max_len", max_len)
        state, memory = self._start(src, src_lengths)
        N = src.shape[0]
        y = torch.full((N,), BOS, dtype=torch.long, device=src.device)
        done = torch.zeros(N, dtype=torch.bool, device=src.device)
        tokens, weights = [], []
        for _ in range(max_len):
            logits, state, w = self._step(y, state, memory)
            y = (logits + self._never_generated).argmax(dim=-1).masked_fill(done, PAD)
            tokens.append(y)
            if w is not None:
                weights.append(w.masked_fill(done[:, None], 0.0))
            done = done | (y == EOS)
        return torch.stack(tokens, 1), (torch.stack(weights, 1) if weights else None)

    @torch.no_grad()
    def beam_search(self, src, src_lengths, beam_size=4, max_len=50, length_penalty=0.0):
        """Beam search: keep the ``beam_size`` best partial translations at each step.

        N: batch size, S: source length, B: beam size, V: target vocabulary size.

        A hypothesis ``y_1 .. y_L`` scores ``sum_t log p(y_t | y_<t, src) / L**length_penalty``
        (``L`` counts its ``EOS``; Wu et al., 2016, use ``((5 + L) / 6)**alpha``
        instead of ``L**alpha``): ``0`` ranks by probability, which favours
        short outputs; ``1`` by mean log-probability per token. The
        hypotheses are those ending with ``EOS`` within ``max_len`` tokens and
        those cut at ``max_len`` without it.

        At each step the ``B`` alive hypotheses expand to ``B V`` candidates
        and the best ``2B`` are read in order: a candidate ending with ``EOS``
        is finished if it is among the best ``B`` (so with ``length_penalty=0``
        a beam of 1 is greedy decoding), and the best ``B`` candidates that
        do not end continue.
        With ``B`` at least the number of possible sequences, nothing is
        pruned and the search is exact.

        Parameters
        ----------
        src : LongTensor (N, S), padded with ``PAD``.
        src_lengths : LongTensor (N,), in [1, S].
        beam_size : int, B >= 1.
        max_len : int >= 1: the most tokens per hypothesis, ``EOS`` included.
        length_penalty : float >= 0, the ``alpha`` above.

        Returns
        -------
        tokens : LongTensor (N, max_len): the best hypothesis, ``PAD`` after its ``EOS``.
        scores : Tensor (N,): its score, length penalty included.
        weights : Tensor (N, max_len, S): its attention weights (0 after
            ``EOS``), or None without attention.
        """
        beam_size, max_len = check_int("beam_size", beam_size), check_int("max_len", max_len)
        if length_penalty < 0:
            raise ValueError(f"length_penalty is {length_penalty!r}; expected a number >= 0")
        state, memory = self._start(src, src_lengths)
        N, S, B, V = src.shape[0], src.shape[1], beam_size, self.tgt_vocab_size
        device, dtype = src.device, self.out.weight.dtype
        attend = self.attention is not None

        # Row n * B + b of the decoder's batch is hypothesis b of sentence n.
        def repeat(x):
            return x.repeat_interleave(B, dim=0)

        state = repeat(state) if self.cell_kind == "gru" else tuple(map(repeat, state))
        memory = {k: repeat(v) for k, v in memory.items()}
        base = (torch.arange(N, device=device) * B)[:, None]  # (N, 1): row of hypothesis 0

        # Alive hypotheses: cumulative log-prob, tokens so far, attention so far.
        # Only hypothesis 0 starts alive (the others at -inf), or the first
        # step would fill the beam with B copies of the same expansion.
        alive_score = torch.full((N, B), -math.inf, dtype=dtype, device=device)
        alive_score[:, 0] = 0.0
        alive_tokens = torch.full((N, B, max_len), PAD, dtype=torch.long, device=device)
        # Finished hypotheses (the best B so far): score after length penalty.
        done_score = torch.full((N, B), -math.inf, dtype=dtype, device=device)
        done_tokens = torch.full((N, B, max_len), PAD, dtype=torch.long, device=device)
        if attend:
            alive_weights = torch.zeros(N, B, max_len, S, dtype=dtype, device=device)
            done_weights = torch.zeros(N, B, max_len, S, dtype=dtype, device=device)

        def keep_best(done, new):
            """Merge finished hypotheses ``new`` into ``done``; keep the best B."""
            score, idx = torch.cat([done[0], new[0]], dim=1).topk(B, dim=1)
            merged = [score, torch.cat([done[1], new[1]], dim=1).gather(1, idx[:, :, None].expand(-1, -1, max_len))]
            if attend:
                w = torch.cat([done[2], new[2]], dim=1)
                merged.append(w.gather(1, idx[:, :, None, None].expand(-1, -1, max_len, S)))
            return merged

        y = torch.full((N * B,), BOS, dtype=torch.long, device=device)
        for t in range(max_len):
            logits, state, w = self._step(y, state, memory)
            logp = torch.log_softmax(logits, dim=-1) + self._never_generated
            cand = (alive_score[:, :, None] + logp.view(N, B, V)).view(N, B * V)
            top_score, top = cand.topk(min(2 * B, B * V), dim=1)  # (N, 2B), best first
            parent, token = top // V, top % V
            if attend:
                w = w.view(N, B, S)
            # What each candidate would be: its parent's history plus its token.
            hist = alive_tokens.gather(1, parent[:, :, None].expand(-1, -1, max_len))
            hist[:, :, t] = token
            if attend:
                hist_w = alive_weights.gather(1, parent[:, :, None, None].expand(-1, -1, max_len, S))
                hist_w[:, :, t] = w.gather(1, parent[:, :, None].expand(-1, -1, S))

            is_eos = token == EOS
            # Of the best B candidates, those ending with EOS finish (the others get -inf here).
            new_done = [
                torch.where(is_eos[:, :B], top_score[:, :B], -math.inf) / (t + 1) ** length_penalty,
                hist[:, :B],
            ] + ([hist_w[:, :B]] if attend else [])
            merged = keep_best([done_score, done_tokens] + ([done_weights] if attend else []), new_done)
            done_score, done_tokens = merged[0], merged[1]
            if attend:
                done_weights = merged[2]

            # The best B candidates that do not end continue (the -inf
            # key puts EOS candidates behind every other).
            cont_key = torch.where(is_eos, -math.inf, top_score)
            cont_score, pick = cont_key.topk(B, dim=1)
            alive_score = cont_score
            alive_tokens = hist.gather(1, pick[:, :, None].expand(-1, -1, max_len))
            if attend:
                alive_weights = hist_w.gather(1, pick[:, :, None, None].expand(-1, -1, max_len, S))
            chosen_parent = parent.gather(1, pick)
            y = token.gather(1, pick).reshape(-1)
            rows = (base + chosen_parent).reshape(-1)
            state = state[rows] if self.cell_kind == "gru" else tuple(s[rows] for s in state)

        # Hypotheses still alive after max_len tokens end there, without EOS.
        cut = [alive_score / max_len**length_penalty, alive_tokens] + ([alive_weights] if attend else [])
        merged = keep_best([done_score, done_tokens] + ([done_weights] if attend else []), cut)
        # keep_best sorts, so hypothesis 0 is the best.
        return merged[1][:, 0], merged[0][:, 0], (merged[2][:, 0] if attend else None)


def beam_search_trace(next_log_probs, beam_size, max_len, eos=EOS):
    """The beam search of :meth:`Seq2Seq.beam_search` (length penalty 0), step by step, for one source.

    B: ``beam_size``. It follows the same rules, so that its result is the
    model's: at each step every alive hypothesis is extended by every token;
    of the best ``2B`` candidates, those among the best ``B`` that end with
    ``eos`` are finished, and the best ``B`` that do not end stay alive.
    After ``max_len`` tokens the hypotheses still alive are cut and compete
    with the finished ones. The score of a hypothesis is the sum of its
    tokens' log-probabilities.

    Parameters
    ----------
    next_log_probs : ``next_log_probs(prefix) -> (V,) log-probabilities`` of
        the next token after ``prefix`` (a tuple of token ids); e.g.
        ``functools.partial(model.next_token_log_probs, src, src_lengths)``,
        or a table for a toy model. ``-inf`` marks tokens never generated.
    beam_size : B >= 1.
    max_len : int >= 1, the most tokens per hypothesis, ``eos`` included.
    eos : the token id that ends a hypothesis.

    Returns
    -------
    best : ``(tokens, score)`` of the best hypothesis, ``tokens`` a tuple of
        ids (``eos`` included if it ended).
    steps : a list with one list per step of the ``2B`` best candidates
        (fewer if there are fewer), best first, each a dict with ``token``,
        ``score``, ``parent`` (index of the hypothesis it extends among the
        previous step's alive ones; 0 at the first step), ``status``
        (``"alive"``, ``"finished"`` or ``"pruned"``) and ``best`` (True on
        the best hypothesis's path).
    """
    beam_size, max_len = check_int("beam_size", beam_size), check_int("max_len", max_len)
    alive = [((), 0.0)]  # (tokens, score), best first
    finished, steps = [], []
    for _ in range(max_len):
        candidates = []
        for b, (tokens, score) in enumerate(alive):
            logp = torch.as_tensor(next_log_probs(tokens), dtype=torch.float64)
            candidates += [(score + float(lp), b, v) for v, lp in enumerate(logp.tolist()) if lp > -math.inf]
        candidates.sort(key=lambda c: -c[0])
        top = candidates[: 2 * beam_size]
        step, new_alive = [], []
        for rank, (score, b, v) in enumerate(top):
            tokens = alive[b][0] + (v,)
            if v == eos:
                status = "finished" if rank < beam_size else "pruned"
                if status == "finished":
                    finished.append((tokens, score))
            elif len(new_alive) < beam_size:
                status = "alive"
                new_alive.append((tokens, score))
            else:
                status = "pruned"
            step.append(dict(token=v, score=score, parent=b, status=status, tokens=tokens, best=False))
        steps.append(step)
        alive = new_alive
        finished = sorted(finished, key=lambda h: -h[1])[:beam_size]
        if not alive:
            break
    best = max(finished + alive, key=lambda h: h[1])
    for step in steps:
        for c in step:
            c["best"] = c["status"] != "pruned" and best[0][: len(c["tokens"])] == c["tokens"]
            del c["tokens"]
    return best, steps
