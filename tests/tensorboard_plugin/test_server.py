"""A real `tensorboard` process finds the plugin through its entry point, lists it as enabled
and serves its routes over the real runs."""

from __future__ import annotations

import pytest

from tb_server import get

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("tensorboard_plugin")]


def test_tensorboard_lists_the_tab_and_serves_it(tab_server, tab_logdir):
    listing = get(f"{tab_server}/data/plugins_listing")
    assert listing["mlcheck"]["enabled"] is True, listing["mlcheck"]
    assert listing["mlcheck"]["loading_mechanism"] == {"type": "IFRAME", "module_path": "/data/plugin/mlcheck/index.js"}
    assert "export async function render" in get(f"{tab_server}/data/plugin/mlcheck/index.js")
    rows = {r["run"]: r for r in get(f"{tab_server}/data/plugin/mlcheck/runs")["runs"]}
    for run, findings in tab_logdir[1].items():
        assert rows[run]["count"] == len(findings), run
    page = get(f"{tab_server}/data/plugin/mlcheck/run?run=lightning/leaky_validation/version_0")
    assert [f["check"] for f in page["findings"]] == ["train-val-overlap"]
    assert {c["split"] for c in page["losses"]} == {"train", "val"}
