"""Optimizers, learning-rate schedules and gradient clipping, with PyTorch's semantics.

Reading order: `optimizer.py` (groups, state, checkpoints), `sgd.py`, `adam.py` (Adam and
AdamW), `rmsprop.py`, `lr_scheduler.py`, `clip.py`. Each update rule is written out in math in
its module docstring, next to the code that implements it.

    opt = tinygen.optim.AdamW(model.parameters(), lr=1e-3)
    sched = tinygen.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=1000)
    ...
    loss.backward()
    tinygen.optim.clip_grad_norm_(model.parameters(), max_norm=1.0)
    opt.step()
    sched.step()
    opt.zero_grad()
"""

from tinygen.optim import lr_scheduler
from tinygen.optim.adam import Adam, AdamW
from tinygen.optim.clip import clip_grad_norm_, clip_grad_value_
from tinygen.optim.optimizer import Optimizer
from tinygen.optim.rmsprop import RMSprop
from tinygen.optim.sgd import SGD

__all__ = ["Adam", "AdamW", "Optimizer", "RMSprop", "SGD", "clip_grad_norm_",
           "clip_grad_value_", "lr_scheduler"]
