from __future__ import annotations

from pathlib import Path

import pytest

from tb_logdirs import write_logdir


@pytest.fixture(scope="session")
def tab_logdir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """(log directory, findings by run) of real Lightning and Keras runs plus a synthetic run."""
    root = tmp_path_factory.mktemp("tab_logdir")
    return root, write_logdir(root)


@pytest.fixture(scope="session")
def tab_server(tab_logdir) -> str:
    """Base URL of a real `tensorboard --logdir` process over `tab_logdir`."""
    from tb_server import tensorboard

    with tensorboard(tab_logdir[0], expected_runs=4) as base:
        yield base
