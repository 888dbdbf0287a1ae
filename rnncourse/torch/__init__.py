"""The PyTorch implementation: every model of the course as ``torch.nn`` modules.

Written from primitives, so that a learner sees how ``torch.nn.LSTM`` works
inside, and fast enough to train real models, on a GPU where there is one
and on the CPU otherwise. ``RNN``, ``LSTM``, ``GRU`` and their cells are
drop-in replacements for their ``torch.nn`` twins: subclasses of them (so
``isinstance`` treats them alike) with our own ``forward``, the same
signatures, parameter names and shapes, return values, exception types and
gradients of every order, so ``load_state_dict`` works both ways without any
key mapping (see ``rnncourse.torch.rnn``).
"""

from .rnn import *  # noqa: F401,F403
from .cells import *  # noqa: F401,F403
from .init import *  # noqa: F401,F403
from .attention import *  # noqa: F401,F403
from .seq2seq import *  # noqa: F401,F403
from .models import *  # noqa: F401,F403
from .train import *  # noqa: F401,F403
from .data import *  # noqa: F401,F403
# Part three: linear recurrences, the parallel scan, state-space models, linear attention.
from .scan import *  # noqa: F401,F403
from .minrnn import *  # noqa: F401,F403
from .lru import *  # noqa: F401,F403
from .ssm import *  # noqa: F401,F403
from .linear_attention import *  # noqa: F401,F403
