"""How the checks of 06_attention call the learner's functions (cases and judge: :mod:`rnncourse.checks.attention`).

The caches, in the layout the notebook and :mod:`rnncourse.numpy.attention`
state: ``masked_softmax_forward``'s is ``(weights,)``; ``attention_forward``'s
is ``(q, k, v, weights)``, its inputs and the attention weights (the scale
``1 / sqrt(D)`` follows from ``q``, and the softmax's cache is ``(weights,)``).

For the PyTorch step, the run builds the tensors and the ``torch.nn``
modules the learner's step takes from the case's arrays, runs the step and
its backward pass, and sends back NumPy arrays. PyTorch is imported inside
that run only.
"""

import numpy as np

from . import Call, Needs, OutputError, Written, call, call_and_unpack

ASSIGNMENT = "06_attention"

SOFTMAX_CACHE = ("weights",)
ATTENTION_CACHE = ("q", "k", "v", "weights")
GRADS = ("q", "k", "v")


def _attention_backward_run(fns, i, out):
    cache = tuple(i[n] for n in ATTENTION_CACHE)
    grads = call(fns, "attention_backward", i["dcontext"], cache)
    if not isinstance(grads, dict) or not all(k in grads for k in GRADS):
        got = f"a dict with the keys {sorted(map(str, grads))}" if isinstance(grads, dict) else f"a {type(grads).__name__}"
        raise OutputError(f"attention_backward returned {got}; expected a dict with the keys 'q', 'k', 'v'")
    out.update({f"d{k}": grads[k] for k in GRADS})


def decoder_tensors(i):
    """The step's tensor arguments; ``s_prev`` and ``enc_out`` require a gradient."""
    import torch

    t = {k: torch.from_numpy(np.ascontiguousarray(i[k])) for k in ("y_prev", "lengths", "Wq", "Wk", "v_a")}
    t["s_prev"] = torch.from_numpy(np.array(i["s_prev"])).requires_grad_()
    t["enc_out"] = torch.from_numpy(np.array(i["enc_out"])).requires_grad_()
    return t


def decoder_modules(i, cell_class=None):
    """``embedding, cell, out``: torch.nn modules holding the case's weights (``cell_class`` default torch.nn.GRUCell)."""
    import torch

    weight = {k: torch.from_numpy(np.array(v)) for k, v in i.items() if k.startswith(("embedding_", "cell_", "out_"))}
    dtype = weight["out_weight"].dtype
    V, E = weight["embedding_weight"].shape
    H = weight["cell_weight_hh"].shape[1]
    embedding = torch.nn.Embedding(V, E, dtype=dtype)
    cell = (cell_class or torch.nn.GRUCell)(weight["cell_weight_ih"].shape[1], H, dtype=dtype)
    out = torch.nn.Linear(weight["out_weight"].shape[1], V, dtype=dtype)
    for module, prefix in ((embedding, "embedding_"), (cell, "cell_"), (out, "out_")):
        module.load_state_dict({k[len(prefix) :]: v for k, v in weight.items() if k.startswith(prefix)})
    return embedding, cell, out


def _numpy(value):
    """A tensor as a NumPy array (what crosses the boundary); anything else as it is, for the judge to read."""
    if hasattr(value, "detach"):
        return value.detach().cpu().numpy()
    return value


def _decoder_run(fns, i, out):
    import torch

    t = decoder_tensors(i)
    embedding, cell, linear = decoder_modules(i)
    logits, s, weights = call_and_unpack(
        fns, "attention_decoder_step", ("logits", "s", "weights"),
        t["y_prev"], t["s_prev"], t["enc_out"], t["lengths"], t["Wq"], t["Wk"], t["v_a"], embedding, cell, linear,
    )  # fmt: skip
    out["logits"], out["s"], out["weights"] = _numpy(logits), _numpy(s), _numpy(weights)
    if not isinstance(logits, torch.Tensor):
        raise OutputError(
            f"attention_decoder_step returned the logits as a {type(logits).__name__}; expected a torch.Tensor, "
            "computed with torch operations so that the step can be trained"
        )
    dlogits = torch.from_numpy(np.array(i["dlogits"]))
    if logits.shape != dlogits.shape:
        return  # the judge reports the logits' shape
    # The loss sum(logits * dlogits) has gradient dlogits with respect to the logits.
    reaches = logits.requires_grad
    if reaches:
        (logits * dlogits.to(logits.dtype)).sum().backward()
    grads = {"ds_prev": t["s_prev"].grad, "denc_out": t["enc_out"].grad}
    # Read by the judge: without a path back to s_prev and enc_out the step could not be trained.
    out["reaches"] = np.array(int(reaches and all(g is not None for g in grads.values())))
    for name, key in (("ds_prev", "s_prev"), ("denc_out", "enc_out")):
        out[name] = grads[name].numpy() if grads[name] is not None else np.zeros_like(i[key])


CALLS = (
    Call(
        "masked_softmax_forward", ASSIGNMENT, 3,
        outputs={"weights": "N Tq Tk"},
        args=("scores", "lengths"), optional=("lengths",), returns=("weights", "cache"),
    ),
    Call(
        "masked_softmax_backward", ASSIGNMENT, 2,
        outputs={"dscores": "N Tq Tk"},
        args=("dweights", SOFTMAX_CACHE), returns=("dscores",),
    ),
    Call(
        "attention_forward", ASSIGNMENT, 2,
        outputs={"context": "N Tq Dv", "weights": "N Tq Tk"},
        args=("q", "k", "v", "lengths"), optional=("lengths",), returns=("context", "weights", "cache"),
        depends=("masked_softmax_forward",),
    ),
    Call(
        "attention_backward", ASSIGNMENT, 4,
        outputs={"dq": "N Tq D", "dk": "N Tk D", "dv": "N Tk Dv"},
        run=_attention_backward_run,
        depends=("masked_softmax_backward",),
    ),
    Call(
        "additive_scores_forward", ASSIGNMENT, 2,
        outputs={"scores": "N Tq Tk"},
        args=("q", "k", "Wq", "Wk", "v_a"), returns=("scores", "cache"),
    ),
    Call(
        "attention_decoder_step", ASSIGNMENT, 3,
        outputs={"logits": "N V", "s": "N H", "weights": "N S", "ds_prev": "N H", "denc_out": "N S C"},
        run=_decoder_run,
    ),
)  # fmt: skip

WRITTEN = (
    Written("q_scale", ASSIGNMENT, 2, "why the scores are divided by sqrt(D), from the variance of a dot product"),
    Written("q_bottleneck", ASSIGNMENT, 1, "why one fixed-size context vector is a bottleneck, and what attention changes"),
    Written("q_transformer", ASSIGNMENT, 1, "correct the claim that Transformers are RNNs (ERRATA 10)"),
)

# Problem 6 is written in PyTorch; the course's own attention modules and Seq2Seq are not in the sandbox.
NEEDS = Needs(libraries=("numpy", "matplotlib", "torch"))
