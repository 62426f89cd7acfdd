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
    # a stage of over 10 s (an import on a loaded machine) is said first, off a terminal
    said = [line for line in proc.stderr.splitlines() if " still running after " not in line]
    text = " ".join(" ".join(said).split())  # rich wraps long lines
    assert text.startswith("mlcheck: error:"), proc.stderr
    for needle in needles:
        assert needle in text, (needle, proc.stderr)
    # nothing of mlcheck's own code in what the user sees
    assert "mlcheck/sanity" not in proc.stderr and "mlcheck/cli.py" not in proc.stderr


def test_missing_file(tmp_path):
    assert_bad_input(cli(tmp_path / "nope.py"), "nope.py: no such file")


@pytest.mark.parametrize("suffix,got", [(":", "the name after the colon is empty"), (":a:b", "got 'a'")])
def test_a_selector_that_is_no_name_says_what_path_name_takes(fixtures, suffix, got):
    """`model.py:` and `model.py:a:b` were "model.py:: no such file" and "model.py:a: no such
    file" for a model.py that exists (round 10 of a new user's bad input)."""
    path = fixtures / "bad" / "no_target.py"
    proc = cli(f"{path}{suffix}")
    assert_bad_input(proc, f"{path} exists: `{path}:NAME` picks one thing in it", got)


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


class _TwoOutputs:
    """Built lazily (torch imported in the test): a model returning (logits, hidden)."""

    @staticmethod
    def build():
        import torch

        class Net(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.hidden, self.head = torch.nn.Linear(4, 8), torch.nn.Linear(8, 3)

            def forward(self, x):
                h = torch.relu(self.hidden(x))
                return self.head(h), h

        return Net()


def _labelled(n: int = 64):
    import torch

    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=g)
    return x, (x[:, 0] > 0).long() + (x[:, 1] > 0).long()


def test_a_loss_written_for_every_output_is_told_what_mlcheck_passed():
    """The loss's error alone ("For 1D input, 1D target must have size 1") blamed the user's
    `out[0]` for a value mlcheck had made: the first tensor of the tuple, not the tuple."""
    import torch

    model = _TwoOutputs.build()
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(*_labelled()), batch_size=16)

    def loss(out, y):  # written for the model's (logits, hidden)
        return torch.nn.functional.cross_entropy(out[0], y)

    with pytest.raises(UserCodeError) as raised:
        sanity({"model": model, "train_data": data, "loss": loss}, select=["loss-at-init"])
    message = str(raised.value)
    assert message.startswith("computing the loss of dict raised ValueError"), message
    assert "(mlcheck called loss(prediction, targets) with the first tensor of the tuple of 2 the model" in message
    assert "returned and the batch's last element; wrap them in mlcheck_target()" in message
    # the same model with a loss for the prediction alone is checked as it is
    result = sanity({"model": model, "train_data": data, "loss": torch.nn.CrossEntropyLoss()}, select=["loss-at-init"])
    assert not result.failed


@pytest.mark.filterwarnings("ignore:Using a non-tuple sequence:UserWarning")  # torch, on tensor["features"]
def test_a_model_written_for_the_whole_dict_batch_is_told_what_mlcheck_passed():
    import torch

    x, y = _labelled()

    class Rows(torch.utils.data.Dataset):
        def __len__(self):
            return len(x)

        def __getitem__(self, i):
            return {"features": x[i], "label": y[i]}

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(4, 3)

        def forward(self, batch):  # the whole dict
            return self.layer(batch["features"])

    data = torch.utils.data.DataLoader(Rows(), batch_size=16)
    with pytest.raises(UserCodeError) as raised:
        sanity({"model": Net(), "train_data": data, "loss": torch.nn.CrossEntropyLoss()}, select=["loss-at-init"])
    message = str(raised.value)
    assert message.startswith("the forward pass of dict raised IndexError"), message
    assert "(mlcheck called the model with batch['features'] alone" in message
    assert "(of the batch's keys ['features', 'label']); wrap them in mlcheck_target()" in message
    # a plain (x, y) batch whose model fails says nothing of a convention: the error is the model's
    broken = torch.nn.Linear(5, 3)
    with pytest.raises(UserCodeError) as raised:
        sanity({"model": broken, "train_data": (x, y), "loss": torch.nn.CrossEntropyLoss()}, select=["loss-at-init"])
    assert "mlcheck called" not in str(raised.value)


def test_a_target_function_returning_no_dict_names_the_type(tmp_path):
    """It read "returned a int"."""
    (tmp_path / "model.py").write_text("def mlcheck_target():\n    return 5\n")
    assert_bad_input(
        cli(tmp_path / "model.py"),
        "model.py:mlcheck_target() returned a value of type int; it must return a dict with 'model' and 'train_data'",
    )


KERAS_EMPTY_FIRST = '''
import os
os.environ.setdefault("KERAS_BACKEND", "torch")
import keras
import numpy as np

x = np.random.default_rng(0).normal(size=(96, 8)).astype("float32")
y = (x[:, 0] > 0).astype("int64")


class EmptyFirst(keras.utils.PyDataset):
    """A batch index off by one: batch 0 is the slice x[-32:0], empty."""

    def __len__(self):
        return 3

    def __getitem__(self, i):
        return x[(i - 1) * 32 : i * 32], y[(i - 1) * 32 : i * 32]


def mlcheck_target():
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(2)])
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return {"model": model, "train_data": EmptyFirst()}
'''


def test_cli12_an_empty_first_keras_batch_is_named(tmp_path):
    """Was 'computing the loss of ... raised RuntimeError: a Tensor with 0 elements cannot be
    converted to Scalar' with Keras' traceback (Keras cannot train on the batch either)."""
    (tmp_path / "model.py").write_text(KERAS_EMPTY_FIRST)
    proc = cli(tmp_path / "model.py")
    assert_bad_input(proc, "the first training batch holds 0 samples (inputs of shape (0, 8))", "drop empty batches")


TORCH_EMPTY_BATCHES = """
import torch
from torch.utils.data import DataLoader

EMPTY, FULL = {empty}, {full}


def mlcheck_target():
    from mlcheck.integrations.torch import TorchTrainable

    torch.manual_seed(0)
    x = torch.randn(8, 4)
    y = torch.randint(0, 2, (8,))
    batches = [(x[:0], y[:0])] * EMPTY + [(x, y)] * FULL
    model = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    loader = DataLoader(batches, batch_size=None)
    return TorchTrainable(model, torch.nn.CrossEntropyLoss(), optimizer, train_data=loader)
"""


@pytest.mark.parametrize(
    "empty,full,needle",
    [
        (5, 0, "every one of its 5 training batches holds 0 samples (inputs of shape (0, 4)): there is nothing"),
        (20, 5, "its first 17 training batches hold 0 samples (inputs of shape (0, 4)), and mlcheck looks no further"),
    ],
)
def test_cli13_empty_torch_batches_are_named_not_called_no_data(tmp_path, empty, full, needle):
    """Was 'the training data is empty (no batch could be read)': untrue of batches that were read
    and held 0 rows, and of 20 empty batches before real ones."""
    (tmp_path / "model.py").write_text(TORCH_EMPTY_BATCHES.format(empty=empty, full=full))
    assert_bad_input(cli(tmp_path / "model.py"), needle, "drop empty batches from the data")


GPU_SCRIPT = """
import torch
from torch import nn

{module_level}

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.f = nn.Linear(4, 2)

    def forward(self, x):
        return self.f({forward_input})


def mlcheck_target():
    x, y = torch.randn(64, 4), torch.randint(0, 2, (64,))
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=16)
    return {{"model": Net(){build}, "train_data": data, "loss": nn.CrossEntropyLoss()}}
"""


@pytest.mark.parametrize(
    "where,parts",
    [
        ("importing", {"module_level": "model = nn.Linear(4, 2).cuda()"}),
        ("mlcheck_target()", {"build": ".cuda()"}),
        ("the forward pass", {"forward_input": "x.cuda()"}),
    ],
)
def test_user16_a_script_written_for_a_gpu_says_how_to_run_it_on_this_cpu(tmp_path, where, parts):
    """A script that calls `.cuda()` (at import, in `mlcheck_target()`, in `forward`) on a machine
    without a CUDA GPU: the error was torch's "Torch not compiled with CUDA enabled" alone; it
    now says the machine has no CUDA GPU and how to make the script run on both."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    fields = {"module_level": "", "forward_input": "x", "build": "", **parts}
    path = tmp_path / "gpu_model.py"
    path.write_text(GPU_SCRIPT.format(**fields))
    assert_bad_input(
        cli(path),
        where,
        "This machine has no CUDA GPU",
        "device = 'cuda' if torch.cuda.is_available() else 'cpu'",
    )


_USER18_DATA = """
import torch
from torch.utils.data import DataLoader, TensorDataset

g = torch.Generator().manual_seed(0)
x = torch.randn(256, 8, generator=g)
y = (x[:, 0] > 0).long()
train = DataLoader(TensorDataset(x[:192], y[:192]), batch_size=32, shuffle=True)
val = DataLoader(TensorDataset(x[192:], y[192:]), batch_size=64)
"""


def test_user18_a_model_on_the_meta_device_is_told_how_to_materialise_it(tmp_path):
    # Was: "the forward pass of model.py:mlcheck_target raised NotImplementedError: Cannot copy
    # out of meta tensor; no data!", which blames the forward pass and names no fix.
    script = tmp_path / "model.py"
    script.write_text(
        _USER18_DATA
        + """
def mlcheck_target():
    with torch.device("meta"):
        model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    return {"model": model, "train_data": train, "val_data": val, "loss": torch.nn.CrossEntropyLoss()}
"""
    )
    proc = cli(script)
    assert_bad_input(proc, "4 parameter(s) of the model are on the meta device (first: 0.weight)", "to_empty")
    assert "Cannot copy out of meta tensor" not in proc.stderr


def test_user18_manual_optimization_is_told_what_to_give_sanity(tmp_path):
    # Was: "... raised NotImplementedError: LightningTrainable does not support manual optimization
    # (training_step needs a trainer); wrap the network in TorchTrainable instead": a class the
    # command's user has never met, and not the mlcheck_target() that docs/lightning.md names.
    script = tmp_path / "model.py"
    script.write_text(
        _USER18_DATA
        + """
import lightning.pytorch as L


class GanLike(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.automatic_optimization = False
        self.net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, i):
        opt = self.optimizers()
        loss = torch.nn.functional.cross_entropy(self(batch[0]), batch[1])
        opt.zero_grad()
        self.manual_backward(loss)
        opt.step()

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), 1e-2)

    def train_dataloader(self):
        return train
"""
    )
    proc = cli(script)
    assert_bad_input(proc, "GanLike uses manual optimization (automatic_optimization=False)", "mlcheck_target()")
    assert "LightningTrainable" not in proc.stderr
