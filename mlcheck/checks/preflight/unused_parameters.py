"""`unused-parameters`: do all trainable parameters get a gradient and sit in an optimizer?"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from mlcheck.checks.base import Check, Signal, register
from mlcheck.checks.preflight.harness import (
    kept_random_state,
    skipped,
    small_batch,
)
from mlcheck.findings import Finding, Severity

if TYPE_CHECKING:
    from mlcheck.preflight_context import PreflightContext
    from mlcheck.run import RunState

#: `RunState.extras` key under which the live core notes a training epoch in which no trainable
#: weight changed: {"batches": training batches that ran, "optimizer_steps": steps the
#: framework counted, or None}.
UNCHANGED_WEIGHTS = "unchanged_weights"
#: Training batches an epoch must have run before weights that did not move are judged: one
#: batch may be a deliberate warm-up or a step skipped for inf gradients under mixed precision;
#: an optimizer that skips every one of several batches is not a skip.
MIN_BATCHES = 4
_MANUAL_EMPTY_STEPS = (
    "Each opt.step() found no gradient to apply: step() called before backward() applies nothing. In "
    "training_step, call opt.zero_grad(), then self.manual_backward(loss), then opt.step(); check also that "
    "the optimizer holds the model's parameters and a learning rate above 0."
)
_MANUAL_NO_STEP = (
    "Call opt.step() (then opt.zero_grad()) in training_step: with manual optimization "
    "(automatic_optimization = False) nothing steps for you. To accumulate gradients over N batches, "
    "step when (batch_idx + 1) % N == 0 or at the epoch's last batch (N must not exceed the batches in "
    "an epoch), or drop manual optimization for Trainer(accumulate_grad_batches=N)."
)
_NO_STEP = (
    "Check that training_step returns the loss (a step that returns None skips the optimizer step), "
    "that the optimizer holds the model's parameters (build it from self.parameters()) and that its "
    "learning rate is above 0."
)


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

        Live (Lightning), key `no-step`, ERROR: a training epoch of at least 4 batches after
        which no trainable weight has changed (the sum of each trainable tensor, taken at the
        epoch's start and end: one reduction per tensor and one host sync an epoch), while no
        earlier epoch had moved one either (weights that moved and then stand still have
        converged), so the optimizer never stepped: manual optimization whose `opt.step()` is never reached (an
        accumulation period longer than the epoch), every `training_step` returning None, or an
        optimizer over no trainable parameter. Not judged under fp16 loss scaling, which skips
        the steps of inf gradients, or when nothing is trainable.

        Live (Lightning), key `no-batches`, ERROR: a fit that ended with no training batch at
        all because the training loader has none (Lightning's `num_training_batches` 0, not a
        `limit_train_batches=0` the user chose): `drop_last=True` with a `batch_size` larger than
        the dataset (batch 35's b01), or an empty dataset. Lightning then returns from `fit`
        with one INFO log line, and validation scores the initial weights.

        Live (Lightning, automatic optimization), key `unfrozen-not-in-optimizer`, WARNING:
        parameters frozen at train start (`requires_grad` False), later made trainable, in no
        parameter group of the trainer's optimizers and given a gradient, at the end of a
        training epoch's first batch (after every epoch-start hook): an optimizer built over
        `filter(lambda p: p.requires_grad, model.parameters())` while a body was frozen, the
        body unfrozen later. They get gradients but nothing updates them. Judged once an epoch
        (a loop over the parameters frozen at the start, each judged once); not judged where
        the optimizers hold flattened copies of the parameters (FSDP, DeepSpeed). Parameters
        added to a group when unfrozen (`BaseFinetuning.unfreeze_and_add_param_group`), or in
        the optimizer from the start, stay silent.

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
    consumes = frozenset({Signal.TRAIN_START, Signal.EPOCHS})

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

    def on_epoch(self, run: RunState) -> Iterable[Finding]:
        """Live (Lightning): a whole training epoch ran and no trainable weight changed."""
        seen = run.extras.get(UNCHANGED_WEIGHTS)
        if not seen or seen["batches"] < MIN_BATCHES:
            return []  # the weights moved, or too few batches to call it
        steps = seen.get("optimizer_steps")
        took = "took no step" if steps == 0 else "left every trainable weight where it was"
        if steps:
            took = f"took {steps} steps that left every trainable weight where it was"
        return [
            self.finding(
                f"No trainable weight changed in epoch {run.epoch}: {seen['batches']} training batches ran "
                f"but the optimizer {took}, so the model cannot learn.",
                evidence={
                    "epoch": run.epoch,
                    "train_batches": seen["batches"],
                    "optimizer_steps": steps,
                    "manual_optimization": seen.get("manual"),
                },
                hint=self._no_step_hint(steps, seen.get("manual")),
                step=run.step,
                epoch=run.epoch,
                severity=Severity.ERROR,
                key="no-step",
            )
        ]

    def no_batches_finding(self, loader: dict[str, Any]) -> Finding:
        """Live (Lightning): the fit ended without a training batch, its training loader having
        none (`loader`: what the adapter read of it, `batch_size`, `drop_last`, `samples`)."""
        size, drop, n = loader.get("batch_size"), loader.get("drop_last"), loader.get("samples")
        if drop and isinstance(size, int) and isinstance(n, int) and size > n:
            why = (
                f"its batch_size={size} is larger than its {n} samples and drop_last=True drops the one "
                "incomplete batch"
            )
            hint = f"Use a batch_size below {n} (the dataset's size), or drop_last=False."
        elif n == 0:
            why, hint = "its dataset is empty", "Check the filter or split that built the training dataset."
        else:
            why = "it yields nothing"
            hint = "Check the training dataset's length, the sampler and batch_size against drop_last."
        return self.finding(
            f"No training batch ran: the training DataLoader gives 0 batches ({why}), so fit() returned "
            "without a single optimizer step and the model is still at its initial weights.",
            evidence={key: value for key, value in loader.items() if value is not None},
            hint=hint,
            step=0,
            epoch=0,
            severity=Severity.ERROR,
            key="no-batches",
        )

    def unfrozen_finding(self, names: list[str], *, step: int | None, epoch: int | None) -> Finding:
        """Live (Lightning): `names`, frozen at train start, were made trainable while in no
        optimizer parameter group (the adapter looks at each epoch's first step)."""
        return self.finding(
            f"{len(names)} parameter tensors frozen at the start were made trainable but are in no optimizer "
            f"parameter group, so they get gradients and never change: {self._names(names)}.",
            evidence={"parameters": list(names), "epoch": epoch},
            hint="An optimizer built over only the parameters trainable at the time "
            "(filter(lambda p: p.requires_grad, ...)) never sees layers unfrozen later: build it over "
            "self.parameters() (frozen ones get no gradient and are not updated), or add them when "
            "unfreezing (optimizer.add_param_group({'params': layer.parameters()}), or Lightning's "
            "BaseFinetuning.unfreeze_and_add_param_group).",
            step=step,
            epoch=epoch,
            key="unfrozen-not-in-optimizer",
        )

    @staticmethod
    def _no_step_hint(steps: int | None, manual: bool | None) -> str:
        if not manual:
            return _NO_STEP
        return _MANUAL_EMPTY_STEPS if steps else _MANUAL_NO_STEP

    def _names(self, names: list[str]) -> str:
        shown = ", ".join(names[: self.show])
        return shown + (f" and {len(names) - self.show} more" if len(names) > self.show else "")
