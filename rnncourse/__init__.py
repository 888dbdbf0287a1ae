"""rnncourse: the package behind the rnncourse book and exercises.

- :mod:`rnncourse.numpy`: the reference, forward and backward by hand in NumPy.
- :mod:`rnncourse.torch`: the same models as ``torch.nn`` modules, drop-in for
  ``torch.nn.RNN``/``LSTM``/``GRU``, plus attention, seq2seq and training helpers.
  On CUDA, LSTM and GRU run the fused Triton kernels of :mod:`rnncourse.torch.triton`.
- :mod:`rnncourse.datasets`: the real data of the applications, from installed packages.
- :mod:`rnncourse.tasks`: the experiments of the book (the adding problem).
- :mod:`rnncourse.drawing`: the book's diagrams, readable on a phone by construction.
- :mod:`rnncourse.timing`: ``best_time``, how the book times a function.
- :mod:`rnncourse.checks`: the graded checks of the exercises, each written once.
- :mod:`rnncourse.grader`: ``rnncourse grade``, which runs those checks on a class's
  submissions in a sandbox.
- :mod:`rnncourse.testing`: the project's one tolerance policy.

Importing :mod:`rnncourse` or :mod:`rnncourse.numpy` never imports PyTorch.
"""

__version__ = "0.1.0"
