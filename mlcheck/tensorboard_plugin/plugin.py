"""The `mlcheck` TensorBoard plugin: routes that serve the tab's JavaScript and aggregated JSON.

Everything is read through `context.data_provider` (runs, scalars, the Text tab's tensors), so
the tab works without TensorFlow and with TensorBoard's data server; only the per-sample table
(`<run>/mlcheck/samples.csv`, not an event) is read from the log directory on disk.

Routes, under `/data/plugin/mlcheck/`:
    index.js, style.css   the frontend (plain ES module, no build step)
    runs                  one row per run: worst severity, count, per-check counts
    run?run=NAME          one run: findings, loss curves, markers, layer heat map, samples
    docs?check=ID         a check's documentation page (the text of `mlcheck explain ID`)
"""

from __future__ import annotations

import json
import logging
from importlib import resources

from tensorboard.backend import http_util
from tensorboard.data import provider
from tensorboard.plugins import base_plugin
from werkzeug import wrappers

from mlcheck.tensorboard_plugin import samples, views
from mlcheck.tensorboard_plugin.finding_text import ParsedFinding, parse_finding_markdown

logger = logging.getLogger(__name__)

PLUGIN_NAME = "mlcheck"
COUNT_TAG = "mlcheck/findings"
SUMMARY_TAG = "mlcheck/summary"
# Points per loss curve sent to the browser: a chart's width in pixels is about this.
LOSS_POINTS = 1000
LAYER_POINTS = 1000
# Upper bound on texts read per tag; TensorBoard itself keeps 10 unless `--samples_per_plugin text=N`.
TEXT_POINTS = 100_000
_STATIC = {"/index.js": "application/javascript", "/style.css": "text/css"}


def _json(request, payload, code: int = 200):
    body = json.dumps(payload, allow_nan=False, separators=(",", ":"))
    return http_util.Respond(request, body, "application/json", code=code)


def _is_finding_text(tag: str) -> bool:
    return tag.startswith("mlcheck/") and tag.endswith("/text")


def _is_marker(tag: str) -> bool:
    parts = tag.split("/")
    return len(parts) == 2 and parts[0] == "mlcheck" and tag != COUNT_TAG


class MLCheckPlugin(base_plugin.TBPlugin):
    """The "mlcheck" tab: every finding, layer statistic and suspect sample of each run."""

    plugin_name = PLUGIN_NAME

    def __init__(self, context: base_plugin.TBContext) -> None:
        self._provider = context.data_provider
        self._logdir = context.logdir

    def get_plugin_apps(self) -> dict:
        apps = {path: self._serve_static for path in _STATIC}
        apps.update({"/runs": self._serve_runs, "/run": self._serve_run, "/docs": self._serve_docs})
        return apps

    def is_active(self) -> bool:
        """True when any run holds mlcheck's scalars or texts (metadata only: no values read)."""
        if self._provider is None:
            return False
        ctx, eid = base_plugin_context(), ""
        scalars = self._provider.list_scalars(ctx, experiment_id=eid, plugin_name="scalars")
        if any(t.startswith("mlcheck/") for tags in scalars.values() for t in tags):
            return True
        texts = self._provider.list_tensors(ctx, experiment_id=eid, plugin_name="text")
        return any(t.startswith("mlcheck/") for tags in texts.values() for t in tags)

    def frontend_metadata(self) -> base_plugin.FrontendMetadata:
        return base_plugin.FrontendMetadata(es_module_path="/index.js", tab_name="mlcheck")

    # -- reading -------------------------------------------------------------------------------

    def _findings(self, ctx, eid, runs: list[str] | None = None) -> tuple[dict[str, list[ParsedFinding]], set]:
        """Parsed findings per TensorBoard run, and the runs that hold any mlcheck text."""
        listing = self._provider.list_tensors(
            ctx, experiment_id=eid, plugin_name="text", run_tag_filter=provider.RunTagFilter(runs=runs)
        )
        tags = {t for ts in listing.values() for t in ts if t.startswith("mlcheck/")}
        texts = {t for t in tags if _is_finding_text(t)}
        with_text = {r for r, ts in listing.items() if any(t.startswith("mlcheck/") for t in ts)}
        if not texts:
            return {}, with_text
        data = self._provider.read_tensors(
            ctx,
            experiment_id=eid,
            plugin_name="text",
            downsample=TEXT_POINTS,
            run_tag_filter=provider.RunTagFilter(runs=sorted(with_text), tags=sorted(texts)),
        )
        found: dict[str, list[ParsedFinding]] = {}
        for run, by_tag in data.items():
            for points in by_tag.values():
                for p in points:
                    parsed = parse_finding_markdown(_text_of(p.numpy), p.step)
                    if parsed is not None:
                        found.setdefault(run, []).append(parsed)
        for items in found.values():
            items.sort(key=lambda f: (f.event_step, f.check))
        return found, with_text

    def _scalars(self, ctx, eid, runs: list[str], keep, downsample: int) -> dict[str, dict[str, list]]:
        listing = self._provider.list_scalars(
            ctx, experiment_id=eid, plugin_name="scalars", run_tag_filter=provider.RunTagFilter(runs=runs)
        )
        tags = sorted({t for run, ts in listing.items() for t in ts if keep(run, t)})
        if not tags:
            return {}
        return self._provider.read_scalars(
            ctx,
            experiment_id=eid,
            plugin_name="scalars",
            downsample=downsample,
            run_tag_filter=provider.RunTagFilter(runs=runs, tags=tags),
        )

    # -- routes --------------------------------------------------------------------------------

    @wrappers.Request.application
    def _serve_static(self, request):
        name = request.path.rsplit("/", 1)[-1]
        body = resources.files(__package__).joinpath("static", name).read_bytes()
        return http_util.Respond(request, body, _STATIC["/" + name])

    @wrappers.Request.application
    def _serve_runs(self, request):
        ctx, eid = _request_context(request)
        names = sorted(r.run_name for r in self._provider.list_runs(ctx, experiment_id=eid))
        findings, with_text = self._findings(ctx, eid)
        scalar_tags = self._provider.list_scalars(ctx, experiment_id=eid, plugin_name="scalars")
        counted = {}
        if any(COUNT_TAG in tags for tags in scalar_tags.values()):
            last = self._provider.read_last_scalars(
                ctx, experiment_id=eid, plugin_name="scalars", run_tag_filter=provider.RunTagFilter(tags=[COUNT_TAG])
            )
            counted = {run: int(tags[COUNT_TAG].value) for run, tags in last.items() if COUNT_TAG in tags}
        rows = []
        for name, members in views.groups(names).items():
            tags = {t for m in members for t in scalar_tags.get(m, {})}
            extras = {
                "members": members,
                "has_layers": any(t.startswith(views.LAYER_PREFIX) for t in tags),
                "has_samples": samples.find_samples(self._logdir, [name, *members]) is not None,
            }
            watched = any(m in with_text for m in members) or any(t.startswith("mlcheck/") for t in tags)
            items = [f for m in members for f in findings.get(m, [])]
            rows.append(views.run_row(name, items, sum(counted.get(m, 0) for m in members), watched, extras))
        checks = sorted({c for row in rows for c in row["counts"]})
        return _json(request, {"runs": rows, "checks": checks, "severities": list(views.SEVERITIES)})

    @wrappers.Request.application
    def _serve_run(self, request):
        ctx, eid = _request_context(request)
        name = request.args.get("run", "")
        names = [r.run_name for r in self._provider.list_runs(ctx, experiment_id=eid)]
        members = views.groups(names).get(name)
        if not members:
            return _json(request, {"error": f"no run named {name!r}"}, code=404)
        by_run, _ = self._findings(ctx, eid, members)
        findings = sorted(
            [(m, f) for m in members for f in by_run.get(m, [])], key=lambda mf: (mf[1].event_step, mf[1].check)
        )
        losses = self._scalars(ctx, eid, members, lambda r, t: views.loss_split(r, t) is not None, LOSS_POINTS)
        markers = self._scalars(ctx, eid, members, lambda r, t: _is_marker(t), LOSS_POINTS)
        layers = self._scalars(ctx, eid, members, lambda r, t: t.startswith(views.LAYER_PREFIX), LAYER_POINTS)
        layer_series = {tag: points for m in members for tag, points in layers.get(m, {}).items()}
        samples_path = samples.find_samples(self._logdir, [name, *members])
        axis = views.timeline_axis([t for m in members for t in losses.get(m, {})])
        curves = [(m, tag, points) for m in members for tag, points in sorted(losses.get(m, {}).items())]
        if axis == "epoch":
            curves = [c for c in curves if c[1].startswith("epoch_")]
        payload = {
            "run": name,
            "members": members,
            "axis": axis,
            "findings": [{**f.to_json(), "member": m, "x": views.timeline_x(f, axis)} for m, f in findings],
            "losses": [
                {"member": m, "tag": tag, "split": views.loss_split(m, tag), "points": views.finite_points(points)}
                for m, tag, points in curves
            ],
            "markers": {  # later sightings, at steps: not drawn on an epoch axis
                tag.split("/", 1)[1]: sorted({p.step for m in members for p in markers.get(m, {}).get(tag, [])})
                for tag in sorted({t for m in members for t in markers.get(m, {})})
                if axis == "step"
            },
            "layers": views.layer_heatmap(layer_series, [f for _, f in findings]),
            "samples": samples.read_samples(samples_path) if samples_path else None,
        }
        return _json(request, payload)

    @wrappers.Request.application
    def _serve_docs(self, request):
        from mlcheck.checks.base import registry
        from mlcheck.docs import check_markdown

        check = registry().get(request.args.get("check", ""))
        if check is None:
            return _json(request, {"error": "unknown check"}, code=404)
        return _json(
            request, {"check": check.id, "path": f"docs/checks/{check.id}.md", "markdown": check_markdown(check)}
        )


def base_plugin_context():
    from tensorboard import context

    return context.RequestContext()


def _request_context(request):
    from tensorboard import plugin_util

    return plugin_util.context(request.environ), plugin_util.experiment_id(request.environ)


def _text_of(array) -> str:
    """The string of a text summary's tensor (a 1-element array of bytes, or a scalar)."""
    value = array.reshape(-1)[0] if getattr(array, "size", 0) else b""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
