"""Test-wide setup, applied before any framework is imported:

- Keras on the torch backend, with its home in a temporary folder so tests never touch ~/.keras;
- one intra-op thread per process: the suite runs two xdist workers on two cores, and torch's
  default of one thread per core oversubscribes them (tiny models then run ~40x slower).
Subprocesses that tests start inherit the same environment.
"""

import os
import tempfile

os.environ.setdefault("KERAS_BACKEND", "torch")
os.environ.setdefault("KERAS_HOME", tempfile.mkdtemp(prefix="mlcheck-keras-home-"))
os.environ.setdefault("PYTHONHASHSEED", "0")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
