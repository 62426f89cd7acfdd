"""`unused-parameters`: do all trainable parameters get a gradient and sit in an optimizer?"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from mlcheck.checks.base import Check, Signal, register
from mlcheck.checks.preflight.harness import (
    kept_random_state,
    skipped,
    small_batch,
)
from mlcheck.findings import Finding, Severity

if TYPE_CHECKING:
    from mlcheck.preflight_context import PreflightContext


@register
class UnusedParameters(Check):
    """Trainable parameters that get no gradient, or that no optimizer updates.

    What it does:
        Computes the loss gradient on one training batch and lists trainable parameters whose
        gradient is missing (they do not take part in the loss: a layer defined but never
        called, or cut off by `.detach()`/`no_grad`). Separately, lists trainable parameters
        that are in no optimizer parameter group (when the framework tells). And (torch, key
        `unregistered`) parameters that get a gradient from the loss but that the model does
        not register: layers kept in a plain Python list, tuple or dict attribute instead of
        `nn.ModuleList` / `nn.ModuleDict`, which `model.parameters()`, and so the optimizer,
        `.to(device)` and `state_dict()`, never see.

    Why it matters:
        Such parameters keep their initial values for the whole run: a layer that was meant to
        learn stays random, and its compute (or memory, for optimizer-less ones) is wasted.
        Parameters missing from the optimizer are a classic slip after adding a layer or
        building the optimizer from one sub-module.

    How to fix:
        Call the layer in forward (or delete it), remove the stray `.detach()`, and build the
        optimizer from `model.parameters()`; freeze on purpose with `requires_grad_(False)`.

    Args:
        show: parameter names quoted in the message. Default 5.

    Example:
        model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
        optimizer = torch.optim.Adam(model[2].parameters())  # the first layer never learns

    Use instead:
        model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
        optimizer = torch.optim.Adam(model.parameters())
    """

    id = "unused-parameters"
    family = "pre-flight"
    severity = Severity.WARNING
    #: the callbacks also run it at train start, with the optimizer the trainer built
    consumes = frozenset({Signal.TRAIN_START})

    def __init__(self, show: int = 5):
        self.show = show
        super().__init__()

    def preflight(self, ctx: PreflightContext) -> Iterable[Finding]:
        t = ctx.trainable
        with kept_random_state(t):
            batch = small_batch(t)
            if batch is None:
                return [skipped(self, "there is no training data")]
            clone = t.clone()
            grads = clone.gradients(batch)
            in_optimizer = t.optimizer_parameters()
            unregistered = clone.unregistered_parameters(batch)
        findings = []
        if unregistered:
            count = sum(unregistered.values())
            where = ", ".join(f"`{path}` ({n})" for path, n in unregistered.items())
            findings.append(
                self.finding(
                    f"{count} parameter tensors get a gradient from the loss but are not registered with the "
                    f"model, so model.parameters() and the optimizer built from it leave them at their initial "
                    f"values: their layers are held in plain Python containers: {where}.",
                    evidence={"containers": dict(unregistered), "parameters": count},
                    hint="Hold layers in nn.ModuleList / nn.ModuleDict (or nn.Sequential), not in a Python "
                    "list, tuple or dict, so they are registered, trained, moved to the device and saved; a "
                    "model kept there on purpose (a frozen teacher) is better called under torch.no_grad() "
                    "with requires_grad_(False).",
                    key="unregistered",
                )
            )
        no_grad = [name for name, g in grads.items() if g is None]
        if no_grad:
            findings.append(
                self.finding(
                    f"{len(no_grad)} of {len(grads)} trainable parameter tensors get no gradient "
                    f"from the loss, so they never learn: {self._names(no_grad)}.",
                    evidence={"parameters": no_grad, "trainable": len(grads)},
                    hint="Call these layers in forward or delete them; remove .detach()/no_grad on "
                    "their path; freeze deliberately frozen ones with requires_grad_(False).",
                    key="no-gradient",
                )
            )
        if in_optimizer is not None:
            missing = [name for name in grads if name not in in_optimizer]
            if missing:
                findings.append(
                    self.finding(
                        f"{len(missing)} trainable parameter tensors are in no optimizer parameter "
                        f"group, so they are never updated: {self._names(missing)}.",
                        evidence={"parameters": missing, "trainable": len(grads)},
                        hint="Build the optimizer from model.parameters() (or add these to a "
                        "parameter group); if they are meant to stay fixed, set "
                        "requires_grad_(False).",
                        key="not-in-optimizer",
                    )
                )
        return findings

    def _names(self, names: list[str]) -> str:
        shown = ", ".join(names[: self.show])
        return shown + (f" and {len(names) - self.show} more" if len(names) > self.show else "")
