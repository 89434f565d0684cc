"""MGDA-UB (Sener & Koltun 2018, Sec. 3.3): the min-norm problem on gradients w.r.t. the
shared representation z, an upper bound of MGDA's; one backward pass through the encoder."""

from __future__ import annotations

from mtlpareto.methods import METHODS
from mtlpareto.methods.mgda import _MinNormMethod


@METHODS.register("mgda_ub")
class MGDAUB(_MinNormMethod):
    label = "MGDA-UB"
    gradients = "representation"
