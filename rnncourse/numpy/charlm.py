"""A character-level language model: embedding, one recurrent layer, softmax.

Given characters ``c_0 .. c_{T-1}`` the model predicts ``c_1 .. c_T``::

    e_t = W_embed[c_t]                         (embedding)
    h_t = cell(e_t, h_{t-1})                   (rnn, gru or lstm)
    s_t = h_t W_out + b_out                    (scores over the vocabulary)
    L   = mean_t  -log softmax(s_t)[c_{t+1}]   (cross-entropy)

and generates text by sampling one character at a time from
``softmax(s_t / temperature)`` and feeding it back in.
"""

import numpy as np

from ..validation import check_choice, check_positive_number, check_rng
from .gru import gru_backward, gru_forward, gru_step_forward
from .layers import (
    embedding_backward,
    embedding_forward,
    temporal_affine_backward,
    temporal_affine_forward,
)
from .losses import temporal_softmax_loss
from .lstm import lstm_backward, lstm_forward, lstm_step_forward
from .rnn import rnn_backward, rnn_forward, rnn_step_forward
from ._checks import dims, expect_shape, float_array, int_array, no_cell_state, positive_int
from .activations import softmax
from .multilayer import init_params

__all__ = ["CharVocab", "CharRNN"]


class CharVocab:
    """The characters of a text, numbered 0 .. V-1 in sorted order.

    V: vocabulary size, T: text length.

    >>> vocab = CharVocab("hello")
    >>> vocab.chars
    ['e', 'h', 'l', 'o']
    >>> vocab.encode("hole").tolist()
    [1, 3, 2, 0]
    >>> vocab.decode([1, 0, 2, 2, 3])
    'hello'
    """

    def __init__(self, text):
        if not isinstance(text, str) or len(text) == 0:
            raise ValueError(f"text is {text!r:.40}; expected a non-empty str")
        self.chars = sorted(set(text))
        self.index = {ch: i for i, ch in enumerate(self.chars)}

    def __len__(self):
        return len(self.chars)

    @property
    def size(self):
        """V, the number of distinct characters."""
        return len(self.chars)

    def encode(self, text):
        """``text`` (str of length T) as an int64 array of shape (T,)."""
        unknown = sorted(set(text) - self.index.keys())
        if unknown:
            raise ValueError(
                f"text has characters {unknown!r} that are not in the vocabulary {self.chars!r}"
            )
        return np.array([self.index[ch] for ch in text], dtype=np.int64)

    def decode(self, idx):
        """Indices, shape (T,), back to a str of length T."""
        if np.size(idx) == 0:
            return ""
        idx = int_array("idx", idx)
        dims("idx", idx, "T")
        if idx.size and (idx.min() < 0 or idx.max() >= len(self.chars)):
            raise ValueError(
                f"idx has values in [{idx.min()}, {idx.max()}]; expected 0 <= idx < V = {len(self.chars)}"
            )
        return "".join(self.chars[i] for i in idx)


class CharRNN:
    """Character language model: embedding -> rnn/gru/lstm -> affine -> softmax.

    N: batch size, T: sequence length, V: vocabulary size, E: embedding
    size, H: hidden size, G: gates per cell (1 rnn, 3 gru, 4 lstm).

    Parameters
    ----------
    vocab_size : V.
    hidden_size : H.
    cell : ``"rnn"`` (tanh), ``"gru"`` or ``"lstm"``.
    embed_size : E; default H.
    rng : numpy.random.Generator for the initial weights (required).
    dtype : float32 or float64.

    Attributes
    ----------
    params : dict name -> array, the arrays an optimizer updates in place
        (``Adam(model.params)``): ``W_embed`` (V, E) drawn from N(0, 1) as ``torch.nn.Embedding``;
        the cell's ``Wx`` (E, G*H), ``Wh`` (H, G*H) and ``b`` (G*H,), or
        ``bx``, ``bh`` for the GRU (see :func:`~rnncourse.numpy.multilayer.init_params`); ``W_out`` (H, V)
        and ``b_out`` (V,) drawn from U(-1/sqrt(H), 1/sqrt(H)) as
        ``torch.nn.Linear``.
    """

    def __init__(self, vocab_size, hidden_size, *, cell="lstm", embed_size=None, rng, dtype=np.float64):
        check_choice("cell", cell, ("rnn", "gru", "lstm"))
        check_rng(rng)
        self.cell = cell
        self.vocab_size = positive_int("vocab_size", vocab_size)
        self.hidden_size = positive_int("hidden_size", hidden_size)
        self.embed_size = self.hidden_size if embed_size is None else positive_int("embed_size", embed_size)
        V, H, E = self.vocab_size, self.hidden_size, self.embed_size
        k = 1.0 / np.sqrt(H)
        self.params = {"W_embed": rng.standard_normal((V, E)).astype(dtype)}
        self.params.update(init_params(cell, E, H, rng=rng, dtype=dtype)[0][0])
        self.params["W_out"] = rng.uniform(-k, k, size=(H, V)).astype(dtype)
        self.params["b_out"] = rng.uniform(-k, k, size=V).astype(dtype)

    # --- the recurrent layer, whichever cell -------------------------------------------

    def _cell_forward(self, e, h0, c0):
        p = self.params
        if self.cell == "rnn":
            h, cache = rnn_forward(e, h0, p["Wx"], p["Wh"], p["b"])
            return h, None, cache
        if self.cell == "gru":
            h, cache = gru_forward(e, h0, p["Wx"], p["Wh"], p["bx"], p["bh"])
            return h, None, cache
        return lstm_forward(e, h0, p["Wx"], p["Wh"], p["b"], c0, return_state=True)

    def _cell_backward(self, dh, cache):
        if self.cell == "rnn":
            de, _, dWx, dWh, db = rnn_backward(dh, cache)
            return de, {"Wx": dWx, "Wh": dWh, "b": db}
        if self.cell == "gru":
            de, _, dWx, dWh, dbx, dbh = gru_backward(dh, cache)
            return de, {"Wx": dWx, "Wh": dWh, "bx": dbx, "bh": dbh}
        de, _, dWx, dWh, db = lstm_backward(dh, cache)
        return de, {"Wx": dWx, "Wh": dWh, "b": db}

    def _cell_step(self, e, h, c):
        p = self.params
        if self.cell == "rnn":
            return rnn_step_forward(e, h, p["Wx"], p["Wh"], p["b"])[0], None
        if self.cell == "gru":
            return gru_step_forward(e, h, p["Wx"], p["Wh"], p["bx"], p["bh"])[0], None
        h, c, _ = lstm_step_forward(e, h, c, p["Wx"], p["Wh"], p["b"])
        return h, c

    def _initial_state(self, name, state, N):
        H = self.hidden_size
        if state is None:
            return np.zeros((N, H), dtype=self.params["Wh"].dtype)
        return expect_shape(name, float_array(name, state), "N H", (N, H))

    def _check_indices(self, name, idx):
        idx = int_array(name, idx)
        if idx.size and (idx.min() < 0 or idx.max() >= self.vocab_size):
            raise ValueError(
                f"{name} has values in [{idx.min()}, {idx.max()}]; "
                f"expected 0 <= {name} < V = {self.vocab_size}"
            )
        return idx

    # --- training -------------------------------------------------------------------------

    def loss(self, idx_in, idx_target, h0=None, c0=None, *, return_state=False):
        """Mean cross-entropy of predicting ``idx_target`` from ``idx_in``, and its gradients.

        N: batch size, T: sequence length, H: hidden size.

        Parameters
        ----------
        idx_in : (N, T) int, the input characters ``c_0 .. c_{T-1}``.
        idx_target : (N, T) int, the characters to predict, usually ``c_1 .. c_T``.
        h0 : (N, H) initial hidden state, None for zeros.
        c0 : (N, H) initial cell state (lstm only), None for zeros.
        return_state : also return the final state, to carry into the next
            stretch of text (truncated BPTT: no gradient flows into h0).

        Returns
        -------
        loss : float, the mean over the N*T predictions, in nats.
        grads : dict with the keys and shapes of ``params``.
        h_last : (N, H), only if ``return_state``; for the lstm the pair
            ``(h_last, c_last)``.
        """
        idx_in = self._check_indices("idx_in", idx_in)
        N, T = dims("idx_in", idx_in, "N T")
        idx_target = expect_shape("idx_target", self._check_indices("idx_target", idx_target), "N T", (N, T))
        h0 = self._initial_state("h0", h0, N)
        if self.cell == "lstm":
            c0 = self._initial_state("c0", c0, N)
        else:
            no_cell_state("c0", c0, self.cell)
        p = self.params

        e, embed_cache = embedding_forward(idx_in, p["W_embed"])
        h, c_last, cell_cache = self._cell_forward(e, h0, c0)
        scores, affine_cache = temporal_affine_forward(h, p["W_out"], p["b_out"])
        loss, dscores = temporal_softmax_loss(scores, idx_target)
        loss = float(loss)

        dh, dW_out, db_out = temporal_affine_backward(dscores, affine_cache)
        de, grads = self._cell_backward(dh, cell_cache)
        grads["W_embed"] = embedding_backward(de, embed_cache)
        grads["W_out"], grads["b_out"] = dW_out, db_out
        if not return_state:
            return loss, grads
        state = h[:, -1] if self.cell != "lstm" else (h[:, -1], c_last)
        return loss, grads, state

    # --- generation -----------------------------------------------------------------------

    def sample(self, start, length, *, rng, temperature=1.0, h0=None, c0=None):
        """Generate ``length`` characters, one at a time, after the prompt ``start``.

        P: prompt length, H: hidden size.

        The prompt is read first (teacher forcing); then each new character
        is drawn from ``softmax(s_t / temperature)`` and fed back as the next
        input. Temperature 1 samples the model's distribution; below 1 it
        sharpens it, and as it goes to 0 sampling becomes greedy (the most
        likely character each time); above 1 it flattens it.

        Parameters
        ----------
        start : int, or (P,) int array with P >= 1: the prompt's indices.
        length : number of characters to generate, >= 0.
        rng : numpy.random.Generator (required: the same seed gives the same text).
        temperature : > 0.
        h0 : (1, H) initial hidden state, None for zeros.
        c0 : (1, H) initial cell state (lstm only), None for zeros.

        Returns
        -------
        (length,) int64 array of generated indices (the prompt not included).
        """
        check_rng(rng)
        temperature = check_positive_number("temperature", temperature)
        if int(length) != length or length < 0:
            raise ValueError(f"length is {length!r}; expected an integer >= 0")
        if np.size(start) == 0:
            raise ValueError("start is empty; expected at least one character index")
        prompt = np.atleast_1d(self._check_indices("start", start))
        dims("start", prompt, "P")
        h = self._initial_state("h0", h0, 1)
        if self.cell == "lstm":
            c = self._initial_state("c0", c0, 1)
        else:
            no_cell_state("c0", c0, self.cell)
            c = None
        W_embed, W_out, b_out = self.params["W_embed"], self.params["W_out"], self.params["b_out"]

        for idx in prompt[:-1]:  # read the prompt; its predictions are not needed
            h, c = self._cell_step(W_embed[idx][None, :], h, c)
        idx = int(prompt[-1])
        out = np.empty(int(length), dtype=np.int64)
        for i in range(int(length)):
            h, c = self._cell_step(W_embed[idx][None, :], h, c)
            scores = (h @ W_out + b_out)[0].astype(np.float64)
            # Shift first so the best score is exactly 0; a tiny temperature
            # then sends the others to -inf (probability exactly 0), not NaN.
            with np.errstate(over="ignore"):
                probs = softmax((scores - scores.max()) / temperature)
            # Inverse-CDF draw: the first index whose cumulative probability
            # exceeds u * total, u uniform in [0, 1). A probability of exactly
            # 0 is never drawn; min() guards against u * total rounding up to total.
            cdf = np.cumsum(probs)
            idx = min(int(np.searchsorted(cdf, rng.random() * cdf[-1], side="right")), self.vocab_size - 1)
            out[i] = idx
        return out
