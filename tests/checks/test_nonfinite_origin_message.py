"""`nonfinite-origin`'s sentence for a NaN/Inf made by code outside any module (the loss on
logits that overflowed: examples/buggy_keras_diverging.py, examples/buggy_lr_too_high.py). That
code has no ranges of its own, and the sentence read "from finite inputs (range none finite; its
output holds inf, its finite values none)": finite and none finite at once."""

from __future__ import annotations

from mlcheck.checks.layers import NonfiniteOriginCheck
from mlcheck.layers import LayerObservation, NonfiniteOrigin
from mlcheck.run import RunState


def _message(origin: NonfiniteOrigin) -> str:
    (finding,) = NonfiniteOriginCheck().on_layers(LayerObservation(step=19, layers=(), origin=origin), RunState())
    return finding.message


def test_cli12_code_outside_modules_is_said_to_get_the_finite_output_of_the_layer_before():
    message = _message(NonfiniteOrigin(path="", kind="", phase="forward", value="inf", previous="dense_1"))
    assert message == (
        "The first inf at step 19 was produced by code outside any module (after dense_1), "
        "from the finite output of dense_1."
    )
    assert "none finite" not in _message(NonfiniteOrigin(path="", kind="", phase="forward", value="nan"))


def test_cli12_a_module_s_ranges_are_still_given():
    origin = NonfiniteOrigin(
        path="3", kind="Scores", phase="forward", value="-inf", input_range=(-5.9, 4.8), output_range=(-5.7, 1.6)
    )
    assert "(range [-5.9, 4.8]; its output holds -inf, its finite values [-5.7, 1.6])" in _message(origin)


def test_cli13_the_evidence_holds_only_what_is_known():
    """The text summary (TensorBoard's Text tab, the terminal) listed `layer | None`, `kind | None`,
    `input_range | None`, ..., `cause | None`, `masked_by | None` for code outside any module."""
    from mlcheck.sinks.tensorboard import finding_markdown

    origin = NonfiniteOrigin(path="", kind="", phase="forward", value="inf", previous="dense_1")
    (finding,) = NonfiniteOriginCheck().on_layers(LayerObservation(step=19, layers=(), origin=origin), RunState())
    assert finding.evidence == {"phase": "forward", "value": "inf", "previous_layer": "dense_1"}
    assert "None" not in finding_markdown(finding)
    inside = NonfiniteOrigin(path="3", kind="Scores", phase="forward", value="nan", input_range=(-1.0, 2.0))
    (finding,) = NonfiniteOriginCheck().on_layers(LayerObservation(step=4, layers=(), origin=inside), RunState())
    assert finding.evidence == {
        "layer": "3",
        "kind": "Scores",
        "phase": "forward",
        "value": "nan",
        "input_range": [-1.0, 2.0],
    }
