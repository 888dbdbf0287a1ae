"""The time loops of one RNN, LSTM or GRU layer-direction, with hand-derived BPTT.

Each layer-direction is one ``torch.autograd.Function``. Its forward runs the
time loop with autograd off and keeps what the backward needs (the activated
gates, the cell states, the outputs); its backward is backpropagation through
time written out by hand, as in :mod:`rnncourse.numpy`. This design was chosen
by measurement. LSTM forward + backward, float32, one thread, on the
project's (shared, 2-core AMD EPYC) CPU, time relative to ``torch.nn.LSTM``
(the lower the better; the machine was loaded, so +-10%)::

    (N, T, D, H)                          (32, 64, 64, 128)   (64, 128, 256, 256)
    this Function                         2.5 - 2.7           1.5 - 1.6
    plain autograd through a Python loop  2.8                 1.8
    TorchScript of the cell               3.1                 1.7
    torch.compile of the cell             3.8, after 42 s     1.9, after 11 s
                                          compiling           compiling (new shape)

(all with ``torch.mm``; with the oneDNN products and the CPU ``tanh``
described below, this Function is at 2.0 - 2.5 and 1.1).

- Autograd through a Python loop records some ten nodes per step and replays
  them one by one in the backward. The Function records one node per layer,
  and its backward does per step only what the recurrence forces (one
  ``(N, G*H) @ W_hh`` product and a few element-wise operations); everything
  that depends on all steps at once (the derivatives of the activations, the
  weight gradients ``dW_ih = da^T x``, ``dW_hh = da^T h_prev``, the input
  gradient ``dx = da W_ih``, the bias gradients) is one large operation
  before or after the loop, where a BLAS runs at full speed.
- ``torch.compile`` and TorchScript (deprecated) compile the cell, not the
  loop: they still launch kernels step by step, and ``torch.compile`` adds
  a C++ compilation per new shape.
- Matrix products on the CPU: ``torch.nn.LSTM`` runs oneDNN's fused LSTM
  primitive, whose matrix products (oneDNN's own kernels) run about 2x
  faster on this CPU than the MKL ``sgemm`` that every float32 ``torch.mm``
  goes through (MKL on an AMD CPU: 84-93 GFLOP/s on one thread, against
  150-210). So ours call oneDNN too, for the per-step products
  (:class:`_Weight`, weight packed once per call) and the products over all
  steps (``_affine``, :meth:`Steps.weight_gradients`). LSTM forward +
  backward, float32, one thread, relative to ``torch.nn.LSTM``: 1.72 and
  1.97 at (64, 128, 256, 256) and (64, 100, 512, 512) with ``torch.mm``,
  1.05 to 1.13 (three runs) with oneDNN and ``_tanh``. (Going through
  ``Tensor.to_mkldnn`` instead converts layouts at every step and gained
  little.) ``torch.nn.GRU`` and ``RNN`` have no fused path on the CPU: ours
  are faster (see ``benchmarks/torch_vs_cudnn.py``).
- ``tanh`` on the CPU is computed through ``sigmoid`` (``_tanh``): torch's
  own is several times slower here.
- The input projection ``x_t W_ih^T + b`` of every step is one matrix
  product over all ``S`` rows before the loop.
- The gate blocks of the LSTM are rotated from torch's ``(i, f, g, o)`` to
  ``(o, i, f, g)`` inside the Function: the three sigmoid gates are then
  adjacent (one ``sigmoid_`` per step, not two) and in the backward the three
  gates driven by ``dc`` are adjacent (one multiplication, not two). The
  rotation costs a copy of the weights per call, not per step.
- No host-device synchronisation in the loops: batch sizes are Python ints
  (``PackedSequence.batch_sizes`` lives on the CPU), never read from a tensor.

Sequences are *flat*: ``x`` is ``(S, D)`` with the rows of time step ``t``
at ``offsets[t] : offsets[t] + batch_sizes[t]``, exactly the layout of
``PackedSequence.data`` (a padded ``(T, N, D)`` batch is the special case
``batch_sizes = (N,) * T``, viewed as ``(T * N, D)``). Batch sizes never grow
with ``t``, so at each step the live sequences are the first ``b_t`` rows of
the state; going backwards in time (the reverse direction) rows join the
batch, starting from their initial state.

The hand-written backward passes are fast but not themselves differentiable,
and their in-place operations cannot be vectorized by ``vmap``. Where those
are needed, the same layer runs as its *composite* form instead: the step
functions :func:`rnn_step`, :func:`lstm_step`, :func:`gru_step` (the book's
equations in plain tensor operations, which the cells use too) in a Python
loop over time, :func:`composite_layer`, which autograd, ``vmap``, the JIT
tracer and ``torch.compile`` all see through:

- inside a backward, when the graph of the backward is asked for
  (``create_graph=True``: gradient penalties, Hessian-vector products,
  ``gradgradcheck``) or the gradients are batched by ``vmap``
  (``jacobian(vectorize=True)``, batched gradient checks),
  :func:`differentiable_backward` recomputes the layer in composite form from
  its saved inputs and differentiates that. The first-order backward, the
  one training runs, costs one check more;
- for the whole module, when it is traced (``torch.jit.trace``), compiled
  (``torch.compile``), transformed (``torch.func``) or given an empty batch
  (see ``rnncourse.torch.rnn``).
"""

import torch


class Steps:
    """Where the rows of each time step lie in a flat ``(S, F)`` sequence.

    Parameters
    ----------
    batch_sizes : sequence of T Python ints, non-increasing, ``b_0 = N``.
    """

    def __init__(self, batch_sizes):
        self.sizes = tuple(int(b) for b in batch_sizes)
        self.T = len(self.sizes)
        self.N = self.sizes[0]
        offsets, total = [], 0
        for b in self.sizes:
            offsets.append(total)
            total += b
        self.offsets = tuple(offsets)
        self.S = total
        self.packed = any(b != self.N for b in self.sizes)
        self._indices = {}

    def times(self, reverse):
        """The time steps in the order the loop visits them."""
        return range(self.T - 1, -1, -1) if reverse else range(self.T)

    def per_step(self, flat):
        """The rows of each time step of ``flat`` (S, ...), as a list of T views.

        One ``split`` before the loop instead of slicing inside it: on a GPU
        the loop is bound by the Python work per step, not by the arithmetic.
        """
        return list(flat.split(self.sizes))

    def _index(self, kind, reverse, device):
        key = (kind, reverse, device)
        if key not in self._indices:
            build = self._previous_index if kind == "previous" else self._final_index
            # built on the CPU from Python ints, copied once per call of the
            # module (shared by all layers), never inside a time loop
            self._indices[key] = build(reverse).to(device)
        return self._indices[key]

    def _previous_index(self, reverse):
        # row s of cat((flat, init)): the state the step of row s started from;
        # init rows are S + j
        parts = []
        for t, (offset, b) in enumerate(zip(self.offsets, self.sizes)):
            rows = torch.arange(b)
            source = t + 1 if reverse else t - 1
            if 0 <= source < self.T:
                b_source = self.sizes[source]
                from_init = rows >= b_source
                parts.append(torch.where(from_init, self.S + rows, self.offsets[source] + rows))
            else:
                parts.append(self.S + rows)
        return torch.cat(parts)

    def _final_index(self, reverse):
        # forward in time, rows [b_{t+1}, b_t) end at step t; listed for t from
        # T - 1 down, they come out in row order
        parts = []
        for t in reversed(range(self.T)):
            b_after = self.sizes[t + 1] if t + 1 < self.T else 0
            parts.append(self.offsets[t] + torch.arange(b_after, self.sizes[t]))
        return torch.cat(parts)

    def previous(self, flat, init, reverse):
        """For each row, the state its step started from, as ``[(rows, state)]`` pieces.

        ``rows`` is a slice of the S rows and ``state`` the matching rows of
        ``flat`` (the states computed by the loop, ``(S, F)``) or ``init``
        (``(N, F)``). Pieces, not one ``(S, F)`` tensor: a padded batch then
        needs no copy (a fresh large buffer is costly on the CPU, where every
        new page is a page fault).
        """
        N, S = self.N, self.S
        if not self.packed:
            if reverse:
                return [(slice(0, S - N), flat[N:]), (slice(S - N, S), init)]
            return [(slice(0, N), init), (slice(N, S), flat[: S - N])]
        index = self._index("previous", reverse, flat.device)
        return [(slice(0, S), torch.cat((flat, init)).index_select(0, index))]

    def previous_product(self, da, flat, init, reverse):
        """``sum over rows of da^T @ previous state``: ``(G, F)``, e.g. dW_hh."""
        (rows, state), *rest = self.previous(flat, init, reverse)
        product = da[rows].t() @ state
        for rows, state in rest:
            product.addmm_(da[rows].t(), state)
        return product

    def weight_gradients(self, da, x, flat, init, reverse):
        """``(da^T x, da^T h_prev)``: the gradients of ``W_ih`` and ``W_hh``.

        ``da (S, G)`` is the gradient of the pre-activations, ``x (S, D)``
        the input, ``flat (S, F)`` the states the loop computed and ``init
        (N, F)`` the initial state. Where the products run in oneDNN (see
        :class:`_Weight`), which takes row-major operands only and would copy
        transposed views itself, ``da`` is transposed once for both, in one
        product ``da^T [x | h_prev]``: at (64, 128, 256, 256) that saves one
        (S, 4H) copy (20 ms, mostly page faults of the fresh buffer) of an
        LSTM backward of about 160 ms.
        """
        if not _on_onednn(da):
            return da.t() @ x, self.previous_product(da, flat, init, reverse)
        D = x.shape[1]
        xh_t = x.new_empty(D + flat.shape[1], self.S)  # [x | h_prev]^T
        xh_t[:D].copy_(x.t())
        for rows, state in self.previous(flat, init, reverse):
            xh_t[D:, rows].copy_(state.t())
        both = _onednn_linear(da.t().contiguous(), xh_t)
        # each in a tensor of its own, like torch's gradients (a column slice
        # is a strided view: g.view(-1) fails on it); 2 x (G, D + F) numbers
        return both[:, :D].contiguous(), both[:, D:].contiguous()

    def final(self, flat, reverse):
        """``(N, F)``: each sequence's state after its last step (a new tensor)."""
        if reverse:  # time step 0 comes last and holds every row
            return flat[: self.N].clone()
        if not self.packed:
            return flat[self.S - self.N :].clone()
        return flat.index_select(0, self._index("final", False, flat.device))


def _rows(prev, init, b):
    """The state a step of ``b`` rows starts from, given the previous step's state.

    ``prev`` has the rows of the previous step: fewer than ``b`` when rows
    join the batch (the reverse direction of a packed sequence), which start
    from ``init``.
    """
    n = prev.shape[0]
    if n == b:
        return prev
    if n > b:
        return prev[:b]
    return torch.cat((prev, init[n:b]))


def _incoming(carry, b, d_final, init_parts):
    """The gradient reaching the ``b`` rows of a state when the batch size changes.

    The fast path (the next step in loop order has the same ``b`` rows) is
    written out in each backward; this one serves the few steps of a packed
    sequence where it does not.

    Parameters
    ----------
    carry : ``(b_next, F)`` tensor or None: the gradient the next step in
        loop order passes back to the state it started from (None at the
        last step).
    b : rows of this step.
    d_final : ``(N, F)`` gradient on the final state.
    init_parts : list collecting ``(first_row, gradient)`` for rows of the
        next step that started from the initial state.

    Returns
    -------
    ``(b, F)``, a new tensor.
    """
    b_next = 0 if carry is None else carry.shape[0]
    if b_next >= b:  # rows [b, b_next) of the next step started from init
        init_parts.append((b, carry[b:]))
        return carry[:b].clone()
    # rows [b_next, b) end at this step: the final state's gradient comes in here
    if carry is None:
        return d_final[:b].clone()
    return torch.cat((carry, d_final[b_next:b]))


def _assemble(parts, first):
    """The initial state's gradient ``(N, F)`` from ``(first_row, rows)`` pieces."""
    parts = sorted(parts + [(0, first)], key=lambda part: part[0])
    return parts[0][1] if len(parts) == 1 else torch.cat([rows for _, rows in parts])


class _Weight:
    """A weight ``w (G, F)`` that a time loop multiplies by at every step: ``x @ w^T``.

    On the CPU in float32 the products run in oneDNN, with ``w`` packed once
    (per call of the layer) into oneDNN's blocked layout; anywhere else (a
    GPU, float64, a torch built without oneDNN) they are ``torch.mm``. Chosen
    by measurement: on the project's AMD CPU every ``torch.mm`` goes to MKL,
    whose ``sgemm`` runs the per-step shapes at 84-88 GFLOP/s on one thread
    (it takes a generic path on AMD processors), where oneDNN's kernels run
    them at 155-190 GFLOP/s, the speed ``torch.nn.LSTM``'s own primitive
    gets. The operator is the one ``torch.compile``'s CPU back end calls for
    linear layers, ``torch.ops.mkldnn._linear_pointwise``: private, so it is
    looked up once at import and ``torch.mm`` is used if it is missing.
    Results agree with ``torch.mm`` to float32 rounding (the sums are
    accumulated in another order).

    Parameters
    ----------
    w : (G, F) tensor.
    rows : the usual number of rows of ``x`` (the batch size), a hint for the packing.
    """

    def __init__(self, w, rows):
        self.w = w
        self.packed = None
        if _on_onednn(w):
            self.packed = _REORDER_LINEAR_WEIGHT(w.contiguous(), rows)

    def times(self, x, out=None):
        """``x @ w^T`` for ``x (b, F)``: ``(b, G)``, a new tensor or written into ``out``."""
        if self.packed is None:
            return torch.mm(x, self.w.t(), out=out)
        product = _onednn_linear(x.contiguous(), self.packed)
        return product if out is None else out.copy_(product)

    def plus_times(self, y, x, out=None):
        """``y + x @ w^T`` (``y`` broadcast to ``(b, G)``), a new tensor or written into ``out``."""
        if self.packed is None:
            return torch.addmm(y, x, self.w.t(), out=out)
        return torch.add(y, self.times(x), out=out)

    def add_times(self, out, x):
        """``out += x @ w^T`` in place; returns ``out``."""
        if self.packed is None:
            return out.addmm_(x, self.w.t())
        return out.add_(self.times(x))


# torch's private oneDNN operators, looked up once (None where this build of torch has none)
_LINEAR_POINTWISE = _REORDER_LINEAR_WEIGHT = None
if torch.backends.mkldnn.is_available():
    _REORDER_LINEAR_WEIGHT = getattr(torch.ops.mkldnn, "_reorder_linear_weight", None)
    if _REORDER_LINEAR_WEIGHT is not None:
        _LINEAR_POINTWISE = getattr(torch.ops.mkldnn, "_linear_pointwise", None)


def _onednn_linear(x, weight, bias=None):
    """``x @ weight^T + bias`` in oneDNN, for float32 on the CPU (see :func:`_on_onednn`).

    ``x (M, K)`` float32; ``weight (G, K)`` either a plain tensor (any strides)
    or packed into oneDNN's blocked layout by ``_reorder_linear_weight(w, M)``
    (:class:`_Weight`); ``bias (G,)`` or None. Returns a new ``(M, G)`` tensor.

    The operator, ``torch.ops.mkldnn._linear_pointwise(x, weight, bias, attr,
    scalars, algorithm)``, is the one ``torch.compile``'s CPU back end calls
    for linear layers; its last three arguments describe an element-wise
    operation oneDNN can fuse after the product: ``attr`` names it (``"none"``:
    no operation), ``scalars`` are its arguments (none) and ``algorithm`` its
    variant (``""``: the default). It is private: looked up once at import,
    and every caller falls back to ``torch.mm`` where it is missing.
    """
    return _LINEAR_POINTWISE(x, weight, bias, "none", [], "")


def _on_onednn(w):
    """Whether products with ``w`` run in oneDNN: float32 on the CPU, oneDNN present and enabled."""
    return (
        _LINEAR_POINTWISE is not None
        and w.device.type == "cpu"
        and w.dtype == torch.float32
        and torch.backends.mkldnn.enabled
    )


def _affine(x, weight, bias=None):
    """``x @ weight^T + bias`` in one call (bias may be None), for the products over all steps.

    In oneDNN where :class:`_Weight` is: on one thread the input projection
    and ``dx`` run 1.7-2.3x faster than with MKL. ``x`` and ``weight`` may be
    any strided views.
    """
    if _on_onednn(weight):
        return _onednn_linear(x, weight, bias)
    if bias is None:
        return x @ weight.t()
    return torch.addmm(bias, x, weight.t())


def _tanh(a, out=None):
    """``tanh(a)``, into ``out`` (a new tensor if None; ``out`` may be ``a``).

    On the CPU as ``2 sigmoid(2a) - 1``. Chosen by measurement: torch
    2.13's CPU ``tanh`` runs some 8x slower than its ``sigmoid`` on the
    project's AMD CPU (one thread, a (64, 256) float32 block: 37 us against
    4.5 us), and the four passes of the identity take 13 us. The identity is
    exact; in floating point its error is absolute, a few roundings of 1
    (float32 about 1e-7, float64 about 2e-16), inside the project's ``atol``.
    On a GPU ``tanh`` is one fast kernel and is used as it is.
    """
    if a.device.type != "cpu":
        return torch.tanh(a, out=out)
    return torch.mul(a, 2, out=out).sigmoid_().mul_(2).sub_(1)


def _rotate(w, H):
    """LSTM gate blocks ``(i, f, g, o)`` along dim 0 -> ``(o, i, f, g)``."""
    return torch.roll(w, H, 0)


def _unrotate(w, H):
    return torch.roll(w, -H, 0)


# -- The composite form: the steps in plain tensor operations ---------------


def rnn_step(x_t, h, w_ih, w_hh, b_ih, b_hh, relu=False):
    """``h' = tanh(x_t W_ih^T + b_ih + h W_hh^T + b_hh)`` (ReLU if ``relu``): ``(b, H)``.

    ``x_t (b, D)``, ``h (b, H)``, torch.nn's weights ``w_ih (H, D)``, ``w_hh
    (H, H)``, biases ``(H,)`` or None.
    """
    a = _linear(x_t, w_ih, b_ih) + _linear(h, w_hh, b_hh)
    return torch.relu(a) if relu else torch.tanh(a)


def lstm_step(x_t, h, c, w_ih, w_hh, b_ih, b_hh, w_hr=None):
    """One LSTM step, gates stacked ``i, f, g, o``: ``(h', c')``.

    ``x_t (b, D)``, ``h (b, P)``, ``c (b, H)``, ``w_ih (4H, D)``, ``w_hh (4H,
    P)``, biases ``(4H,)`` or None, ``w_hr (P, H)`` or None (no projection,
    P = H)::

        i, f, g, o = sigmoid, sigmoid, tanh, sigmoid of (x_t W_ih^T + b_ih + h W_hh^T + b_hh)
        c' = f * c + i * g,   h' = o * tanh(c')   (then h' W_hr^T)
    """
    a_i, a_f, a_g, a_o = (_linear(x_t, w_ih, b_ih) + _linear(h, w_hh, b_hh)).chunk(4, 1)
    c_next = torch.sigmoid(a_f) * c + torch.sigmoid(a_i) * torch.tanh(a_g)
    h_next = torch.sigmoid(a_o) * torch.tanh(c_next)
    return (h_next if w_hr is None else h_next @ w_hr.t()), c_next


def gru_step(x_t, h, w_ih, w_hh, b_ih, b_hh):
    """One GRU step (torch's: the reset gate after the product), gates stacked ``r, z, n``: ``h'``.

    ``x_t (b, D)``, ``h (b, H)``, ``w_ih (3H, D)``, ``w_hh (3H, H)``, biases ``(3H,)`` or None::

        r, z = sigmoid(x_t W_i{r,z}^T + b_i{r,z} + h W_h{r,z}^T + b_h{r,z})
        n = tanh(x_t W_in^T + b_in + r * (h W_hn^T + b_hn)),   h' = (1 - z) * n + z * h
    """
    x_r, x_z, x_n = _linear(x_t, w_ih, b_ih).chunk(3, 1)
    h_r, h_z, h_n = _linear(h, w_hh, b_hh).chunk(3, 1)
    r = torch.sigmoid(x_r + h_r)
    z = torch.sigmoid(x_z + h_z)
    n = torch.tanh(x_n + r * h_n)
    return (1 - z) * n + z * h


def _linear(x, weight, bias):
    """``x @ weight^T + bias`` (bias may be None), one call, differentiable to any order."""
    if bias is None:
        return x @ weight.t()
    return torch.addmm(bias, x, weight.t())


def composite_layer(step, x, states, weights, steps, reverse):
    """One layer-direction as ``step`` in a loop over time, for autograd to differentiate.

    S: rows of the flat sequence, N: batch size.

    Parameters
    ----------
    step : ``step(x_t, *states, *weights) -> new state`` (a tensor, or a tuple
        whose first element is the output h), e.g. :func:`lstm_step`.
    x : ``(S, D)`` flat sequence (see :class:`Steps`).
    states : tuple of initial states, each ``(N, F)``.
    weights : tuple of the remaining arguments of ``step``.
    steps : :class:`Steps`; reverse : bool.

    Returns
    -------
    ``(out (S, P), *finals)``: the outputs h of every step in the flat layout,
    then each state after each sequence's last step ``(N, F)``.
    """
    x_t = steps.per_step(x)
    per_state = [[None] * steps.T for _ in states]
    previous = states
    for t in steps.times(reverse):
        b = steps.sizes[t]
        current = tuple(_rows(prev, init, b) for prev, init in zip(previous, states))
        new = step(x_t[t], *current, *weights)
        new = new if isinstance(new, tuple) else (new,)
        for history, value in zip(per_state, new):
            history[t] = value
        previous = new
    flat = [torch.cat(history) for history in per_state]
    return (flat[0], *(steps.final(f, reverse) for f in flat))


def _is_batched(t):
    """Whether ``t`` carries a ``vmap`` batch dimension.

    ``torch.func.vmap`` makes functorch batched tensors; ``jacobian(vectorize=True)``
    and ``gradcheck(check_batched_grad=True)`` still use the older ``vmap``,
    whose batched tensors torch tells apart by another test.
    """
    functorch = torch._C._functorch
    return t is not None and (functorch.is_batchedtensor(t) or functorch.is_legacy_batchedtensor(t))


def needs_composite_backward(*grads):
    """Whether a backward must differentiate the composite form instead of running the fast one.

    True when autograd is recording the backward itself (``create_graph=True``:
    its result will be differentiated again) or when ``vmap`` batches the
    incoming gradients; the fast backward does neither. ``grads`` are the
    gradients the backward received.
    """
    return torch.is_grad_enabled() or any(_is_batched(g) for g in grads)


def differentiable_backward(ctx, layer, inputs, grads):
    """The gradients of ``layer(*inputs)`` for ``grads``, by autograd through the composite form.

    ``layer`` computes the layer-direction's outputs from ``inputs`` (the
    Function's tensor arguments, in order, None where absent) with
    differentiable operations, e.g. through :func:`composite_layer`; ``grads``
    are the gradients of those outputs. Returns one gradient per input (None
    where ``ctx.needs_input_grad`` is False). With ``create_graph=True`` the
    gradients are themselves differentiable, to any order, with respect to
    the inputs and to ``grads``.
    """
    wanted = [i for i, t in enumerate(inputs) if t is not None and ctx.needs_input_grad[i]]
    create_graph = torch.is_grad_enabled()
    with torch.enable_grad():
        # a view per argument, so that a tensor passed twice (tied weights)
        # gets each argument's share of the gradient, as from the fast backward
        inputs = [t.view_as(t) if i in wanted else t for i, t in enumerate(inputs)]
        outputs = layer(*inputs)
        found = torch.autograd.grad(outputs, [inputs[i] for i in wanted], grads, create_graph=create_graph,
                                    allow_unused=True)
    result = [None] * len(inputs)
    for i, g in zip(wanted, found):
        result[i] = g
    return result


def keep_for_backward(ctx, inputs, fast):
    """``ctx.save_for_backward`` of a layer's inputs (for :func:`differentiable_backward`), then ``fast``.

    Saving a tensor keeps a reference, not a copy. :func:`kept` gives both back.
    """
    ctx.n_inputs = len(inputs)
    ctx.save_for_backward(*inputs, *fast)


def kept(ctx):
    """``(inputs, fast)`` as given to :func:`keep_for_backward`."""
    saved = ctx.saved_tensors
    return saved[: ctx.n_inputs], saved[ctx.n_inputs :]


# -- The fast form: one autograd.Function per layer-direction ---------------


class LSTMLayer(torch.autograd.Function):
    """One LSTM layer-direction over a flat sequence.

    S: rows of the flat sequence, N: batch size, D: input size, H: hidden
    size, P: size of h (``proj_size``, or H without projection).

    ``apply(x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, steps, reverse)`` with
    ``x (S, D)``, ``h0 (N, P)``, ``c0 (N, H)``, torch.nn's weights
    (``w_ih (4H, D)``, ``w_hh (4H, P)``, ``b_ih``, ``b_hh (4H,)`` or None,
    ``w_hr (P, H)`` or None), a :class:`Steps` and a bool. Returns ``out (S,
    P)``, ``h_n (N, P)``, ``c_n (N, H)``.
    """

    @staticmethod
    def forward(ctx, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, steps, reverse):
        inputs = (x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr)
        H = c0.shape[1]
        w_ih, w_hh = _rotate(w_ih, H), _rotate(w_hh, H)
        bias = None if b_ih is None else _rotate(b_ih + b_hh, H)
        gates = _affine(x, w_ih, bias)  # (S, 4H): pre-activations, activated in place below
        out = x.new_empty(steps.S, h0.shape[1])
        c_all = x.new_empty(steps.S, H)
        a_t, sig_t, tanh_t = (steps.per_step(v) for v in (gates, gates[:, : 3 * H], gates[:, 3 * H :]))
        o_t, i_t, f_t, g_t = (steps.per_step(v) for v in gates.split(H, 1))
        c_t, h_t = steps.per_step(c_all), steps.per_step(out)
        w_hh_step = _Weight(w_hh, steps.N)
        h_prev, c_prev = h0, c0
        for t in steps.times(reverse):
            b = steps.sizes[t]
            h_prev, c_prev = _rows(h_prev, h0, b), _rows(c_prev, c0, b)
            w_hh_step.add_times(a_t[t], h_prev)
            sig_t[t].sigmoid_()  # o, i, f
            _tanh(tanh_t[t], out=tanh_t[t])  # g
            c = c_t[t]
            torch.mul(f_t[t], c_prev, out=c)
            c.addcmul_(i_t[t], g_t[t])  # c_t = f * c_{t-1} + i * g
            h = h_t[t]
            if w_hr is None:
                _tanh(c, out=h).mul_(o_t[t])  # h_t = o * tanh(c_t)
            else:
                torch.mm(_tanh(c).mul_(o_t[t]), w_hr.t(), out=h)
            h_prev, c_prev = h, c
        keep_for_backward(ctx, inputs, (w_ih, w_hh, gates, c_all, out))
        ctx.steps, ctx.reverse, ctx.has_bias = steps, reverse, b_ih is not None
        return out, steps.final(out, reverse), steps.final(c_all, reverse)

    @staticmethod
    def backward(ctx, dout, dh_n, dc_n):
        inputs, (w_ih, w_hh, gates, c_all, out) = kept(ctx)
        steps, reverse = ctx.steps, ctx.reverse
        if needs_composite_backward(dout, dh_n, dc_n):
            def layer(x, h0, c0, *weights):
                return composite_layer(lstm_step, x, (h0, c0), weights, steps, reverse)

            return (*differentiable_backward(ctx, layer, inputs, (dout, dh_n, dc_n)), None, None)
        x, h0, c0, w_hr = inputs[0], inputs[1], inputs[2], inputs[7]
        H = c0.shape[1]
        o, i, f, g = gates.split(H, 1)
        tanh_c = _tanh(c_all)
        raw_h = None if w_hr is None else o * tanh_c  # h before the projection, for dW_hr
        # What is known before the loop, for all steps at once: the
        # pre-activation gradients are da_o = dr * D_o and da_{i,f,g} = dc * D_{i,f,g},
        # where dr is the gradient on r_t = o_t tanh(c_t) (h_t before any
        # projection), and dc_t = dc_{t+1} f_{t+1} + dr_t * A_t. Built in place:
        # no large temporaries.
        D = torch.empty_like(gates)
        D_o, D_i, D_f, D_g = D.split(H, 1)
        sig, D_sig = gates[:, : 3 * H], D[:, : 3 * H]
        torch.mul(sig, sig, out=D_sig)
        torch.sub(sig, D_sig, out=D_sig)  # sigmoid' = s - s^2 for o, i, f
        D_o.mul_(tanh_c)
        D_i.mul_(g)
        for rows, c_prev in steps.previous(c_all, c0, reverse):
            D_f[rows].mul_(c_prev)
        torch.mul(g, g, out=D_g).neg_().add_(1).mul_(i)
        A = tanh_c.square_().neg_().add_(1).mul_(o)  # tanh_c is not needed any more
        dh_all = None if w_hr is None else torch.empty_like(out)  # for dW_hr

        da_t, Do_t, Difg_t = (steps.per_step(v) for v in (D, D_o, D[:, H:].unflatten(1, (3, H))))
        A_t, f_t, dout_t = steps.per_step(A), steps.per_step(f), steps.per_step(dout)
        dh_t = None if dh_all is None else steps.per_step(dh_all)
        dh0_parts, dc0_parts = [], []
        w_hh_back = _Weight(w_hh.t(), steps.N)  # da @ w_hh
        da_next = dcf_next = None  # of the next step in loop order; dcf = dc * f
        for t in reversed(steps.times(reverse)):
            b = steps.sizes[t]
            if da_next is not None and da_next.shape[0] == b:
                dh = w_hh_back.plus_times(dout_t[t], da_next, out=None if dh_t is None else dh_t[t])
                dc = dcf_next
            else:
                carry_h = None if da_next is None else w_hh_back.times(da_next)
                dh = _incoming(carry_h, b, dh_n, dh0_parts).add_(dout_t[t])
                dc = _incoming(dcf_next, b, dc_n, dc0_parts)
                if dh_t is not None:
                    dh_t[t].copy_(dh)
            dr = dh if w_hr is None else dh @ w_hr
            dc.addcmul_(dr, A_t[t])
            Do_t[t].mul_(dr)
            Difg_t[t].mul_(dc.unsqueeze(1))
            dcf_next = dc * f_t[t]
            da_next = da_t[t]

        dh0 = dc0 = dx = dw_ih = dw_hh = db = dw_hr = None
        needs = ctx.needs_input_grad
        if needs[1]:
            dh0 = _assemble(dh0_parts, w_hh_back.times(da_next))
        if needs[2]:
            dc0 = _assemble(dc0_parts, dcf_next)
        if needs[0]:
            dx = _affine(D, w_ih.t())
        if needs[3] or needs[4]:
            dw_ih, dw_hh = (_unrotate(dw, H) for dw in steps.weight_gradients(D, x, out, h0, reverse))
        if ctx.has_bias and (needs[5] or needs[6]):
            db = _unrotate(D.sum(0), H)
        if w_hr is not None and needs[7]:
            dw_hr = dh_all.t() @ raw_h
        # the two biases get equal gradients, in tensors of their own
        return dx, dh0, dc0, dw_ih, dw_hh, db, None if db is None else db.clone(), dw_hr, None, None


class GRULayer(torch.autograd.Function):
    """One GRU layer-direction over a flat sequence (torch's GRU, reset after the product).

    S: rows of the flat sequence, N: batch size, D: input size, H: hidden size.

    ``apply(x, h0, w_ih, w_hh, b_ih, b_hh, steps, reverse)`` with ``x (S,
    D)``, ``h0 (N, H)``, ``w_ih (3H, D)``, ``w_hh (3H, H)``, ``b_ih``,
    ``b_hh (3H,)`` or None. Returns ``out (S, H)`` and ``h_n (N, H)``.
    """

    @staticmethod
    def forward(ctx, x, h0, w_ih, w_hh, b_ih, b_hh, steps, reverse):
        inputs = (x, h0, w_ih, w_hh, b_ih, b_hh)
        H = h0.shape[1]
        gates = _affine(x, w_ih, b_ih)  # (S, 3H) x-side pre-activations, activated in place
        hw_all = x.new_empty(steps.S, 3 * H)  # h_{t-1} W_hh^T + b_hh of every step
        out = x.new_empty(steps.S, H)
        rz_t, r_t, z_t, n_t = (steps.per_step(v) for v in (gates[:, : 2 * H],) + gates.split(H, 1))
        hw_t, hwrz_t, hwn_t = (steps.per_step(v) for v in (hw_all, hw_all[:, : 2 * H], hw_all[:, 2 * H :]))
        h_t = steps.per_step(out)
        w_hh_step = _Weight(w_hh, steps.N)
        h_prev = h0
        for t in steps.times(reverse):
            h_prev = _rows(h_prev, h0, steps.sizes[t])
            if b_hh is None:
                w_hh_step.times(h_prev, out=hw_t[t])
            else:
                w_hh_step.plus_times(b_hh, h_prev, out=hw_t[t])
            rz_t[t].add_(hwrz_t[t]).sigmoid_()  # r, z
            n = n_t[t].addcmul_(r_t[t], hwn_t[t])
            _tanh(n, out=n)  # n = tanh(x W_in + b_in + r (h W_hn + b_hn))
            h = h_t[t]
            torch.addcmul(n, z_t[t], h_prev - n, out=h)  # h_t = (1 - z) n + z h_{t-1}
            h_prev = h
        keep_for_backward(ctx, inputs, (gates, hw_all, out))
        ctx.steps, ctx.reverse, ctx.has_bias = steps, reverse, b_ih is not None
        return out, steps.final(out, reverse)

    @staticmethod
    def backward(ctx, dout, dh_n):
        inputs, (gates, hw_all, out) = kept(ctx)
        steps, reverse = ctx.steps, ctx.reverse
        if needs_composite_backward(dout, dh_n):
            def layer(x, h0, *weights):
                return composite_layer(gru_step, x, (h0,), weights, steps, reverse)

            return (*differentiable_backward(ctx, layer, inputs, (dout, dh_n)), None, None)
        x, h0, w_ih, w_hh = inputs[:4]
        H = h0.shape[1]
        r, z, n = gates.split(H, 1)
        # Before the loop: the x-side pre-activation gradients are dh * Ex and
        # the h-side ones dh * Eh (they differ in the n block, where the h side
        # is scaled by r). With dn_pre = dh (1 - z) (1 - n^2):
        # da_r = dn_pre (h W_hn + b_hn) r (1 - r), da_z = dh (h_{t-1} - n) z (1 - z).
        Ex = torch.empty_like(gates)
        E_r, E_z, E_n = Ex.split(H, 1)
        one_minus_z = 1 - z
        torch.mul(n, n, out=E_n).neg_().add_(1).mul_(one_minus_z)
        torch.mul(r, r, out=E_r).neg_().add_(r).mul_(hw_all[:, 2 * H :]).mul_(E_n)
        for rows, h_prev in steps.previous(out, h0, reverse):
            torch.sub(h_prev, n[rows], out=E_z[rows])
        E_z.mul_(z).mul_(one_minus_z)
        Eh = Ex.clone()
        Eh[:, 2 * H :].mul_(r)

        dax_t, dah_t = steps.per_step(Ex.unflatten(1, (3, H))), steps.per_step(Eh.unflatten(1, (3, H)))
        z_t, dout_t = steps.per_step(z), steps.per_step(dout)
        dh0_parts = []
        w_hh_back = _Weight(w_hh.t(), steps.N)  # dah @ w_hh
        dh_next = dah_next = z_next = None
        for t in reversed(steps.times(reverse)):
            b = steps.sizes[t]
            if dh_next is not None and dh_next.shape[0] == b:
                # h_t reaches the loss through out_t and through step t + 1:
                # directly (z h_t) and through the gates (dah W_hh)
                dh = w_hh_back.add_times(torch.addcmul(dout_t[t], z_next, dh_next), dah_next)
            else:
                carry = None if dh_next is None else w_hh_back.plus_times(z_next * dh_next, dah_next)
                dh = _incoming(carry, b, dh_n, dh0_parts).add_(dout_t[t])
            dax_t[t].mul_(dh.unsqueeze(1))
            dah = dah_t[t].mul_(dh.unsqueeze(1)).flatten(1)
            dh_next, dah_next, z_next = dh, dah, z_t[t]

        dh0 = dx = dw_ih = dw_hh = db_ih = db_hh = None
        needs = ctx.needs_input_grad
        if needs[1]:
            dh0 = _assemble(dh0_parts, w_hh_back.plus_times(z_next * dh_next, dah_next))
        if needs[0]:
            dx = _affine(Ex, w_ih.t())
        if needs[2]:
            dw_ih = Ex.t() @ x
        if needs[3]:
            dw_hh = steps.previous_product(Eh, out, h0, reverse)
        if ctx.has_bias:
            db_ih, db_hh = Ex.sum(0), Eh.sum(0)
        return dx, dh0, dw_ih, dw_hh, db_ih, db_hh, None, None


class RNNLayer(torch.autograd.Function):
    """One Elman RNN layer-direction over a flat sequence.

    S: rows of the flat sequence, N: batch size, D: input size, H: hidden size.

    ``apply(x, h0, w_ih, w_hh, b_ih, b_hh, relu, steps, reverse)``:
    ``h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)`` (``relu``
    instead of tanh if ``relu``). Returns ``out (S, H)`` and ``h_n (N, H)``.
    """

    @staticmethod
    def forward(ctx, x, h0, w_ih, w_hh, b_ih, b_hh, relu, steps, reverse):
        inputs = (x, h0, w_ih, w_hh, b_ih, b_hh)
        out = _affine(x, w_ih, None if b_ih is None else b_ih + b_hh)  # becomes h in place
        h_t = steps.per_step(out)
        w_hh_step = _Weight(w_hh, steps.N)
        h_prev = h0
        for t in steps.times(reverse):
            h_prev = _rows(h_prev, h0, steps.sizes[t])
            h = w_hh_step.add_times(h_t[t], h_prev)
            if relu:
                h.relu_()
            else:
                _tanh(h, out=h)
            h_prev = h
        keep_for_backward(ctx, inputs, (out,))
        ctx.steps, ctx.reverse, ctx.has_bias, ctx.relu = steps, reverse, b_ih is not None, relu
        return out, steps.final(out, reverse)

    @staticmethod
    def backward(ctx, dout, dh_n):
        inputs, (out,) = kept(ctx)
        steps, reverse = ctx.steps, ctx.reverse
        if needs_composite_backward(dout, dh_n):
            def layer(x, h0, *weights):
                return composite_layer(rnn_step, x, (h0,), (*weights, ctx.relu), steps, reverse)

            return (*differentiable_backward(ctx, layer, inputs, (dout, dh_n)), None, None, None)
        x, h0, w_ih, w_hh = inputs[:4]
        # the activation's derivative, for all steps at once; becomes da in place
        D = (out > 0).to(out.dtype) if ctx.relu else torch.mul(out, out).neg_().add_(1)

        da_t, dout_t = steps.per_step(D), steps.per_step(dout)
        dh0_parts = []
        w_hh_back = _Weight(w_hh.t(), steps.N)  # da @ w_hh
        da_next = None
        for t in reversed(steps.times(reverse)):
            b = steps.sizes[t]
            if da_next is not None and da_next.shape[0] == b:
                dh = w_hh_back.plus_times(dout_t[t], da_next)
            else:
                carry = None if da_next is None else w_hh_back.times(da_next)
                dh = _incoming(carry, b, dh_n, dh0_parts).add_(dout_t[t])
            da_next = da_t[t].mul_(dh)

        dh0 = dx = dw_ih = dw_hh = db = None
        needs = ctx.needs_input_grad
        if needs[1]:
            dh0 = _assemble(dh0_parts, w_hh_back.times(da_next))
        if needs[0]:
            dx = _affine(D, w_ih.t())
        if needs[2] or needs[3]:
            dw_ih, dw_hh = steps.weight_gradients(D, x, out, h0, reverse)
        if ctx.has_bias:
            db = D.sum(0)
        return dx, dh0, dw_ih, dw_hh, db, None if db is None else db.clone(), None, None, None
