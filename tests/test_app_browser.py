"""The run-explorer Voila app in a real headless browser.

Writes a reports root with three run folders (two succeeded with different returns, one failed), serves
nbs/apps/run_explorer.ipynb with Voila on 127.0.0.1 (the command of `credit_rl.book.figures.voila_command`), opens it
in Debian chromium through playwright, reads the plotly figure's data from the page, changes the run picker
and checks the figure follows, and checks the browser console. The server is stopped by its PID.

Network: every request that does not go to the Voila server is aborted and recorded, so the test proves the
app works offline. Voila 0.5.13's `lab` template itself links two Font Awesome stylesheets from
cdn.jsdelivr.net (voila/templates/lab/index.html.j2); the same icons are bundled in Voila's JavaScript, so
losing them changes nothing on the page, but chromium logs one console error per blocked stylesheet.
Those two errors, and only those, are expected (VOILA_TEMPLATE_CDN); every other console error, page error
or outside request fails the test, and all console messages are written to tmp_path/console.txt.
"""
import json
import os
from pathlib import Path
import numpy as np
import pytest

from browser_utils import (REPO, ConsoleLog, block_outside_requests, chromium_browser,  # noqa: F401
                           expected_last_equity, free_port, start_voila, stop_process, wait_for_port, write_run)

APP = REPO / "nbs" / "apps" / "run_explorer.ipynb"
VOILA_TEMPLATE_CDN = {"https://cdn.jsdelivr.net/npm/@fortawesome/fontawesome-free@%5E5/css/all.min.css",
                      "https://cdn.jsdelivr.net/npm/@fortawesome/fontawesome-free@%5E5/css/v4-shims.min.css"}
N_STEPS = 120
N_SEEDS = 3
N_TRACES = 2 * (N_SEEDS + 1) * 2  # 2 policies x (each seed + their mean) x (equity, drawdown)

pytestmark = pytest.mark.browser

# last equity point and status line of what the page shows, read from plotly's graph div
FIGURE_STATE_JS = """() => {
  const gd = document.querySelector('.js-plotly-plot');
  const status = document.querySelector('.run-status');
  if (!gd || !gd.data) return null;
  return {n_traces: gd.data.length,
          traces: gd.data.map(t => ({name: t.name, yaxis: t.yaxis || 'y', last_y: t.y[t.y.length - 1], n: t.y.length})),
          title: ((gd.layout || {}).title || {}).text || '',
          annotations: ((gd.layout || {}).annotations || []).map(a => a.text),
          tick_labels: !!(gd._fullLayout && gd._fullLayout.yaxis && gd._fullLayout.yaxis.showticklabels),
          width_px: gd.getBoundingClientRect().width,
          svg_width_px: Number(gd.querySelector('svg.main-svg')?.getAttribute('width')),
          picker_width_px: document.querySelector('.widget-dropdown').getBoundingClientRect().width,
          svg: !!gd.querySelector('.main-svg'),
          status: status ? status.textContent : null};
}"""


@pytest.fixture(scope="module")
def reports_root(tmp_path_factory):
    "Three runs: ppo_hy (newest, loses), ppo_ig (gains), ppo_bad (oldest, failed). Returns (root, returns, folders)."
    root = tmp_path_factory.mktemp("reports")
    rng = np.random.default_rng(20261125)
    returns = {
        "ppo_ig": {"ppo": rng.normal(4e-4, 4e-3, (N_SEEDS, N_STEPS)), "passive": rng.normal(2e-4, 3e-3, (N_SEEDS, N_STEPS))},
        "ppo_hy": {"ppo": rng.normal(-5e-4, 5e-3, (N_SEEDS, N_STEPS)), "passive": rng.normal(1e-4, 3e-3, (N_SEEDS, N_STEPS))},
    }
    folders = {"ppo_ig": write_run(root, "ppo_ig", returns["ppo_ig"], started="2026-11-25T10:00:00+00:00"),
               "ppo_hy": write_run(root, "ppo_hy", returns["ppo_hy"], started="2026-11-25T11:00:00+00:00")}
    folders["ppo_bad"] = write_run(root, "ppo_bad", None, status="failed", started="2026-11-25T09:00:00+00:00",
              error="ValueError: spread_bp must be positive, got -3.0")
    return root, returns, folders


@pytest.fixture(scope="module")
def voila_url(reports_root, tmp_path_factory):
    "Serve the app on a free loopback port; stop it by PID (terminate, then kill) afterwards."
    root = reports_root[0]
    port, log = free_port(), tmp_path_factory.mktemp("voila") / "voila.log"
    env = dict(os.environ, CREDIT_RL_REPORTS=str(root),
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    proc = start_voila(APP, port, env, log)
    try:
        wait_for_port(port, proc, log)
        yield f"http://127.0.0.1:{port}/"
    finally:
        stop_process(proc)
        assert proc.poll() is not None, f"voila (pid {proc.pid}) still running"


def figure_state(page):
    return page.evaluate(FIGURE_STATE_JS)


def wait_for_state(page, condition: str, arg=None, timeout_ms: int = 60_000) -> dict:
    "Wait until the JS `condition` on the figure state `s` (and `arg`) holds and plotly has sized its svg; return the state."
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    settled = "Math.abs(s.svg_width_px - s.width_px) < 2"
    try:
        page.wait_for_function(f"(arg) => {{ const s = ({FIGURE_STATE_JS})(); return !!s && ({condition}) && {settled}; }}",
                               arg=arg, timeout=timeout_ms)
    except PlaywrightTimeout:
        state = figure_state(page)
        if state: state["traces"] = [(t["name"], t["yaxis"], t["last_y"]) for t in state["traces"]]
        pytest.fail(f"after {timeout_ms / 1000:.0f} s the app does not show ({condition}) with a settled figure "
                    f"({settled}); it shows {state}")
    return figure_state(page)


def equity_last(state, policy):
    "Last equity point of `policy` (its trace on the top axis)."
    (value,) = [t["last_y"] for t in state["traces"] if t["name"] == policy and t["yaxis"] == "y"]
    return value


def test_run_explorer_in_browser(chromium_browser, voila_url, reports_root, tmp_path):  # noqa: F811
    _, returns, folders = reports_root
    page = chromium_browser.new_page(viewport={"width": 1280, "height": 1000})
    console = ConsoleLog()
    console.attach(page)
    outside = block_outside_requests(page)
    try:
        page.goto(voila_url, timeout=60_000)
        # newest run first: ppo_hy, with equity + drawdown traces of ppo and passive (each seed and the mean)
        first = wait_for_state(page, f"s.n_traces === {N_TRACES} && s.svg", timeout_ms=60_000)
        names = sorted(t["name"] for t in first["traces"])
        assert names == sorted([p for p in ["passive", "ppo"] for _ in range(2)]
                               + [f"{p} seed {k}" for p in ["passive", "ppo"] for k in range(N_SEEDS) for _ in range(2)]), names
        assert all(t["n"] == N_STEPS for t in first["traces"])
        # the figure fills the app's width (plotly falls back to 700 px when it draws into a hidden element)
        assert first["width_px"] >= 0.9 * first["picker_width_px"], (first["width_px"], first["picker_width_px"])
        assert equity_last(first, "ppo") == pytest.approx(expected_last_equity(returns["ppo_hy"]["ppo"]), rel=1e-9)
        assert "SUCCEEDED" in first["status"] and "ppo_hy" in first["status"]
        sharpe = json.loads((folders["ppo_hy"] / "metrics.json").read_text())["policies"]["ppo"]["sharpe"]
        ppo_row = page.locator(".metrics-table tbody tr", has=page.locator("th", has_text="ppo")).inner_text()
        assert f"{sharpe:.2f}" in ppo_row.split(), (sharpe, ppo_row)
        page.screenshot(path=tmp_path / "run_explorer_ppo_hy.png", full_page=True)

        # pick the second run: the figure must follow
        page.select_option(".widget-dropdown select", index=1)
        second = wait_for_state(page, f"s.status.includes('ppo_ig') && s.title.includes('ppo_ig') && s.n_traces === {N_TRACES} && "
                                "s.traces.some(t => t.name === 'ppo' && t.yaxis === 'y' && t.last_y !== arg)",
                                arg=equity_last(first, "ppo"))
        assert equity_last(second, "ppo") == pytest.approx(expected_last_equity(returns["ppo_ig"]["ppo"]), rel=1e-9)
        assert equity_last(second, "ppo") != pytest.approx(equity_last(first, "ppo"))
        page.screenshot(path=tmp_path / "run_explorer_ppo_ig.png", full_page=True)

        # the failed run stays visible as failed, with an empty figure that says why
        page.select_option(".widget-dropdown select", index=2)
        failed = wait_for_state(page, "s.status.includes('FAILED') && s.title.includes('ppo_bad') && s.n_traces === 0")
        assert failed["annotations"] == ["no time series: run failed"]
        assert "spread_bp must be positive" in page.inner_text("body")
        assert not failed["tick_labels"]
        assert failed["width_px"] == pytest.approx(first["width_px"], abs=2)
        page.screenshot(path=tmp_path / "run_explorer_failed.png", full_page=True)

        # back to the newest run: same lines as at first, axes labelled again, still full width
        page.select_option(".widget-dropdown select", index=0)
        # (plotly applies the new layout last: wait for its title, then check nothing of the failed run's is left)
        again = wait_for_state(page, f"s.status.includes('ppo_hy') && s.title.includes('ppo_hy') && s.n_traces === {N_TRACES}")
        assert equity_last(again, "ppo") == pytest.approx(equity_last(first, "ppo"), rel=1e-12)
        assert again["tick_labels"] and again["annotations"] == []
        assert again["width_px"] == pytest.approx(first["width_px"], abs=2)
    finally:
        console.dump(tmp_path / "console.txt")
        page.close()

    assert set(outside) <= VOILA_TEMPLATE_CDN, f"the app requested outside the server: {sorted(set(outside))}"
    unexpected = [e for e in console.errors if e["url"] not in VOILA_TEMPLATE_CDN]
    assert not unexpected, "browser console errors:\n" + "\n".join(f"{e['type']}: {e['text']} @ {e['url']}" for e in unexpected)
