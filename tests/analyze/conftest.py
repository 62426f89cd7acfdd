"""Real training runs (written once per test session) whose logs the analyze tests read back."""

from __future__ import annotations

import pytest

from analyze_runs import keras_csv_run, lightning_run


@pytest.fixture(scope="session")
def lightning_tb(tmp_path_factory):
    """log_dir of a real Lightning run with TensorBoardLogger and LearningRateMonitor."""
    return lightning_run(tmp_path_factory.mktemp("lightning_tb"), logger="tensorboard")


@pytest.fixture(scope="session")
def lightning_csv(tmp_path_factory):
    """metrics.csv of a real Lightning run with CSVLogger and LearningRateMonitor."""
    return lightning_run(tmp_path_factory.mktemp("lightning_csv"), logger="csv") / "metrics.csv"


@pytest.fixture(scope="session")
def keras_csvs(tmp_path_factory):
    """{separator: CSV path} written by Keras CSVLogger callbacks during one real fit."""
    return keras_csv_run(tmp_path_factory.mktemp("keras_csv"))
