"""The models of the applications chapter, built on our ``RNN``, ``LSTM`` and ``GRU``.

Batch first everywhere. Dimensions: N sequences in the batch, T time steps,
D input features, H hidden size, L layers, V vocabulary size, C classes.

- :class:`CharLanguageModel`: many-to-many. Embedding -> recurrent layers ->
  linear, one distribution over the next character at every step; the state
  is returned so that training can carry it from one stretch of text to the
  next (stateful truncated BPTT), and :meth:`CharLanguageModel.sample`
  generates text with temperature and top-k.
- :class:`SequenceClassifier`: many-to-one over *padded* batches. It packs
  the batch, so each sequence is summarised by its state at its *own* last
  step; ``out[:, -1]`` would read the state after the padding (see the
  errata: a many-to-one model that ignores lengths is wrong on padded data).
- :class:`Forecaster`: a window of a series in, the next ``horizon`` values
  out (direct multi-step), or a rollout that feeds its own predictions back.
- :class:`CTCRecognizer`: a sequence of frames in, per-frame probabilities
  over labels and a *blank* out, to train with the CTC loss when the output
  sequence is shorter than the input and not aligned with it (speech
  recognition); :func:`~rnncourse.torch.ctc.ctc_greedy_decode` (in
  :mod:`rnncourse.torch.ctc`, also importable from here) reads a label
  sequence off them.

Two initialisations the book teaches are constructor options of every model,
and plain functions for any recurrent module (ours or ``torch.nn``'s):
:func:`~rnncourse.torch.init.init_forget_bias_` (Gers et al., 2000; Jozefowicz et al., 2015) and
:func:`~rnncourse.torch.init.init_orthogonal_recurrent_` (Saxe et al., 2014; Le et al., 2015).
"""

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ..validation import check_choice, check_int, check_positive_number, check_probability
from .ctc import ctc_greedy_decode  # noqa: F401  (re-exported: its first home was this module)
from .dropout import run_recurrent, variational_dropout
from .init import init_forget_bias_, init_orthogonal_recurrent_
from .rnn import GRU, LSTM, RNN

__all__ = [
    "CharLanguageModel",
    "language_model_loss",
    "SequenceClassifier",
    "Forecaster",
    "CTCRecognizer",
    "ctc_greedy_decode",
    "recurrent_layers",
]

_CELLS = {"rnn": RNN, "gru": GRU, "lstm": LSTM}

# --- shared pieces --------------------------------------------------------------------


def recurrent_layers(cell, input_size, hidden_size, num_layers=1, dropout=0.0, bidirectional=False,
                     forget_bias=None, orthogonal_recurrent=False):
    """The batch-first recurrent layers of every model here, checked and initialised.

    Parameters
    ----------
    cell : ``"rnn"`` (tanh), ``"gru"`` or ``"lstm"``: :mod:`rnncourse.torch`'s ``RNN``, ``GRU`` or ``LSTM``.
    input_size, hidden_size, num_layers : int >= 1, D, H, L.
    dropout : float in [0, 1), between stacked layers (ignored with one layer).
    bidirectional : bool.
    forget_bias : float or None, LSTM only: the forget gate's bias
        (:func:`~rnncourse.torch.init.init_forget_bias_`); None keeps the default initialisation.
    orthogonal_recurrent : bool, whether to start the recurrent weights orthogonal
        (:func:`~rnncourse.torch.init.init_orthogonal_recurrent_`).

    Returns
    -------
    The module, ``batch_first=True``.

    Raises
    ------
    ValueError
        For a cell not in the list, a size below 1, a dropout outside [0, 1),
        or a ``forget_bias`` for a cell other than the LSTM.
    """
    check_choice("cell", cell, tuple(_CELLS))
    check_int("input_size", input_size)
    check_int("hidden_size", hidden_size)
    check_int("num_layers", num_layers)
    check_probability("dropout", dropout)
    if forget_bias is not None and cell != "lstm":
        raise ValueError(f"forget_bias was given for cell={cell!r}; only an LSTM has a forget gate")
    # Dropout between stacked layers only: with one layer torch.nn warns that it does nothing.
    rnn = _CELLS[cell](
        input_size, hidden_size, num_layers=num_layers, batch_first=True,
        dropout=dropout if num_layers > 1 else 0.0, bidirectional=bidirectional,
    )
    if orthogonal_recurrent:
        init_orthogonal_recurrent_(rnn)
    if forget_bias is not None:
        init_forget_bias_(rnn, forget_bias)
    return rnn


def _check_token_ids(name, idx, dims):
    if not isinstance(idx, torch.Tensor) or idx.dtype not in (torch.int64, torch.int32):
        got = idx.dtype if isinstance(idx, torch.Tensor) else type(idx).__name__
        raise ValueError(f"{name} is {got}; expected an int64 tensor of token indices")
    if idx.dim() not in dims:
        raise ValueError(f"{name} has shape {tuple(idx.shape)}; expected {' or '.join(dims.values())}")


def _check_float_input(name, x, size, shape):
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        got = x.dtype if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name} is {got}; expected a floating-point tensor of shape {shape}")
    if x.dim() != 3 or x.shape[-1] != size:
        raise ValueError(f"{name} has shape {tuple(x.shape)}; expected {shape} with D = {size}")


# --- language model -------------------------------------------------------------------


class CharLanguageModel(nn.Module):
    """Character-level language model: embedding -> recurrent layers -> linear.

    N: batch size, T: sequence length, V: vocabulary size, E: embedding
    size, H: hidden size, L: layers. Given characters ``c_0 .. c_{T-1}`` it
    gives, at every step t, scores over the next character ``c_{t+1}``::

        e_t = dropout(Embed[c_t])
        h_t = cell(e_t, h_{t-1})            (L stacked layers, dropout between them)
        s_t = W dropout(h_t) + b            (logits, V values)

    Three ways to regularise it, which the book measures (see
    :mod:`rnncourse.torch.dropout`):

    - ``dropout``: dropout on the non-recurrent connections (the embedding,
      between layers, before the read-out), a new mask at every step; the
      recurrent connections are left alone (Zaremba et al., 2014).
    - ``variational=True``: the same ``dropout``, but with one mask per
      sequence kept for every step (Gal & Ghahramani, 2016); with
      ``recurrent_dropout``, units of ``h_{t-1}`` are dropped in the
      recurrent connections too, with one mask per batch that stays the same
      at every step.
    - ``tie_weights=True``: the read-out ``W`` *is* the embedding matrix
      (Press & Wolf, 2017; Inan et al., 2017): a character's input vector and
      its output vector are one vector, ``V * H`` parameters fewer. Needs
      ``embed_size == hidden_size``.

    Whatever the options, the parameters and their names are the same (tied
    weights are one parameter): a model trained with dropout is evaluated,
    sampled and saved like one trained without.

    Parameters
    ----------
    vocab_size : V.
    hidden_size : H.
    cell : ``"lstm"``, ``"gru"`` or ``"rnn"`` (tanh).
    num_layers : L.
    embed_size : E; default H.
    dropout : probability in [0, 1) of zeroing an activation on the
        non-recurrent connections, in training.
    variational : bool; draw the ``dropout`` masks once per sequence
        instead of at every step.
    recurrent_dropout : probability in [0, 1) of dropping a unit of
        ``h_{t-1}`` in the recurrent connections of every layer (one mask per
        batch and layer, the same at every step); 0 leaves them alone.
    tie_weights : bool; the read-out shares the embedding's weight.
    forget_bias : float, optional; LSTM only, see :func:`~rnncourse.torch.init.init_forget_bias_`.
    orthogonal_recurrent : bool; see :func:`~rnncourse.torch.init.init_orthogonal_recurrent_`.

    Attributes
    ----------
    embedding : nn.Embedding (V, E).
    rnn : our LSTM, GRU or RNN, batch first (its own ``dropout`` is 0: this
        model does the dropout between its layers).
    head : nn.Linear (H -> V); ``head.weight is embedding.weight`` when tied.
    """

    def __init__(self, vocab_size, hidden_size, cell="lstm", num_layers=1, embed_size=None,
                 dropout=0.0, *, variational=False, recurrent_dropout=0.0, tie_weights=False,
                 forget_bias=None, orthogonal_recurrent=False):
        super().__init__()
        check_int("vocab_size", vocab_size)
        embed_size = hidden_size if embed_size is None else embed_size
        if tie_weights and embed_size != hidden_size:
            raise ValueError(
                f"tie_weights needs embed_size == hidden_size (the embedding is the read-out's weight); "
                f"got embed_size {embed_size} and hidden_size {hidden_size}"
            )
        self.vocab_size, self.cell = vocab_size, cell
        self.embedding = nn.Embedding(vocab_size, check_int("embed_size", embed_size))
        self.rnn = recurrent_layers(cell, embed_size, hidden_size, num_layers, 0.0, False,
                                    forget_bias, orthogonal_recurrent)
        self.dropout = nn.Dropout(check_probability("dropout", dropout))
        self.variational = bool(variational)
        self.recurrent_dropout = check_probability("recurrent_dropout", recurrent_dropout)
        self.head = nn.Linear(hidden_size, vocab_size)
        if tie_weights:
            self.head.weight = self.embedding.weight

    def _drop(self, x):
        if self.variational:
            return variational_dropout(x, self.dropout.p, self.training)
        return self.dropout(x)

    def forward(self, idx, state=None):
        """Logits over the next character at every step, and the final state.

        Parameters
        ----------
        idx : (N, T) int64, character indices in ``[0, V)``.
        state : the ``state`` a previous call returned (to continue the same
            texts), or None for zeros: ``h`` (L, N, H) for rnn/gru, ``(h, c)``
            for the lstm.

        Returns
        -------
        logits : (N, T, V).
        state : the state after the last step, same structure as ``state``.
            It still carries the graph; detach it before feeding it to the
            next chunk of truncated BPTT (``fit(..., tbptt=True)`` does).
        """
        _check_token_ids("idx", idx, {2: "(N, T)"})
        out, state = run_recurrent(self.rnn, self._drop(self.embedding(idx)), state, dropout=self.dropout.p,
                                   variational=self.variational, recurrent_dropout=self.recurrent_dropout,
                                   training=self.training)
        return self.head(self._drop(out)), state

    @torch.no_grad()
    def sample(self, prompt_idx, length, *, generator, temperature=1.0, top_k=None):
        """Generate ``length`` characters after a prompt, one at a time.

        N: number of texts, P: prompt length. The prompt is read in one call;
        then each new character is drawn from ``softmax(s / temperature)``
        over the (top-k) logits ``s`` and fed back as the next input.
        Temperature 1 samples the model's distribution; below 1 sharpens it,
        and as it goes to 0 sampling becomes greedy (always the most likely
        character); above 1 flattens it. ``top_k=k`` first discards all but
        the k most likely characters, so ``top_k=1`` is greedy.

        The model is put in eval mode (no dropout) while sampling and put
        back as it was after.

        Parameters
        ----------
        prompt_idx : (P,) or (N, P) int64 tensor, P >= 1.
        length : int >= 0, characters to generate.
        generator : torch.Generator on the model's device (required, so a
            seed gives the same text).
        temperature : float > 0.
        top_k : int in [1, V], or None for no restriction.

        Returns
        -------
        (length,) or (N, length) int64: the generated indices, without the prompt.
        """
        if not isinstance(generator, torch.Generator):
            raise ValueError(f"generator is {type(generator).__name__}; expected a torch.Generator")
        device = self.head.weight.device
        if generator.device.type != device.type:
            raise ValueError(f"generator is on {generator.device}; expected the model's device {device}")
        length = check_int("length", length, minimum=0)
        temperature = check_positive_number("temperature", temperature)
        if top_k is not None:
            top_k = check_int("top_k", top_k, maximum=self.vocab_size)
        _check_token_ids("prompt_idx", prompt_idx, {1: "(P,)", 2: "(N, P)"})
        if prompt_idx.shape[-1] == 0:
            raise ValueError("prompt_idx is empty; expected at least one character index")
        prompt = prompt_idx.to(device).reshape(-1, prompt_idx.shape[-1])

        was_training = self.training
        self.eval()
        try:
            out = torch.empty((prompt.shape[0], length), dtype=torch.int64, device=device)
            logits, state = self(prompt)
            for t in range(length):
                out[:, t] = _draw(logits[:, -1], temperature, top_k, generator)
                if t + 1 < length:
                    logits, state = self(out[:, t : t + 1], state)
        finally:
            self.train(was_training)
        return out.reshape(*prompt_idx.shape[:-1], length)


def language_model_loss(model, batch, state):
    """The loss of stateful truncated BPTT for a language model: mean cross-entropy of every next token.

    Written for ``fit(..., tbptt=True)``: ``batch`` is one ``(x, y)`` chunk
    of :func:`~rnncourse.torch.data.tbptt_chunks` (``y`` is ``x`` shifted by
    one token), and the state the model ends the chunk with is returned, for
    ``fit`` to detach and pass to the next chunk.

    Parameters
    ----------
    model : a language model, ``model(x, state) -> (logits (N, T, V), state)``.
    batch : ``(x, y)``, two (N, T) int64 tensors.
    state : the state the previous chunk ended with, or None.

    Returns
    -------
    loss : scalar tensor, nats per token.
    state : the model's state after the chunk.
    """
    x, y = batch
    logits, state = model(x, state)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1)), state


def _draw(logits, temperature, top_k, generator):
    """One index per row of logits (N, V), from softmax(logits / temperature) over the top k."""
    logits = logits.float()
    if top_k is not None:
        # Keep exactly k entries (ties at the k-th value do not let in more).
        kept, index = logits.topk(top_k, dim=-1)
        logits = torch.full_like(logits, -math.inf).scatter(-1, index, kept)
    # Shift first so the best logit is exactly 0: a tiny temperature then
    # sends the others to -inf (probability exactly 0), never to NaN.
    probs = torch.softmax((logits - logits.amax(-1, keepdim=True)) / temperature, dim=-1)
    # torch.multinomial on the device: no copy to the host, no sync per character.
    return torch.multinomial(probs, 1, generator=generator).squeeze(1)


# --- many-to-one classifier -----------------------------------------------------------


class SequenceClassifier(nn.Module):
    """Many-to-one classifier for padded batches of variable-length sequences.

    N: batch size, T: padded length, D: input features (``input_size``),
    H: hidden size, C: classes, K = 2 if bidirectional else 1.

    The padded batch is packed (``pack_padded_sequence``), so the recurrent
    layers stop at each sequence's own last step: the forward direction's
    final ``h`` is the state at step ``length - 1`` and the backward
    direction starts there rather than in the padding. The prediction does
    not depend on the padding at all. (Taking ``out[:, -1]`` of the padded
    output would read the state after ``T - length`` steps of padding, and
    gathering ``out[n, length_n - 1]`` still lets a backward direction start
    in the padding.) The classifier is ``head(concat of the last layer's final
    h over the K directions)``.

    Parameters
    ----------
    input_size : D, features per step; with ``vocab_size``, the embedding size.
    hidden_size : H.
    num_classes : C.
    cell : ``"lstm"``, ``"gru"`` or ``"rnn"``.
    num_layers : L.
    bidirectional : bool.
    dropout : on the inputs, between layers and before the head.
    vocab_size : int, optional. If given, inputs are token indices (N, T) in
        ``[0, vocab_size)``, embedded into D features first.
    forget_bias, orthogonal_recurrent : as in :class:`CharLanguageModel`.
    """

    def __init__(self, input_size, hidden_size, num_classes, cell="lstm", num_layers=1,
                 bidirectional=False, dropout=0.0, *, vocab_size=None, forget_bias=None,
                 orthogonal_recurrent=False):
        super().__init__()
        self.input_size = input_size
        self.embedding = None
        if vocab_size is not None:
            self.embedding = nn.Embedding(check_int("vocab_size", vocab_size), input_size)
        self.rnn = recurrent_layers(cell, input_size, hidden_size, num_layers, dropout,
                                    bool(bidirectional), forget_bias, orthogonal_recurrent)
        self.num_directions = 2 if bidirectional else 1
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(self.num_directions * hidden_size, check_int("num_classes", num_classes))

    def forward(self, x, lengths=None):
        """Class logits for each sequence of a padded batch.

        Parameters
        ----------
        x : (N, T, D) float, or (N, T) int64 token indices if built with
            ``vocab_size``. Sequence n is ``x[n, :lengths[n]]``; what follows
            is padding, whatever its values.
        lengths : (N,) integers in ``[1, T]`` (tensor on any device, or a
            list), or None when no sequence is padded.

        Returns
        -------
        (N, C) logits.
        """
        if self.embedding is not None:
            _check_token_ids("x", x, {2: "(N, T)"})
            x = self.embedding(x)
        else:
            _check_float_input("x", x, self.input_size, "(N, T, D)")
        x = self.dropout(x)
        if lengths is None:
            _, state = self.rnn(x)
        else:
            lengths = _check_lengths(lengths, *x.shape[:2])
            _, state = self.rnn(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
        h_n = state[0] if isinstance(state, tuple) else state  # (L*K, N, H), layer-major
        last_layer = h_n[-self.num_directions :]  # forward (and backward) direction of layer L
        return self.head(self.dropout(torch.cat(tuple(last_layer), dim=-1)))


def _check_lengths(lengths, N, T):
    # pack_padded_sequence needs the lengths on the CPU anyway, so checking
    # their values here costs no extra host-device transfer.
    lengths = torch.as_tensor(lengths).cpu()
    if lengths.dtype.is_floating_point or lengths.dtype == torch.bool or lengths.shape != (N,):
        raise ValueError(
            f"lengths is {lengths.dtype} of shape {tuple(lengths.shape)}; expected (N,) = ({N},) integers"
        )
    if N and (lengths.min() < 1 or lengths.max() > T):
        raise ValueError(
            f"lengths has values in [{int(lengths.min())}, {int(lengths.max())}]; "
            f"expected 1 <= length <= T = {T}"
        )
    return lengths.to(torch.int64)


# --- forecaster -----------------------------------------------------------------------


class Forecaster(nn.Module):
    """Forecast a (multivariate) series from a window of its past values.

    N: batch size, T: window length, D: variables (``input_size``), S:
    horizon, H: hidden size. The recurrent layers read the window; a linear
    head maps the last state ``h_T`` to the next S values of all D variables.

    Two ways to look further ahead, which the book compares:

    - :meth:`forward`, *direct* multi-step: all S values at once, each from
      the true window. Nothing predicted is fed back, so errors do not
      compound, but the horizon is fixed at training time.
    - :meth:`rollout`, *autoregressive*: predict one step (the first of the
      S outputs), feed it back as the next input, repeat, for any number of
      steps. Trained with true inputs (teacher forcing) but run on its own
      predictions, the model meets inputs unlike any it saw in training,
      and its errors feed on themselves: *exposure bias*.

    A univariate series may be given as (N, T) (then D must be 1) and comes
    back as (N, S); (N, T, D) comes back as (N, S, D).

    Parameters
    ----------
    input_size : D.
    hidden_size : H.
    horizon : S, the number of future steps :meth:`forward` predicts.
    cell, num_layers, dropout, forget_bias, orthogonal_recurrent :
        as in :class:`CharLanguageModel` (dropout between layers only here).
    """

    def __init__(self, input_size, hidden_size, horizon, cell="lstm", num_layers=1, dropout=0.0,
                 *, forget_bias=None, orthogonal_recurrent=False):
        super().__init__()
        self.input_size = input_size
        self.horizon = check_int("horizon", horizon)
        self.rnn = recurrent_layers(cell, input_size, hidden_size, num_layers, dropout, False,
                                    forget_bias, orthogonal_recurrent)
        # Output row s * D + d is variable d at step s ahead: step-major, so
        # the first D rows alone give the one-step prediction (see rollout).
        self.head = nn.Linear(hidden_size, horizon * input_size)

    def _as_3d(self, window):
        if isinstance(window, torch.Tensor) and window.dim() == 2:
            if self.input_size != 1:
                raise ValueError(
                    f"window has shape {tuple(window.shape)}; a (N, T) window is univariate, "
                    f"but this model has input_size D = {self.input_size}: expected (N, T, {self.input_size})"
                )
            _check_float_input("window", window[..., None], 1, "(N, T) or (N, T, D)")
            return window[..., None], True
        _check_float_input("window", window, self.input_size, "(N, T, D)")
        return window, False

    def forward(self, window):
        """The next S values after each window (direct multi-step forecast).

        Parameters
        ----------
        window : (N, T, D) float, or (N, T) when D = 1.

        Returns
        -------
        (N, S, D), or (N, S) for a (N, T) window.
        """
        x, univariate = self._as_3d(window)
        out, _ = self.rnn(x)
        # out[:, -1] is right here: windows all have length T, nothing is padded.
        y = self.head(out[:, -1]).unflatten(-1, (self.horizon, self.input_size))
        return y[..., 0] if univariate else y

    def rollout(self, window, steps):
        """Forecast ``steps`` values autoregressively, feeding each prediction back in.

        Each step predicts one step ahead (the first D outputs of the head),
        appends the prediction to the input and advances the recurrent state
        by that one input: ``steps`` cheap steps, not a re-read of the
        window each time. Gradients flow through the whole rollout, so it
        can also be trained on (one remedy for exposure bias); wrap it in
        ``torch.no_grad()`` to just predict.

        Parameters
        ----------
        window : (N, T, D) float, or (N, T) when D = 1.
        steps : int >= 0.

        Returns
        -------
        (N, steps, D), or (N, steps) for a (N, T) window.
        """
        steps = check_int("steps", steps, minimum=0)
        x, univariate = self._as_3d(window)
        D = self.input_size
        out, state = self.rnn(x)
        predictions = []
        for s in range(steps):
            # Only the one-step-ahead rows of the head: no need to compute all S steps.
            y = F.linear(out[:, -1], self.head.weight[:D], self.head.bias[:D])  # (N, D)
            predictions.append(y)
            if s + 1 < steps:
                out, state = self.rnn(y[:, None], state)
        y = torch.stack(predictions, dim=1) if predictions else x.new_empty((x.shape[0], 0, D))
        return y[..., 0] if univariate else y


# --- CTC recognizer -------------------------------------------------------------------------


class CTCRecognizer(nn.Module):
    """Frames in, log-probabilities over C labels and a blank at every frame out, for the CTC loss.

    N: batch size, T: padded number of frames, D: features per frame
    (``input_size``), H: hidden size, C: labels (``num_labels``), K = 2 if
    bidirectional else 1. Index 0 of the output is the **blank** (no
    label at this frame); labels are 1..C, the convention of
    ``torch.nn.functional.ctc_loss`` (``blank=0``). The recurrent layers read
    the packed batch, so padding never enters a sequence's outputs (a
    backward direction starts at each sequence's own last frame)::

        h_t = [forward h_t, backward h_t]      (K * H values)
        log p_t = log_softmax(W h_t + b)        (C + 1 values)

    Connectionist temporal classification (Graves et al., 2006) trains it
    from unaligned label sequences: the loss sums the probability of every
    frame-by-frame path that collapses to the target (merge repeated
    labels, then drop blanks). Pass ``log_probs.transpose(0, 1)``, which is
    (T, N, C + 1), to ``torch.nn.functional.ctc_loss``.

    Parameters
    ----------
    input_size : D.
    hidden_size : H.
    num_labels : C, not counting the blank.
    cell, num_layers, dropout, forget_bias, orthogonal_recurrent :
        as in :class:`CharLanguageModel` (dropout between layers only here).
    bidirectional : bool, default True: each frame's output sees the whole
        input, as when a complete recording is transcribed.
    """

    def __init__(self, input_size, hidden_size, num_labels, cell="gru", num_layers=1, bidirectional=True,
                 dropout=0.0, *, forget_bias=None, orthogonal_recurrent=False):
        super().__init__()
        self.input_size = input_size
        self.num_labels = check_int("num_labels", num_labels)
        self.rnn = recurrent_layers(cell, input_size, hidden_size, num_layers, dropout, bool(bidirectional),
                                    forget_bias, orthogonal_recurrent)
        self.head = nn.Linear((2 if bidirectional else 1) * hidden_size, num_labels + 1)

    def forward(self, x, lengths=None):
        """Log-probabilities over blank and labels at every frame.

        Parameters
        ----------
        x : (N, T, D) float; sequence n is ``x[n, :lengths[n]]``.
        lengths : (N,) integers in ``[1, T]``, or None when nothing is padded.

        Returns
        -------
        (N, T, C + 1) log-probabilities, index 0 the blank. Rows past a
        sequence's length are those of a zero state and mean nothing (the
        CTC loss and :func:`~rnncourse.torch.ctc.ctc_greedy_decode` do not
        read them when given the lengths).
        """
        _check_float_input("x", x, self.input_size, "(N, T, D)")
        if lengths is None:
            out, _ = self.rnn(x)
        else:
            lengths = _check_lengths(lengths, *x.shape[:2])
            packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
            out, _ = pad_packed_sequence(self.rnn(packed)[0], batch_first=True, total_length=x.shape[1])
        return F.log_softmax(self.head(out), dim=-1)
