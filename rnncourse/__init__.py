"""rnncourse: the package behind the rnncourse book and exercises.

- :mod:`rnncourse.numpy`: the reference, forward and backward by hand in NumPy.
- :mod:`rnncourse.torch`: the same models as ``torch.nn`` modules, drop-in for
  ``torch.nn.RNN``/``LSTM``/``GRU``, plus attention, seq2seq and training helpers.
  On CUDA, LSTM and GRU run the fused Triton kernels of :mod:`rnncourse.torch.triton`.
- :mod:`rnncourse.datasets`: the data sets of the book: real data from installed packages,
  synthetic tasks (numbers and dates in words) generated from a seed.
- :mod:`rnncourse.tasks`: the experiments of the book (the adding problem).
- :mod:`rnncourse.drawing`: the book's diagrams, readable on a phone by construction.
- :mod:`rnncourse.timing`: ``best_time``, how the book times a function.
- :mod:`rnncourse.checks`: the graded checks of the exercises, each written once.
- :mod:`rnncourse.grader`: ``rnncourse grade``, which runs those checks on a class's
  submissions in a sandbox.
- :mod:`rnncourse.testing`: the project's one tolerance policy.
- :mod:`rnncourse.validation`: the checks of the package's scalar arguments (an integer, a
  probability, a positive number, a choice, a random generator), each written once.

Importing :mod:`rnncourse` or :mod:`rnncourse.numpy` never imports PyTorch.
"""

__version__ = "0.1.0"
