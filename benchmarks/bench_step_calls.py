"""Python calls a training step makes into mlcheck, counted with `sys.setprofile` (deterministic).

Fits the digits MLP (or CNN) of `bench_overhead_lightning.py` / `bench_overhead_keras.py` for
3 epochs with `MLCheckCallback(overfit_batch=False)` and without a callback, under
`sys.setprofile`, and cuts the profile into training steps at the framework's own per-step
entry (Lightning's `_TrainingEpochLoop.advance`, Keras's torch `train_step`), so that the same
windows exist in both fits. The steps of the first epoch (the first pass) and each epoch's last
step (validation runs in it) are left out. A step's kind is the set of mlcheck functions it
called: the commonest kind is the unsampled step in Lightning (no scan, no layer statistics, no
flush, no routed batch); a kind that calls one of `SAMPLED` is labelled sampled.

Printed: for each kind, how many steps had it, the Python and C calls a step makes in all, the
same for the fit without a callback (the commonest kind's median there), and the mlcheck
functions (`mlcheck/`, `integrations/`) called, with their calls per step.

Run: OMP_NUM_THREADS=1 KERAS_BACKEND=torch .venv/bin/python benchmarks/bench_step_calls.py
     [--framework lightning|keras] [--model mlp|cnn] [--kinds 4]
"""

from __future__ import annotations

import argparse
import collections
import os
import statistics
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")
os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = str(Path(__file__).resolve().parents[1])
OURS = (os.path.join(ROOT, "mlcheck") + os.sep, os.path.join(ROOT, "integrations") + os.sep)
EPOCHS = 3
#: a step that calls one of these does more than hold its loss (Lightning): a flush, a scan,
#: layer statistics, a routed batch. Keras hands every step to the checks (its losses are read
#: as floats already), so each of its steps calls `flush_steps`.
SAMPLED = ("flush_steps", "LayerRecorder", "ParameterScan.before_step", "Monitor.", "observe_batch", "route_batch")


class StepProfile:
    """Python and C calls per training step, the step's start recognised by its code object."""

    def __init__(self, is_step_start) -> None:
        self.is_step_start = is_step_start
        self.steps: list[tuple[collections.Counter, int, int]] = []  # (ours, python calls, C calls)
        self._ours: collections.Counter | None = None
        self._python = self._c = 0

    def __call__(self, frame, event, arg) -> None:
        if event == "call":
            code = frame.f_code
            if self.is_step_start(code):
                self._close()
                self._ours, self._python, self._c = collections.Counter(), 0, 0
            if self._ours is None:
                return
            self._python += 1
            if code.co_filename.startswith(OURS):
                name = os.path.relpath(code.co_filename, ROOT)
                self._ours[f"{name}:{code.co_qualname}"] += 1
        elif event == "c_call" and self._ours is not None:
            self._c += 1

    def _close(self) -> None:
        if self._ours is not None:
            self.steps.append((self._ours, self._python, self._c))

    def finish(self) -> None:
        self._close()
        self._ours = None


def lightning_fit(model_kind: str, with_callback: bool) -> StepProfile:
    import lightning.pytorch as L

    sys.path.insert(0, os.path.dirname(__file__))
    from bench_overhead_lightning import Classifier, digits_loaders

    from mlcheck.integrations.lightning import MLCheckCallback

    def is_step_start(code) -> bool:
        return code.co_name == "advance" and code.co_filename.endswith("training_epoch_loop.py")

    profile = StepProfile(is_step_start)
    with tempfile.TemporaryDirectory() as root:
        L.seed_everything(0, verbose=False)
        model = Classifier(model_kind)
        train, val = digits_loaders(image=model_kind == "cnn", kind=model_kind)
        callbacks = [MLCheckCallback(overfit_batch=False)] if with_callback else []
        trainer = L.Trainer(
            max_epochs=EPOCHS,
            callbacks=callbacks,
            default_root_dir=root,
            logger=L.loggers.TensorBoardLogger(root),
            enable_progress_bar=False,
            enable_model_summary=False,
            enable_checkpointing=False,
            log_every_n_steps=10,
        )
        sys.setprofile(profile)
        try:
            trainer.fit(model, train, val)
        finally:
            sys.setprofile(None)
            profile.finish()
        return profile, len(train)


def keras_fit(model_kind: str, with_callback: bool) -> StepProfile:
    sys.path.insert(0, os.path.dirname(__file__))
    os.environ.setdefault("KERAS_HOME", tempfile.mkdtemp(prefix="mlcheck-keras-home-"))
    from bench_overhead_keras import build, digits

    from mlcheck.integrations.keras import MLCheckCallback

    def is_step_start(code) -> bool:
        return code.co_name == "train_step" and code.co_filename.endswith(os.path.join("torch", "trainer.py"))

    profile = StepProfile(is_step_start)
    with tempfile.TemporaryDirectory() as root:
        (xt, yt), (xv, yv) = digits(model_kind == "cnn")
        model = build(model_kind)
        callbacks = [MLCheckCallback(overfit_batch=False, log_dir=root)] if with_callback else []
        sys.setprofile(profile)
        try:
            model.fit(xt, yt, validation_data=(xv, yv), epochs=EPOCHS, batch_size=32, verbose=0, callbacks=callbacks)
        finally:
            sys.setprofile(None)
            profile.finish()
        return profile, -(-len(xt) // 32)


def report(framework: str, model_kind: str, kinds: int) -> None:
    fit = lightning_fit if framework == "lightning" else keras_fit
    steps = {}
    for arm in (False, True):
        profile, per_epoch = fit(model_kind, arm)
        # epochs after the first; each epoch's last step carries the validation pass
        steps[arm] = [
            step for index, step in enumerate(profile.steps) if index >= per_epoch and (index + 1) % per_epoch
        ]
    base = steps[False]
    base_python = statistics.median(p for _, p, _ in base)
    base_c = statistics.median(c for _, _, c in base)
    groups: dict[frozenset, list] = collections.defaultdict(list)
    for ours, python, c in steps[True]:
        groups[frozenset(ours.items())].append((python, c))
    print(f"{framework} digits {model_kind}, {EPOCHS} epochs, steps of epochs 2-{EPOCHS} but each epoch's last")
    print(f"without a callback: {base_python:g} Python / {base_c:g} C calls a step (median of {len(base)})")
    ranked = sorted(groups.items(), key=lambda item: -len(item[1]))
    for rank, (kind, counts) in enumerate(ranked[:kinds]):
        python = statistics.median(p for p, _ in counts)
        c = statistics.median(c for _, c in counts)
        ours = sum(n for _, n in kind)
        label = "sampled" if any(part in name for name, _ in kind for part in SAMPLED) else "unsampled"
        print(
            f"\n{label} kind {rank + 1}: {len(counts)} steps; {python:g} Python / {c:g} C calls a step, "
            f"the callback adds {python - base_python:+g} / {c - base_c:+g}; {ours} of them into mlcheck:"
        )
        for name, n in sorted(kind, key=lambda item: (-item[1], item[0])):
            print(f"  {n:4d}  {name}")
    print(f"\n{len(ranked)} kinds of step in all")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--framework", choices=("lightning", "keras"), default="lightning")
    parser.add_argument("--model", choices=("mlp", "cnn"), default="mlp")
    parser.add_argument("--kinds", type=int, default=4, help="how many kinds of step to list, commonest first")
    args = parser.parse_args()
    report(args.framework, args.model, args.kinds)


if __name__ == "__main__":
    main()
