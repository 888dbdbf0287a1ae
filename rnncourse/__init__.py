"""rnncourse: the package behind the rnncourse book and exercises.

- :mod:`rnncourse.numpy`: the reference, forward and backward by hand in NumPy.
- :mod:`rnncourse.torch`: the same models as ``torch.nn`` modules, drop-in for
  ``torch.nn.RNN``/``LSTM``/``GRU``, plus attention, seq2seq and training helpers.
- :mod:`rnncourse.checks`: the graded checks of the exercises, each written once.
- :mod:`rnncourse.testing`: the project's one tolerance policy.

Importing :mod:`rnncourse` or :mod:`rnncourse.numpy` never imports PyTorch.
"""

__version__ = "0.1.0"
