"""`Linear`: a drop-in `torch.nn.Linear` whose forward is lavin_fast's `linear` op.

Same constructor, parameters (`weight`, `bias`), initialisation and state_dict as nn.Linear, so
checkpoints load unchanged and `isinstance(m, nn.Linear)` still holds.
"""

from torch import nn

from lavin_fast.linear.ops import linear


class Linear(nn.Linear):
    def forward(self, x):
        return linear(x, self.weight, self.bias)
