"""How much of Adam's normalised step a torch optimizer's weights take, given its `eps`.

Adam's step for one weight is lr x m_hat / (sqrt(v_hat) + eps) (Kingma & Ba, 2015): with eps far
below sqrt(v_hat), the gradient's running RMS, the step is ~lr x sign(g); with eps far above it
(`Adam(eps=1.0)` where 1e-8 was meant) it is ~lr x g / eps, a step the size of plain SGD's at
rate lr / eps. `adam_step_share` reads the optimizer's own state once (at the first training
epoch's end): the median over the weights of sqrt(v_hat) / (sqrt(v_hat) + eps).
"""

from __future__ import annotations

import numpy as np
import torch

from mlcheck.checks.learning_rate import adam_state_stride, adam_step_shares


def adam_betas(optimizers: list[torch.optim.Optimizer]) -> tuple[tuple[float, float], ...] | None:
    """The (beta_1, beta_2) of each parameter group of the torch Adam, AdamW, NAdam and RAdam
    optimizers given (a Lightning wrapper's inner one), read at train start; None where none is one."""
    adams = (torch.optim.Adam, torch.optim.AdamW, torch.optim.NAdam, torch.optim.RAdam)
    pairs = []
    for optimizer in optimizers:
        optimizer = getattr(optimizer, "_optimizer", optimizer)
        if not isinstance(optimizer, adams):
            continue
        for group in optimizer.param_groups:
            betas = group.get("betas")
            if isinstance(betas, (tuple, list)) and len(betas) == 2:
                pairs.append((float(betas[0]), float(betas[1])))  # a float or a 0-d tensor
    return tuple(pairs) or None


def adam_step_share(optimizer: torch.optim.Optimizer) -> tuple[float, float] | None:
    """(largest eps, median share of Adam's step taken) over the parameter groups with `betas`
    and `eps` whose parameters hold Adam's `exp_avg_sq` (Adam, AdamW, NAdam, RAdam); weights
    with no gradient yet (v = 0) are left out. None for another optimizer or before any step."""
    shares, largest = [], None
    with torch.no_grad():
        for group in optimizer.param_groups:
            eps, betas = group.get("eps"), group.get("betas")
            if not isinstance(eps, (int, float)) or not isinstance(betas, (tuple, list)) or eps < 0:
                continue
            for p in group["params"]:
                state = optimizer.state.get(p, {})
                v, step = state.get("exp_avg_sq"), state.get("step")
                if not isinstance(v, torch.Tensor) or step is None:
                    continue
                step = float(step)
                if step < 1:
                    continue
                flat = v.detach().reshape(-1)
                flat = flat[:: adam_state_stride(flat.numel())].float().cpu().numpy()
                share = adam_step_shares(flat, eps, 1.0 - float(betas[1]) ** step)
                if share.size:
                    shares.append(share)
                    largest = eps if largest is None else max(largest, float(eps))
    if not shares:
        return None
    return float(largest), float(np.median(np.concatenate(shares)))
