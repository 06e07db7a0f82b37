"""The Snakemake report builds and, opened in a real headless browser, shows every figure without errors."""

import json
import re
import shutil
import subprocess

import pytest
from conftest import snakemake

DATASETS = ["devils-dictionary", "chloroplast-dna"]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

#: Injected into a copy of the report: shows every image result through the report's own view switch
#: (the report app keeps its results in the global `results`), waits until the browser has decoded it, and
#: writes what it saw, plus any script error, into the DOM for --dump-dom to carry out.
DRIVER = """
<script>
window.__tl = {errors: [], shown: {}};
window.addEventListener('error', e => window.__tl.errors.push(String(e.message)));
// Waits on DOM mutations, not timers: the report renders through React's scheduler, which timers can starve.
function until(test) {
  return new Promise(resolve => {
    const found = test();
    if (found) return resolve(found);
    const obs = new MutationObserver(() => { const f = test(); if (f) { obs.disconnect(); resolve(f); } });
    obs.observe(document.body, {childList: true, subtree: true, attributes: true});
  });
}
// keeps the page alive under --virtual-time-budget and reports the state if the checks never finish
setTimeout(() => {
  const out = document.createElement('pre');
  out.id = 'tl-debug';
  out.textContent = JSON.stringify({app: typeof app, state: window.__tl});
  document.body.appendChild(out);
}, 20000);
(async () => {
  await until(() => typeof app !== 'undefined' && document.querySelector('#app').children.length > 0);
  for (const [path, entry] of Object.entries(results)) {
    if (!(entry.mime_type || '').startsWith('image/')) continue;
    app.setView({content: 'img', contentPath: entry.data_uri, resultPath: path});
    const img = await until(() => [...document.querySelectorAll('img')].find(i => i.src === entry.data_uri));
    if (!img.complete) await new Promise(r => { img.onload = r; img.onerror = r; });
    window.__tl.shown[path] = img.naturalWidth;
  }
  const out = document.createElement('pre');
  out.id = 'tl-check';
  out.textContent = JSON.stringify(window.__tl);
  document.body.appendChild(out);
})();
</script>
"""


def test_report_builds_and_shows_its_figures(study_copy, tmp_path):
    """On a copy of the small study: the report is written into the study."""
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (.ci/run installs Debian's `chromium`)")
    snakemake(study_copy, "--report", "results/report.html")
    report = study_copy / "results/report.html"
    html = report.read_text()
    for ds in DATASETS:
        assert f"results/figures/{ds}/iso_loss.png" in html
    assert "results/summary.md" in html and "results/config.yaml" in html

    driven = tmp_path / "report.html"
    head, _, tail = html.rpartition("</body>")  # the last one: the bundled scripts contain the string too
    driven.write_text(head + DRIVER + "</body>" + tail)
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--virtual-time-budget=30000",
        "--dump-dom",
        driven.as_uri(),
    ]
    dom = subprocess.run(cmd, capture_output=True, text=True, timeout=180).stdout
    match = re.search(r'<pre id="tl-check">(.*?)</pre>', dom, flags=re.S)
    debug = re.search(r'<pre id="tl-debug">(.*?)</pre>', dom, flags=re.S)
    assert match, f"the report did not finish rendering in the browser: {debug and debug.group(1)}"
    check = json.loads(match.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert check["errors"] == []
    expected = {
        f"results/figures/{ds}/{n}.png" for ds in DATASETS for n in ("raw_data", "iso_loss", "epochs")
    }
    expected |= {"results/figures/allocation_gap.png", "results/figures/allocation_cost.png"}
    assert expected <= set(check["shown"])
    assert all(width > 200 for width in check["shown"].values()), check["shown"]
    # the navigation names the groups: every dataset and the cross-dataset analyses
    visible = re.sub(r"<script.*?</script>", "", dom, flags=re.S)
    for name in [*DATASETS, "across datasets", "study"]:
        assert name in visible
