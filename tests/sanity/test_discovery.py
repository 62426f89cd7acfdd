"""How targets are found in model.py (the error cases are in test_bad_input.py)."""

from mlcheck.sanity import sanity
from mlcheck.sanity.discovery import split_selector


def test_split_selector():
    assert split_selector("model.py:build") == (__import__("pathlib").Path("model.py"), "build")
    assert split_selector("model.py")[1] is None
    assert split_selector(r"C:\work\model.py")[1] is None


def test_lightning_instances_with_a_datamodule(fixtures):
    result = sanity(fixtures / "lightning_instances.py", select=["loss-at-init"])
    assert result.target == "lightning_instances.py:model"
    assert result.framework == "lightning"
    assert not result.failed


def test_selector_names_a_lightning_class(fixtures):
    result = sanity(f"{fixtures / 'lightning_clean.py'}:DigitsMLP", select=["nonfinite-input"])
    assert result.target == "lightning_clean.py:DigitsMLP"
    assert [c.check for c in result.checks] == ["nonfinite-input"]


def test_selector_names_a_function_returning_a_target(fixtures):
    result = sanity(f"{fixtures / 'buggy_nonfinite_input.py'}:mlcheck_target", select=["nonfinite-input"])
    assert "nonfinite-input" in {f.check for f in result.findings}
