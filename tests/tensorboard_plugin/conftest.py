from __future__ import annotations

from pathlib import Path

import pytest

from tb_logdirs import write_logdir


@pytest.fixture(scope="session")
def tab_logdir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """(log directory, findings by run) of real Lightning and Keras runs plus a synthetic run."""
    root = tmp_path_factory.mktemp("tab_logdir")
    return root, write_logdir(root)
