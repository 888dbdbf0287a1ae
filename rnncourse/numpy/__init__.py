"""The NumPy reference: every model of the course, forward and backward by hand.

One convention for the whole package, stated here once:

- **Batch first.** A sequence is an array ``x`` of shape ``(N, T, D)``:
  ``N`` sequences in the minibatch, ``T`` time steps, ``D`` input features.
  Hidden states are ``(N, H)`` per step and ``(N, T, H)`` for a sequence.
- **Row vectors**, as the code multiplies them. The plain RNN is
  ``h_t = tanh(x_t Wx + h_{t-1} Wh + b)`` with ``Wx`` of shape ``(D, H)`` and
  ``Wh`` of shape ``(H, H)``.
- ``h`` is the hidden state, ``c`` the LSTM cell state.
- **Gates are stacked in PyTorch's order**: LSTM ``i, f, g, o`` (input,
  forget, cell candidate, output) along the last axis of ``Wx (D, 4H)``,
  ``Wh (H, 4H)`` and ``b (4H,)``; GRU ``r, z, n`` (reset, update, new) in
  ``Wx (D, 3H)``, ``Wh (H, 3H)``, ``bx, bh (3H,)``. A weight of ours is the
  transpose of the ``torch.nn`` weight of the same name
  (``Wx = weight_ih_l0.T``, ``Wh = weight_hh_l0.T``); see :mod:`rnncourse.numpy.convert`.
- **GRU** follows ``torch.nn.GRU``: the reset gate multiplies *after* the
  hidden matrix product, ``n = tanh(x Wxn + bxn + r * (h Whn + bhn))`` and
  ``h' = (1 - z) * n + z * h``. ``reset_after=False`` selects the variant of
  Cho et al. (2014), ``n = tanh(x Wxn + (r * h) Whn + bxn + bhn)``.
- **dtypes.** float32 and float64 both work; results have the dtype NumPy's
  promotion gives the inputs (float32 in, float32 out). Integer arrays where
  floats are expected raise ``ValueError``.
- **Forward and backward come in pairs.** ``forward(...) -> (out, cache)``
  and ``backward(dout, cache) -> gradients``. The backward takes the
  upstream gradient, the gradient of the loss with respect to the forward's
  output, of its shape and named after it (``dout``, ``dh``, ``dy``,
  ``dscores``), and the ``cache`` its forward returned, which it never
  modifies: calling it twice gives the same result. It returns the gradients
  of the forward's inputs in the order of the forward's arguments, each of its
  input's shape (``dx`` for ``x``, ``dWx`` for ``Wx``; integer inputs such as
  token ids have none). A backward's docstring says what is its own: its
  upstream gradient, its results, its notes. The caches of the RNN, LSTM and
  GRU are flat tuples of arrays in the layouts their docstrings state, which
  the exercises state too: a step's inputs, then what it computed; a
  sequence's inputs, then the steps' fields stacked batch-first ``(N, T, H)``.
  A sequence function is its step function in a loop, as an exercise asks a
  learner to write it.
- **Bad input** raises ``ValueError`` saying what was expected and what came:
  ``h0 has shape (4, 3); expected (N, H) = (4, 5)``.

Importing this package does not import PyTorch.
"""

from .activations import *  # noqa: F401,F403
from .gradcheck import *  # noqa: F401,F403
from .rnn import *  # noqa: F401,F403
from .lstm import *  # noqa: F401,F403
from .gru import *  # noqa: F401,F403
from .layers import *  # noqa: F401,F403
from .losses import *  # noqa: F401,F403
from .attention import *  # noqa: F401,F403
from .multilayer import *  # noqa: F401,F403
from .bptt import *  # noqa: F401,F403
from .clip import *  # noqa: F401,F403
from .optim import *  # noqa: F401,F403
from .convert import *  # noqa: F401,F403
from .charlm import *  # noqa: F401,F403
# Part three: linear recurrences, the parallel scan, state-space models, linear attention.
from .scan import *  # noqa: F401,F403
from .minrnn import *  # noqa: F401,F403
from .lru import *  # noqa: F401,F403
from .ssm import *  # noqa: F401,F403
from .linear_attention import *  # noqa: F401,F403
from .newton import *  # noqa: F401,F403
