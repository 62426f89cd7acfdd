"""Bad input: a clear one-line message, the user's own traceback marked as theirs, exit 2,
and no mlcheck-internal traceback."""

import subprocess
import sys

import pytest

from mlcheck.errors import BadInput
from mlcheck.sanity import sanity
from mlcheck.sanity.usercode import UserCodeError


def cli(*args, timeout=240):
    return subprocess.run(
        [sys.executable, "-m", "mlcheck", "sanity", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def assert_bad_input(proc, *needles):
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    text = " ".join(proc.stderr.split())  # rich wraps long lines
    assert text.startswith("mlcheck: error:"), proc.stderr
    for needle in needles:
        assert needle in text, (needle, proc.stderr)
    # nothing of mlcheck's own code in what the user sees
    assert "mlcheck/sanity" not in proc.stderr and "mlcheck/cli.py" not in proc.stderr


def test_missing_file(tmp_path):
    assert_bad_input(cli(tmp_path / "nope.py"), "nope.py: no such file")


def test_syntax_error(fixtures):
    proc = cli(fixtures / "bad" / "syntax_error.py")
    assert_bad_input(proc, "syntax error at line 3", "def build(:", "your code's traceback")


def test_exception_while_importing_shows_the_users_traceback(fixtures):
    proc = cli(fixtures / "bad" / "import_error.py")
    assert_bad_input(
        proc,
        "raised FileNotFoundError: weights file checkpoints/best.pt is missing",
        "---- your code's traceback (not mlcheck's) ----",
        'weights = load_weights("checkpoints/best.pt")',
        'raise FileNotFoundError(f"weights file {path} is missing")',
    )
    assert "importlib" not in proc.stderr


def test_no_target_says_what_was_looked_for_and_how_to_choose(fixtures):
    proc = cli(fixtures / "bad" / "no_target.py")
    assert_bad_input(proc, "found no model to check in no_target.py", "mlcheck_target()", "no_target.py:NAME")


def test_forward_pass_raising_is_the_users_error(fixtures):
    proc = cli(fixtures / "bad" / "forward_raises.py")
    assert_bad_input(
        proc,
        "the forward pass of forward_raises.py:mlcheck_target raised RuntimeError",
        "mat1 and mat2 shapes cannot be multiplied",
        "return self.layer(x)",
        "---- your code's traceback (not mlcheck's) ----",
    )


def test_several_targets_are_listed_with_how_to_choose(fixtures):
    with pytest.raises(BadInput) as info:
        sanity(fixtures / "bad" / "several_targets.py")
    message = str(info.value)
    assert "found 2 possible targets" in message
    assert "`small`" in message and "`big`" in message and "several_targets.py:NAME" in message


def test_a_selector_picks_one_of_several(fixtures):
    result = sanity(f"{fixtures / 'bad' / 'several_targets.py'}:big", select=["unused-parameters"])
    assert result.target == "several_targets.py:big"
    assert result.framework == "torch"


def test_an_unknown_selector_lists_what_exists(fixtures):
    with pytest.raises(BadInput, match=r"no attribute 'nope'.*small.*big"):
        sanity(f"{fixtures / 'bad' / 'several_targets.py'}:nope")


def test_an_unknown_selector_in_a_file_with_nothing_to_choose_says_how_to_name_one(tmp_path):
    # Before, the message ended "has no attribute 'nothere'. " and said nothing more.
    empty = tmp_path / "nothing.py"
    empty.write_text("import sys\n")
    proc = cli(f"{empty}:nothere")
    assert_bad_input(proc, "nothing.py has no attribute 'nothere'.", "nothing.py:NAME", "mlcheck_target()")
    assert not proc.stderr.endswith(". \n")


def test_training_at_import_is_stopped(fixtures):
    with pytest.raises(UserCodeError) as info:
        sanity(fixtures / "bad" / "trains_at_import.py")
    assert "optimizer.step()" in str(info.value)
    assert 'if __name__ == "__main__":' in str(info.value)
    assert "optimizer.step()" in info.value.user_traceback


def test_lightning_fit_at_import_is_stopped_even_if_swallowed(fixtures):
    with pytest.raises(UserCodeError, match=r"Trainer.fit\(\).*__main__"):
        sanity(fixtures / "bad" / "lightning_fit_at_import.py")
    import lightning.pytorch as pl

    assert "fit" in vars(pl.Trainer)  # the patch is undone: Trainer.fit is Lightning's again
    assert vars(pl.Trainer)["fit"].__module__.startswith("lightning")


def test_bad_target_dicts():
    with pytest.raises(BadInput, match="no 'model'"):
        sanity({"train_data": None})
    with pytest.raises(BadInput, match="unknown key"):
        sanity({"model": object(), "train_dta": None})
    with pytest.raises(BadInput, match="expected a LightningModule"):
        sanity({"model": object(), "train_data": []})
    # Keras-style names for a torch module: refused naming the key (the loss was "the user's code
    # raised TypeError: 'str' object is not callable" at the first loss)
    import torch

    model, data = torch.nn.Linear(2, 2), (torch.randn(8, 2), torch.randn(8, 2))
    with pytest.raises(BadInput, match="'loss' is 'mse'; a plain torch nn.Module needs a loss module or function"):
        sanity({"model": model, "train_data": data, "loss": "mse"})
    with pytest.raises(BadInput, match="'optimizer' is 'adam'; a plain torch nn.Module needs a torch.optim optimizer"):
        sanity({"model": model, "train_data": data, "loss": torch.nn.MSELoss(), "optimizer": "adam"})


def test_a_misspelt_key_is_named_verbatim(fixtures):
    # brackets in messages are text, not terminal markup
    proc = cli(fixtures / "bad" / "bad_key.py")
    assert_bad_input(proc, "unknown key(s) ['train_dta']", "known keys: model, train_data")


def test_wrong_python_arguments_name_themselves(fixtures):
    """`mlcheck.sanity.run` took a string budget (AttributeError: 'str' object has no attribute
    'seconds') and read a lone id for `suppress` as its characters."""
    from mlcheck.sanity import run

    with pytest.raises(TypeError, match="budget must be a Budget or None, got 'fast'"):
        run(fixtures / "torch_clean.py", budget="fast")
    result = run(fixtures / "torch_clean.py", select="loss-at-init,overfit-batch".split(","), suppress="overfit-batch")
    assert [c.check for c in result.checks] == ["loss-at-init"]
