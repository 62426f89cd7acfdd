import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
FIXTURES = HERE / "fixtures"
sys.path.insert(0, str(HERE))  # numpy_trainable
sys.path.insert(0, str(FIXTURES))  # digits_data


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES
