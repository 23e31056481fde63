"""`tinygen.nn.utils`: where PyTorch users look for gradient clipping (`torch.nn.utils`).

The functions live in `tinygen/optim/clip.py`, next to the optimizers whose steps they bound;
this module only gives them their PyTorch address, so `tg.nn.utils.clip_grad_norm_` and
`tg.optim.clip_grad_norm_` are the same function.
"""

from tinygen.optim.clip import clip_grad_norm_, clip_grad_value_

__all__ = ["clip_grad_norm_", "clip_grad_value_"]
