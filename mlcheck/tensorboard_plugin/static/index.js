// The mlcheck tab: plain ES module served by the plugin, no build step, no network beyond the
// plugin's own JSON routes. TensorBoard loads it in an iframe whose base URL is the plugin's route
// folder, so "./runs" is /data/plugin/mlcheck/runs. All text is set with textContent, never HTML.

const SEVERITIES = ['error', 'warning', 'info'];
const RANK = {error: 3, warning: 2, info: 1};
const SPLIT_COLOURS = {train: '#1a73e8', val: '#e8710a'};
const state = {runs: [], checks: [], severities: new Set(SEVERITIES), check: '', sort: {key: 'worst', dir: -1}, selected: null};

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') node.className = v;
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) node.append(c instanceof Node ? c : String(c));
  return node;
}

function svg(tag, attrs = {}) {
  const node = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

async function getJson(path) {
  const response = await fetch(path);
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

function badge(severity) {
  return el('span', {class: `badge sev-${severity || 'none'}`}, severity || 'clean');
}

function fmt(v) {
  if (v === null || v === undefined) return '';
  if (typeof v === 'number') return Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-3 && v !== 0) ? v.toExponential(2) : String(+v.toPrecision(4));
  return String(v);
}

// -- filters and the runs table ---------------------------------------------------------------

function visible(check, severity) {
  return state.severities.has(severity) && (!state.check || state.check === check);
}

function filteredCounts(row) {
  const bySeverity = {error: 0, warning: 0, info: 0};
  for (const [check, counts] of Object.entries(row.counts)) {
    for (const [sev, n] of Object.entries(counts)) if (visible(check, sev)) bySeverity[sev] += n;
  }
  const total = bySeverity.error + bySeverity.warning + bySeverity.info;
  const worst = SEVERITIES.find((s) => bySeverity[s] > 0) || null;
  return {...bySeverity, total, worst};
}

const COLUMNS = [
  {key: 'run', label: 'Run', value: (r) => r.run},
  {key: 'worst', label: 'Worst', value: (r, c) => RANK[c.worst] || 0},
  {key: 'total', label: 'Findings', value: (r, c) => c.total},
  {key: 'error', label: 'Errors', value: (r, c) => c.error},
  {key: 'warning', label: 'Warnings', value: (r, c) => c.warning},
  {key: 'info', label: 'Info', value: (r, c) => c.info},
  {key: 'first', label: 'First at step', value: (r) => (r.first_step === null ? Infinity : r.first_step)},
];

function renderFilters(root) {
  const boxes = SEVERITIES.map((sev) => {
    const input = el('input', {type: 'checkbox', 'data-severity': sev});
    input.checked = state.severities.has(sev);
    input.addEventListener('change', () => {
      input.checked ? state.severities.add(sev) : state.severities.delete(sev);
      refresh();
    });
    return el('label', {class: 'filter'}, input, badge(sev));
  });
  const select = el('select', {id: 'check-filter', onchange: (e) => { state.check = e.target.value; refresh(); }},
    el('option', {value: ''}, 'all checks'), state.checks.map((c) => el('option', {value: c}, c)));
  select.value = state.check;
  root.replaceChildren(el('span', {class: 'muted'}, 'Show '), ...boxes, el('span', {class: 'muted'}, ' check '), select);
}

function renderRuns(root) {
  const rows = state.runs.map((r) => ({row: r, counts: filteredCounts(r)}));
  const col = COLUMNS.find((c) => c.key === state.sort.key);
  rows.sort((a, b) => {
    const x = col.value(a.row, a.counts), y = col.value(b.row, b.counts);
    return (x < y ? -1 : x > y ? 1 : a.row.run.localeCompare(b.row.run)) * state.sort.dir;
  });
  const head = el('tr', {}, COLUMNS.map((c) => el('th', {
    class: 'sortable' + (c.key === state.sort.key ? (state.sort.dir > 0 ? ' asc' : ' desc') : ''),
    onclick: () => { state.sort = {key: c.key, dir: c.key === state.sort.key ? -state.sort.dir : (c.key === 'run' ? 1 : -1)}; refresh(); },
  }, c.label)), el('th', {}, 'Layers'), el('th', {}, 'Samples'));
  const body = rows.map(({row, counts}) => el('tr', {
    class: 'run-row' + (row.run === state.selected ? ' selected' : ''), 'data-run': row.run,
    onclick: () => selectRun(row.run),
  },
  el('td', {class: 'run-name'}, row.run),
  el('td', {}, row.watched ? badge(counts.worst) : el('span', {class: 'muted'}, 'not watched')),
  el('td', {}, counts.total, row.recorded > row.count ? el('span', {class: 'muted', title: 'TensorBoard keeps 10 texts per tag; start it with --samples_per_plugin text=1000 to see all'}, ` (${row.recorded} recorded)`) : null),
  el('td', {}, counts.error || ''), el('td', {}, counts.warning || ''), el('td', {}, counts.info || ''),
  el('td', {}, row.first_step ?? ''), el('td', {}, row.has_layers ? '✓' : ''), el('td', {}, row.has_samples ? '✓' : '')));
  root.replaceChildren(el('table', {class: 'runs', id: 'runs-table'}, el('thead', {}, head), el('tbody', {}, body)));
}

// -- one run ----------------------------------------------------------------------------------

function renderTimeline(run) {
  const W = 960, lossH = 200, lane = 18, left = 130, right = 12, top = 10;
  const checks = [...new Set(run.findings.map((f) => f.check))].filter((c) => run.findings.some((f) => f.check === c && visible(f.check, f.severity)));
  const H = top + lossH + 24 + lane * checks.length + 8;
  const placed = run.findings.filter((f) => f.x !== null);
  const steps = [...run.losses.flatMap((l) => l.points.map((p) => p[0])), ...placed.map((f) => f.x)];
  const values = run.losses.flatMap((l) => l.points.map((p) => p[1])).filter((v) => v !== null);
  const x0 = Math.min(...steps, 0), x1 = Math.max(...steps, 1);
  const lo = values.length ? Math.min(...values) : 0, hi = values.length ? Math.max(...values) : 1;
  const logY = lo > 0 && hi / lo > 100;
  const ty = (v) => (logY ? Math.log10(v) : v);
  const yLo = ty(lo), yHi = ty(hi) === yLo ? yLo + 1 : ty(hi);
  const X = (s) => left + ((s - x0) / (x1 - x0 || 1)) * (W - left - right);
  const Y = (v) => top + lossH - ((ty(v) - yLo) / (yHi - yLo)) * lossH;
  const chart = svg('svg', {viewBox: `0 0 ${W} ${H}`, class: 'timeline', id: 'timeline'});
  chart.append(svg('rect', {x: left, y: top, width: W - left - right, height: lossH, class: 'plot'}));
  for (const [v, label] of [[lo, fmt(lo)], [hi, fmt(hi)]]) {
    const t = svg('text', {x: left - 4, y: Y(v) + 4, 'text-anchor': 'end', class: 'axis'});
    t.textContent = label;
    chart.append(t);
  }
  for (const s of [x0, x1]) {
    const t = svg('text', {x: X(s), y: top + lossH + 14, 'text-anchor': s === x0 ? 'start' : 'end', class: 'axis'});
    t.textContent = `${run.axis} ${s}`;
    chart.append(t);
  }
  for (const l of run.losses) {
    let d = '', pen = 'M';
    for (const [s, v] of l.points) {
      if (v === null) { pen = 'M'; continue; }
      d += `${pen}${X(s).toFixed(1)},${Y(v).toFixed(1)}`;
      pen = 'L';
    }
    const path = svg('path', {d, class: `loss loss-${l.split}`, stroke: SPLIT_COLOURS[l.split]});
    const title = svg('title');
    title.textContent = `${l.member} ${l.tag}`;
    path.append(title);
    chart.append(path);
  }
  checks.forEach((check, i) => {
    const y = top + lossH + 24 + lane * i + lane / 2;
    const name = svg('text', {x: left - 4, y: y + 4, 'text-anchor': 'end', class: 'lane-label'});
    name.textContent = check.length > 22 ? check.slice(0, 21) + '…' : check;
    chart.append(name);
    chart.append(svg('line', {x1: left, x2: W - right, y1: y, y2: y, class: 'lane'}));
    for (const s of run.markers[check] || []) chart.append(svg('line', {x1: X(s), x2: X(s), y1: y - 4, y2: y + 4, class: 'tick'}));
    run.findings.forEach((f, index) => {
      if (f.check !== check || f.x === null || !visible(f.check, f.severity)) return;
      chart.append(svg('line', {x1: X(f.x), x2: X(f.x), y1: top, y2: top + lossH, class: `begin sev-${f.severity}`}));
      const dot = svg('circle', {cx: X(f.x), cy: y, r: 5, class: `marker sev-${f.severity}`});
      const title = svg('title');
      title.textContent = `${f.severity} ${f.check} at ${run.axis} ${f.x}: ${f.message}`;
      dot.append(title);
      dot.addEventListener('click', () => openFinding(index));
      chart.append(dot);
    });
  });
  const legend = el('div', {class: 'legend'}, Object.entries(SPLIT_COLOURS).map(([split, colour]) =>
    el('span', {}, el('span', {class: 'swatch', style: `background:${colour}`}), split === 'val' ? 'validation loss' : 'training loss')),
  logY ? el('span', {class: 'muted'}, 'log scale') : null,
  el('span', {class: 'muted'}, 'dots: where each finding began; ticks: later sightings'));
  return el('section', {}, el('h3', {}, 'Timeline'), run.losses.length ? null : el('p', {class: 'muted'}, 'No loss curve in this run.'), chart, legend);
}

function evidenceTable(evidence) {
  const rows = Object.entries(evidence).filter(([, v]) => v !== null && v !== undefined);  // a level the check could not know
  if (!rows.length) return null;
  return el('table', {class: 'evidence'}, el('thead', {}, el('tr', {}, el('th', {}, 'evidence'), el('th', {}, 'value'))),
    el('tbody', {}, rows.map(([k, v]) => el('tr', {}, el('td', {}, k), el('td', {}, v)))));
}

function renderMarkdown(text) {
  // Just enough Markdown for a check's page: headings, fenced code, paragraphs.
  const out = el('div', {class: 'doc'});
  let inCode = false;
  for (const line of text.split('\n')) {
    if (line.startsWith('```')) { inCode = !inCode; if (inCode) out.append(el('pre')); continue; }
    if (inCode) { out.lastChild.textContent += line + '\n'; continue; }
    const h = line.match(/^(#+) (.*)/);
    if (h) out.append(el(`h${Math.min(h[1].length + 3, 6)}`, {}, h[2].replaceAll('`', '')));
    else if (line.trim()) out.append(el('p', {}, line.replaceAll('`', '')));
  }
  return out;
}

function findingCard(f, index) {
  const docs = el('div', {class: 'docs-body'});
  const link = el('a', {href: `#docs/checks/${f.check}.md`, class: 'docs-link', onclick: async (e) => {
    e.preventDefault();
    if (docs.childElementCount) { docs.replaceChildren(); return; }
    try {
      const page = await getJson(`./docs?check=${encodeURIComponent(f.check)}`);
      docs.replaceChildren(renderMarkdown(page.markdown));
    } catch (err) {
      docs.replaceChildren(el('p', {class: 'muted'}, `No documentation page for ${f.check} (a user-defined check?).`));
    }
  }}, `docs/checks/${f.check}.md`);
  const where = [f.step !== null ? `step ${f.step}` : null, f.epoch !== null ? `epoch ${f.epoch}` : null].filter(Boolean).join(', ');
  return el('details', {class: 'finding', id: `finding-${index}`, 'data-check': f.check},
    el('summary', {}, badge(f.severity), el('code', {}, f.check), el('span', {class: 'muted'}, ` ${where || `step ${f.event_step}`} `), f.message),
    el('div', {class: 'finding-body'},
      el('p', {class: 'message'}, f.message),
      evidenceTable(f.evidence),
      f.hint ? el('p', {class: 'hint'}, el('strong', {}, 'How to fix: '), f.hint) : null,
      el('p', {class: 'muted'}, `${f.member}`, ' · ', link), docs));
}

function openFinding(index) {
  const node = document.getElementById(`finding-${index}`);
  if (!node) return;
  node.open = true;
  node.scrollIntoView({behavior: 'smooth', block: 'center'});
}

function renderFindings(run) {
  const cards = run.findings.map((f, i) => (visible(f.check, f.severity) ? findingCard(f, i) : null)).filter(Boolean);
  return el('section', {id: 'findings'}, el('h3', {}, `Findings (${cards.length} of ${run.findings.length})`),
    cards.length ? cards : el('p', {class: 'muted'}, run.findings.length ? 'None match the filters.' : 'No findings: mlcheck saw nothing wrong.'));
}

function colour(t) {
  // viridis-like ramp from dark blue through green to yellow, t in [0, 1]
  const stops = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
  const p = Math.max(0, Math.min(1, t)) * (stops.length - 1), i = Math.min(Math.floor(p), stops.length - 2), f = p - i;
  const c = stops[i].map((a, k) => Math.round(a + (stops[i + 1][k] - a) * f));
  return `rgb(${c.join(',')})`;
}

function renderHeatmap(layers) {
  const select = el('select', {id: 'layer-stat'}, layers.stats.map((s) => el('option', {value: s}, s)));
  const holder = el('div', {class: 'heatmap'});
  const draw = () => {
    const stat = select.value, matrix = layers.values[stat];
    const finite = matrix.flat().filter((v) => v !== null && v !== undefined);
    const lo = finite.length ? Math.min(...finite) : 0, hi = finite.length ? Math.max(...finite) : 1;
    const logScale = lo > 0 && hi / lo > 100;
    const t = (v) => (logScale ? (Math.log10(v) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo) || 1) : (v - lo) / (hi - lo || 1));
    const cell = Math.max(2, Math.floor(720 / layers.steps.length)), rowH = 16;
    const canvas = el('canvas', {width: cell * layers.steps.length, height: rowH * layers.layers.length});
    const g = canvas.getContext('2d');
    layers.layers.forEach((layer, r) => (matrix[r] || []).forEach((v, c) => {
      g.fillStyle = v === null || v === undefined ? '#eee' : colour(t(v));
      g.fillRect(c * cell, r * rowH, cell, rowH - 1);
    }));
    const labels = el('div', {class: 'layer-labels'}, layers.layers.map((layer) => {
      const flags = layers.flagged[layer];
      return el('div', {class: flags ? 'flagged' : '', title: flags ? `named by ${flags.join(', ')}` : layer}, flags ? '⚑ ' : '', layer);
    }));
    const bad = (layers.nonfinite[stat] || []);
    holder.replaceChildren(el('div', {class: 'heatmap-grid'}, labels, canvas),
      el('p', {class: 'muted'}, `steps ${layers.steps[0]}–${layers.steps.at(-1)}; ${stat} from ${fmt(lo)} (dark) to ${fmt(hi)} (yellow)${logScale ? ', log scale' : ''}; grey: not recorded; ⚑ layers named by a finding`),
      ...(bad.length ? [el('p', {class: 'sev-text-error'}, `non-finite values in: ${bad.join(', ')}`)] : []));
  };
  select.addEventListener('change', draw);
  const preferred = ['grad_norm', 'dead_units', 'saturated_fraction', 'nonfinite'].find((s) => layers.stats.includes(s));
  if (preferred) select.value = preferred;
  draw();
  return el('section', {id: 'layers'}, el('h3', {}, 'Layers'), el('label', {}, 'statistic ', select), holder);
}

function renderSamples(run) {
  const s = run.samples;
  const parts = [el('h3', {}, 'Samples')];
  if (s && s.error) parts.push(el('p', {class: 'muted'}, `${s.path}: ${s.error}`));
  if (s && !s.error) {
    const flagged = s.suspect_rule === 'flagged';
    // the flagged list holds training and validation rows: their split is shown
    const cols = s.columns.filter((c) => c !== 'split' || (flagged && s.classes.splits.length > 1));
    const counts = flagged ? Object.entries(s.flagged).map(([sp, n]) => `${n} ${sp}`).join(', ') || 'none' : '';
    const title = flagged
      ? `Suspect samples: those noisy-labels flagged (${counts}; the flagged column of samples.csv), showing ${s.suspects.length} of ${s.rows}, training first, least confident first`
      : `Suspect samples: ${s.suspects.length} of ${s.rows} (prediction differs from the label, or confidence in the label below ${s.threshold}), least confident first`;
    parts.push(el('h4', {}, title),
      el('table', {class: 'samples', id: 'suspects'}, el('thead', {}, el('tr', {}, cols.map((c) => el('th', {}, c)))),
        el('tbody', {}, s.suspects.map((row) => el('tr', {class: row.predicted && row.predicted !== row.label ? 'disagree' : ''},
          cols.map((c) => el('td', {}, fmt(row[c]))))))));
    const cls = s.classes;
    const heads = [...cls.splits.map((sp) => `given (${sp})`), ...(cls.predicted ? ['predicted'] : [])];
    const max = Math.max(1, ...Object.values(cls.given).flat(), ...(cls.predicted || []));
    parts.push(el('h4', {}, 'Class distribution'),
      el('table', {class: 'classes'}, el('thead', {}, el('tr', {}, el('th', {}, 'label'), heads.map((h) => el('th', {}, h)))),
        el('tbody', {}, cls.labels.map((label, i) => el('tr', {}, el('td', {}, label),
          [...cls.splits.map((sp) => cls.given[sp][i]), ...(cls.predicted ? [cls.predicted[i]] : [])].map((n) =>
            el('td', {}, el('span', {class: 'bar', style: `width:${Math.round((80 * n) / max)}px`}), ` ${n}`)))))));
  }
  const slices = run.findings.filter((f) => f.check === 'weak-slice');
  if (slices.length) {
    const keys = [...new Set(slices.flatMap((f) => Object.keys(f.evidence)))];
    parts.push(el('h4', {}, 'Weak slices'), el('table', {class: 'samples', id: 'weak-slices'},
      el('thead', {}, el('tr', {}, el('th', {}, 'finding'), keys.map((k) => el('th', {}, k)))),
      el('tbody', {}, slices.map((f) => el('tr', {}, el('td', {}, f.message), keys.map((k) => el('td', {}, f.evidence[k] ?? '')))))));
  }
  return parts.length > 1 ? el('section', {id: 'samples'}, parts) : null;
}

async function selectRun(name) {
  state.selected = name;
  state.detail = null;
  refresh();
  try {
    state.detail = await getJson(`./run?run=${encodeURIComponent(name)}`);
  } catch (err) {
    state.detail = {error: String(err)};
  }
  refresh();
}

function renderRun(root) {
  const run = state.detail;
  if (!state.selected) { root.replaceChildren(el('p', {class: 'muted'}, 'Select a run above.')); return; }
  if (!run) { root.replaceChildren(el('p', {class: 'muted'}, `Loading ${state.selected}…`)); return; }
  if (run.error) { root.replaceChildren(el('p', {class: 'sev-text-error'}, run.error)); return; }
  const parts = [el('h2', {id: 'run-title'}, run.run), renderTimeline(run), renderFindings(run),
    run.layers ? renderHeatmap(run.layers) : null, renderSamples(run)];
  root.replaceChildren(...parts.filter(Boolean));
}

function refresh() {
  renderFilters(document.getElementById('filters'));
  renderRuns(document.getElementById('runs'));
  renderRun(document.getElementById('run'));
}

export async function render() {
  document.head.append(el('link', {rel: 'stylesheet', href: new URL('./style.css', import.meta.url).href}));
  document.body.append(el('div', {id: 'mlcheck'},
    el('header', {}, el('h1', {}, 'mlcheck'), el('div', {id: 'filters'})),
    el('div', {id: 'runs'}, el('p', {class: 'muted'}, 'Loading runs…')), el('div', {id: 'run'})));
  try {
    const data = await getJson('./runs');
    Object.assign(state, {runs: data.runs, checks: data.checks});
  } catch (err) {
    document.getElementById('runs').replaceChildren(el('p', {class: 'sev-text-error'}, String(err)));
    return;
  }
  const first = [...state.runs].sort((a, b) => (RANK[b.worst] || 0) - (RANK[a.worst] || 0) || b.count - a.count)[0];
  refresh();
  if (first) await selectRun(first.run);
}
