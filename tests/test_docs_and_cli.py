"""The catalogue, its generated docs, `mlcheck checks` / `explain` / `--version`, and config."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import mlcheck
from mlcheck.checks import registry
from mlcheck.checks.base import SECTIONS
from mlcheck.config import ConfigError, build_checks, load_config
from mlcheck.docs import builtin_checks, generate

ROOT = Path(__file__).resolve().parents[1]
CATALOGUE = [
    "nonfinite-loss",
    "loss-divergence",
    "loss-plateau",
    "lr-too-high",
    "lr-too-low",
    "lr-schedule",
    "train-val-gap",
    "suspicious-val",
    "train-val-overlap",
    "feature-leakage",
    "overfit-batch",
    "loss-at-init",
    "input-independence",
    "batch-dependence",
    "unused-parameters",
    "output-loss-mismatch",
    "missing-nonlinearity",
    "nonfinite-input",
    "unnormalized-input",
    "class-imbalance",
    "unshuffled-data",
    "label-shift",
    "stale-gradients",
    "vanishing-gradient",
    "exploding-gradient",
    "dead-units",
    "saturated-activations",
    "frozen-parameters",
    "nonfinite-origin",
    "noisy-labels",
    "weak-slice",
]


def mlcheck_cli(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "mlcheck", *args], capture_output=True, text=True, cwd=cwd, timeout=120
    )


def test_catalogue_has_every_design_id():
    assert set(CATALOGUE) <= set(registry())


@pytest.mark.parametrize("check_id", CATALOGUE)
def test_every_check_documents_itself(check_id):
    cls = registry()[check_id]
    doc = cls.doc()
    assert doc.get("summary"), f"{check_id} has no summary line"
    for section in SECTIONS:
        assert doc.get(section), f"{check_id} lacks the '{section}:' section"
    assert cls.family and cls.severity


@pytest.mark.parametrize("check_id", sorted(builtin_checks()))
def test_every_check_shows_the_bug_and_the_fix(check_id):
    """Ruff-style: the buggy code a user writes, then the fix, both valid Python."""
    doc = registry()[check_id].doc()
    for section in ("Example", "Use instead"):
        assert doc.get(section), f"{check_id} lacks the '{section}:' section"
        ast.parse(doc[section])  # also catches indentation lost by the docstring parser
    assert doc["Example"] != doc["Use instead"]


def test_docs_match_code():
    """docs/checks/ is generated from the docstrings; regenerate with `make docs`."""
    stale = [
        str(p.relative_to(ROOT))
        for p, text in generate(ROOT / "docs" / "checks").items()
        if not p.exists() or p.read_text(encoding="utf-8") != text
    ]
    assert not stale, f"docs/checks is out of date, run `make docs`: {stale}"


def test_cli_version_checks_explain():
    out = mlcheck_cli("--version")
    assert out.returncode == 0 and mlcheck.__version__ in out.stdout
    out = mlcheck_cli("checks")
    assert out.returncode == 0
    for check_id in CATALOGUE:
        assert check_id in out.stdout
    out = mlcheck_cli("explain", "loss-plateau")
    assert out.returncode == 0 and "Why it matters" in out.stdout and "Use instead" in out.stdout
    out = mlcheck_cli("explain", "no-such-check")
    assert out.returncode == 2 and "Unknown check id" in out.stderr and "Traceback" not in out.stderr


def test_analyze_help_names_every_format_readme_lists():
    """README lists `mlcheck analyze output_dir/` for the Hugging Face Trainer; `--help` did not
    name it (round 10 of a new user's first hour)."""
    top = " ".join(mlcheck_cli("--help").stdout.split())
    assert "Hugging Face trainer_state.json" in top
    text = " ".join(mlcheck_cli("analyze", "--help").stdout.split())
    for needle in ("TensorBoard log dir", "Keras CSVLogger", "json.dump(history.history, f)", "metrics.csv"):
        assert needle in text
    assert "Hugging Face Trainer's trainer_state.json (or its output_dir)" in text
    # corpus17: README lists YOLO, detectron2, MLflow and printed logs too
    for needle in ("results.csv", "detectron2's metrics.json", "MLflow mlruns/", "iter N: loss X"):
        assert needle in text, needle
    assert "YOLO results.csv" in top and "MLflow" in top
    # readers20: wandb runs, fastai's history.csv and timm's summary.csv
    for needle in ("run-<id>.wandb", "fastai history.csv", "timm summary.csv"):
        assert needle in text, needle
    assert "wandb" in top and "fastai/timm" in top


def test_pyproject_config(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[tool.mlcheck]\nsuppress = ["class-imbalance"]\nfail-on = "warning"\n[tool.mlcheck.checks.loss-divergence]\n',
        encoding="utf-8",
    )
    cfg = load_config(tmp_path / "pyproject.toml")
    ids = [c.id for c in build_checks(config=cfg)]
    assert "class-imbalance" not in ids and "loss-divergence" in ids
    assert cfg.fail_on == "warning"
    (tmp_path / "pyproject.toml").write_text('[tool.mlcheck]\nsuppress = ["nope"]\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="nope"):
        load_config(tmp_path / "pyproject.toml")


@pytest.mark.parametrize(
    "toml,table",
    [
        ('[mlcheck]\nsuppress = ["nonfinite-loss"]\n', "[mlcheck]"),
        ('[tool.mlchek]\nsuppress = ["nonfinite-loss"]\n', "[tool.mlchek]"),
        ('[tool.mlcheck-train]\nfail-on = "warning"\n', "[tool.mlcheck-train]"),
        ('[tool.mlflow]\ntracking = "x"\n', None),  # another tool's table: no configuration, no error
    ],
)
def test_a_table_meant_for_mlcheck_under_another_name_is_refused(tmp_path, toml, table):
    """`[mlcheck]` or a misspelt `[tool.mlchek]` in pyproject.toml was read as no configuration:
    the `suppress` the user wrote silently did nothing (round 10 of a new user's bad input)."""
    (tmp_path / "pyproject.toml").write_text(toml, encoding="utf-8")
    (tmp_path / "log.csv").write_text("epoch,loss\n" + "".join(f"{e},nan\n" for e in range(3)), encoding="utf-8")
    out = mlcheck_cli("analyze", "log.csv", cwd=tmp_path)
    assert "Traceback" not in out.stderr
    if table is None:
        assert out.returncode == 1 and "nonfinite-loss" in out.stdout and "error" not in out.stderr, out.stderr
        return
    assert out.returncode == 2, (out.stdout, out.stderr)
    message = " ".join(out.stderr.split())
    assert f"pyproject.toml: {table} is not read: mlcheck's table is [tool.mlcheck]" in message, out.stderr


@pytest.mark.parametrize(
    "toml, said",
    [
        # before: "unknown key(s) in [tool.mlcheck]: ['suppres']; known: [...]", no guess
        (
            '[tool.mlcheck]\nsuppres = ["class-imbalance"]\n',
            "unknown key 'suppres' in [tool.mlcheck] (did you mean 'suppress'?)",
        ),
        ('[tool.mlcheck]\nfail_on = "warning"\n', "unknown key 'fail_on' in [tool.mlcheck] (did you mean 'fail-on'?)"),
        # before: "unknown key(s) in [tool.mlcheck]: ['loss-divergence']"
        (
            "[tool.mlcheck.loss-divergence]\nfactor = 5.0\n",
            "[tool.mlcheck.loss-divergence] is not read: a check's arguments go under "
            "[tool.mlcheck.checks.loss-divergence]",
        ),
        # before: the table's keys were read as check ids ("names unknown check ids ['x']")
        ("[tool.mlcheck.suppress]\nx = 1\n", "[tool.mlcheck] suppress must be a list of check ids"),
        # before: "LossDivergence.__init__() got an unexpected keyword argument 'facter'"
        (
            "[tool.mlcheck.checks.loss-divergence]\nfacter = 5.0\n",
            "[tool.mlcheck.checks.loss-divergence] facter is not an argument of loss-divergence "
            "(did you mean 'factor'?); it takes factor,",
        ),
    ],
)
def test_cli12_a_misspelt_or_misplaced_key_is_named_with_the_one_meant(tmp_path, toml, said):
    (tmp_path / "pyproject.toml").write_text(toml, encoding="utf-8")
    (tmp_path / "log.csv").write_text(
        "epoch,loss\n" + "".join(f"{e},{2 - e / 4}\n" for e in range(4)), encoding="utf-8"
    )
    out = mlcheck_cli("analyze", "log.csv", cwd=tmp_path)
    assert out.returncode == 2 and "Traceback" not in out.stderr, (out.stdout, out.stderr)
    message = " ".join(out.stderr.split())
    assert said in message and "pyproject.toml: " in message, out.stderr


def test_cli12_an_integer_where_a_check_argument_defaults_to_a_float_is_taken(tmp_path):
    """The documented coercion: `factor = 5` for a default of 2.0 is the number 5."""
    (tmp_path / "pyproject.toml").write_text("[tool.mlcheck.checks.loss-divergence]\nfactor = 5\n", encoding="utf-8")
    config = load_config(tmp_path / "pyproject.toml")
    (check,) = build_checks(select=["loss-divergence"], config=config)
    assert check.factor == 5


def test_custom_check_can_be_registered_and_selected():
    from mlcheck import Check, Monitor, Severity, register

    @register
    class AlwaysOne(Check):
        """Fires when the loss is exactly 1.

        What it does:
            Test check.
        Why it matters:
            Tests.
        How to fix:
            Nothing.
        """

        id = "test-always-one"
        family = "test"
        severity = Severity.INFO
        default = False

        def on_step(self, run):
            if run.train_loss.last_value == 1.0:
                yield self.finding("loss is one", step=run.step)

    try:
        m = Monitor(checks=build_checks(select=["test-always-one"]), warn=False)
        for step in range(Monitor.STEP_EVAL_EVERY):  # step checks are judged every 32 steps early on
            m.log_step(step, loss=1.0)
        assert [f.check for f in m.findings] == ["test-always-one"]
    finally:
        from mlcheck.checks.base import _REGISTRY

        _REGISTRY.pop("test-always-one", None)


@pytest.mark.parametrize(
    "argv, meant",
    [
        (["analyze", "log.csv", "--format", "json"], "--json"),  # another tool's spelling
        (["analyze", "log.csv", "--jsno"], "--json"),
        (["analyze", "log.csv", "--fail_on", "warning"], "--fail-on"),
        (["sanity", "model.py", "--output-format=json"], "--json"),
    ],
)
def test_cli12_an_unknown_option_names_the_one_meant(tmp_path, argv, meant):
    """Was argparse's `unrecognized arguments: --format json` alone."""
    (tmp_path / "log.csv").write_text("epoch,loss\n0,1.0\n1,0.9\n", encoding="utf-8")
    out = mlcheck_cli(*argv, cwd=tmp_path)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    last = out.stderr.strip().splitlines()[-1]
    assert f"unrecognized arguments: {' '.join(argv[2:])}; did you mean {meant}?" in last, out.stderr
    assert f"mlcheck {argv[0]} --help" in last


def test_cli12_an_unknown_option_with_no_near_miss_is_argparse_s_error(tmp_path):
    out = mlcheck_cli("analyze", "log.csv", "--whatever", cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines()[-1] == "mlcheck analyze: error: unrecognized arguments: --whatever"


@pytest.mark.parametrize(
    "given, meant",
    [("analyse", "analyze"), ("Analyze", "analyze"), ("explian", "explain"), ("check", "checks")],
)
def test_cli13_a_misspelt_command_names_the_one_meant(tmp_path, given, meant):
    """`mlcheck analyse` (British spelling, as in mlcheck's own messages) was argparse's
    `invalid choice: 'analyse' (choose from ...)` alone."""
    out = mlcheck_cli(given, "log.csv", cwd=tmp_path)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith(f"mlcheck: error: argument COMMAND: invalid choice: {given!r}"), out.stderr
    assert last.endswith(f"; did you mean {meant}?"), out.stderr
    out = mlcheck_cli("nonsense", cwd=tmp_path)  # no near miss: argparse's line as before
    assert out.returncode == 2 and "did you mean" not in out.stderr and "invalid choice: 'nonsense'" in out.stderr


def test_cli13_each_command_s_help_names_every_exit_status():
    """The top-level help named 74 (output not written); `sanity --help` and `analyze --help` did not."""
    for command in ("sanity", "analyze"):
        out = mlcheck_cli(command, "--help")
        assert "74 output not written" in " ".join(out.stdout.split()), out.stdout
    assert "what it detects" in " ".join(mlcheck_cli("checks", "--help").stdout.split())


def test_small14_fail_on_and_map_roles_in_any_case_and_config_named(tmp_path):
    """`--fail-on Warning`, `fail-on = "Warning"` in [tool.mlcheck] and `--map loss=Train_Loss`
    were refused (exit 2) for their case; `--config nope.toml` named the file but not the option."""
    (tmp_path / "clean.csv").write_text("epoch,loss\n0,1.0\n1,0.9\n", encoding="utf-8")
    (tmp_path / "nan.csv").write_text("epoch,objective\n0,nan\n1,nan\n2,nan\n", encoding="utf-8")
    assert mlcheck_cli("analyze", "clean.csv", "--fail-on", "Warning", cwd=tmp_path).returncode == 0
    out = mlcheck_cli("analyze", "nan.csv", "--fail-on", "ERROR", "--map", "objective=Train_Loss", cwd=tmp_path)
    assert out.returncode == 1 and "nonfinite-loss" in out.stdout, out.stderr
    (tmp_path / "pyproject.toml").write_text('[tool.mlcheck]\nfail-on = "Warning"\n', encoding="utf-8")
    out = mlcheck_cli("analyze", "clean.csv", cwd=tmp_path)
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
    assert load_config(tmp_path / "pyproject.toml").fail_on == "warning"
    out = mlcheck_cli("analyze", "clean.csv", "--config", "nope.toml", cwd=tmp_path)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines()[-1] == (
        "mlcheck: error: --config nope.toml: nope.toml does not exist; give the path of a pyproject.toml "
        "with a [tool.mlcheck] table (without --config: the nearest one)"
    ), out.stderr
