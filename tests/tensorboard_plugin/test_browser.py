"""The tab in a real browser: Debian's headless `chromium`, driven by Playwright from pip (no browser
download: Playwright is pointed at the system binary). `make test` installs chromium when it is
missing; without it this test is skipped, saying so.

With MLCHECK_UPDATE_SCREENSHOTS=1 it rewrites the screenshots of docs/tensorboard.md:
docs/tensorboard-tab.png (a leaky-validation run) and docs/tensorboard-tab-layers.png (layer heat
map and suspect samples); otherwise they go to a temporary folder, so a test run leaves docs/ alone.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("tensorboard_plugin")]

DOCS = Path(__file__).resolve().parents[2] / "docs"
CHROMIUM = os.environ.get("MLCHECK_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
# TensorBoard's page and the tab's first JSON take ~2 s here; generous for a loaded CI machine.
TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return DOCS if os.environ.get("MLCHECK_UPDATE_SCREENSHOTS") == "1" else tmp_path_factory.mktemp("screenshots")


@pytest.fixture(scope="module")
def page():
    if CHROMIUM is None:
        pytest.skip("no chromium binary: `apt-get install -y chromium` (make test does it as root or with CI=true)")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is in the dev extra: pip install -e .[dev]"
    )
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1500})
            page.set_default_timeout(TIMEOUT_MS)
            yield page
        finally:
            browser.close()


def _open_tab(page, base: str):
    page.goto(f"{base}/#mlcheck")
    # TensorBoard creates a plugin's iframe when its tab is chosen; a deep link alone left it out here.
    page.get_by_text("mlcheck", exact=True).first.click()
    frame = page.frame_locator("iframe").first
    frame.locator("#runs-table").wait_for()
    return frame


def test_tab_shows_runs_and_a_leaky_runs_finding_with_its_hint(page, tab_server, tab_logdir, shots):
    frame = _open_tab(page, tab_server)
    rows = frame.locator("tr.run-row")
    assert sorted(rows.evaluate_all("rs => rs.map(r => r.dataset.run)")) == sorted(
        [
            "lightning/clean/version_0",
            "lightning/leaky_validation/version_0",
            "keras_leaky",
            "synthetic/layers_and_samples",
        ]
    )
    leaky = frame.locator('tr.run-row[data-run="lightning/leaky_validation/version_0"]')
    assert "error" in leaky.inner_text().lower()
    leaky.click()
    frame.locator("#run-title", has_text="leaky_validation").wait_for()
    (finding,) = tab_logdir[1]["lightning/leaky_validation/version_0"]
    card = frame.locator('details.finding[data-check="train-val-overlap"]')
    card.locator("summary").click()
    hint = card.locator("p.hint")
    hint.wait_for()
    assert finding.hint in hint.inner_text()
    assert "val_in_train" in card.locator("table.evidence").inner_text()
    assert frame.locator("#timeline path.loss-train").count() >= 1
    assert frame.locator("#timeline circle.marker.sev-error").count() == 1
    card.locator("a.docs-link").click()
    card.locator(".doc h5", has_text="How to fix").wait_for()
    card.locator("a.docs-link").click()  # folds the page away again for the screenshot
    page.screenshot(path=str(shots / "tensorboard-tab.png"))


def test_filters_sort_and_the_layer_and_sample_views(page, tab_server, shots):
    frame = _open_tab(page, tab_server)
    frame.locator('tr.run-row[data-run="synthetic/layers_and_samples"]').click()
    frame.locator("#layers canvas").wait_for()
    assert "⚑" in frame.locator(".layer-labels .flagged").inner_text()
    assert frame.locator("#suspects tbody tr").first.locator("td").first.inner_text() == "17"
    assert "label=8" in frame.locator("#weak-slices").inner_text()
    page.screenshot(path=str(shots / "tensorboard-tab-layers.png"))

    frame.locator('input[data-severity="warning"]').uncheck()
    frame.locator('input[data-severity="info"]').uncheck()
    assert frame.locator("details.finding").count() == 0
    synthetic = frame.locator('tr.run-row[data-run="synthetic/layers_and_samples"]')
    assert "clean" in synthetic.inner_text().lower()  # no error among its findings
    frame.locator('input[data-severity="warning"]').check()
    frame.locator('input[data-severity="info"]').check()
    frame.locator("#check-filter").select_option("weak-slice")
    assert frame.locator("details.finding").count() == 1
    frame.locator("#check-filter").select_option("")
    frame.locator("th", has_text="Run").click()  # sort by name, ascending
    order = frame.locator("tr.run-row").evaluate_all("rs => rs.map(r => r.dataset.run)")
    assert order == sorted(order)
