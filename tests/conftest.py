"""Test-wide setup: Keras on the torch backend with its home in a temporary folder, so tests
never touch ~/.keras. Both must be set before keras is first imported."""

import os
import tempfile

os.environ.setdefault("KERAS_BACKEND", "torch")
os.environ.setdefault("KERAS_HOME", tempfile.mkdtemp(prefix="mlcheck-keras-home-"))
os.environ.setdefault("PYTHONHASHSEED", "0")
