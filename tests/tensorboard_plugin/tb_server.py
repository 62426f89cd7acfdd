"""A real `tensorboard` process on a free port, for the server and browser tests."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

# Loading the test log directory takes TensorBoard ~5 s here; the deadline leaves room for a busy CI.
START_DEADLINE_S = 120


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str, timeout: float = 10):
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        body = resp.read()
        return json.loads(body) if resp.headers.get_content_type() == "application/json" else body.decode()


@contextlib.contextmanager
def tensorboard(logdir: Path, expected_runs: int) -> Iterator[str]:
    """Starts `tensorboard --logdir LOGDIR` and yields its base URL once the mlcheck tab lists
    `expected_runs` runs; stops it afterwards."""
    port = free_port()
    cmd = [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir), "--port", str(port)]
    server = subprocess.Popen([*cmd, "--host", "127.0.0.1"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_DEADLINE_S
        while True:
            assert server.poll() is None, f"tensorboard exited: {server.stderr.read().decode()[-2000:]}"
            assert time.monotonic() < deadline, f"tensorboard did not list {expected_runs} runs in time"
            try:
                if len(get(f"{base}/data/plugin/mlcheck/runs")["runs"]) >= expected_runs:
                    break
            except OSError:
                pass
            time.sleep(0.5)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
