"""The rendered HTML report in a real headless browser: its plotly figures must draw.

Uses the `rendered_site` fixture of tests/conftest.py: a Path to the folder holding the rendered report's
front page (index.html) and results page (results.html), made from the smoke profile. The pages are opened
as a reader opens the report under reports/: from file:// URLs. Every request to a network host is aborted
and recorded (the report must read offline: plotly.js ships with the site), and the browser console must
show no error. Screenshots and console logs go to tmp_path.
"""
from pathlib import Path

import pytest

from browser_utils import ConsoleLog, block_outside_requests, chromium_browser  # noqa: F401

pytestmark = pytest.mark.browser

# page -> least number of plotly figures it must draw (the issue asks both pages for a rendered plotly figure)
MIN_FIGURES = {"index.html": 1, "results.html": 1}

# what a drawn plotly figure looks like in the page
PLOTLY_FIGURES_JS = """() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(gd => ({
  n_traces: (gd.data || []).length,
  svg: gd.querySelectorAll('svg.main-svg').length,
  drawn_traces: gd.querySelectorAll('svg.main-svg g.trace').length,
  width_px: gd.getBoundingClientRect().width,
  height_px: gd.getBoundingClientRect().height}))"""


def open_page(browser, url: str):
    "Open `url` with network hosts blocked, wait for it to settle; return (page, console, blocked URLs)."
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    console = ConsoleLog()
    console.attach(page)
    blocked = block_outside_requests(page, allowed_hosts=())
    page.goto(url, wait_until="load", timeout=60_000)
    page.wait_for_load_state("networkidle", timeout=60_000)  # also follows a meta-refresh front page
    return page, console, blocked


def check_figures(page, where: str, min_figures: int, console: ConsoleLog, blocked: list[str]) -> list[dict]:
    "At least `min_figures` plotly figures, and every figure has an svg, at least one trace drawn, and a real size."
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    try:
        if min_figures: page.wait_for_selector(".js-plotly-plot svg.main-svg", timeout=30_000)
        page.wait_for_function(f"({PLOTLY_FIGURES_JS})().every(f => f.drawn_traces > 0)", timeout=30_000)
    except PlaywrightTimeout:
        plotly_loaded = page.evaluate("typeof window.Plotly !== 'undefined'")
        pytest.fail(f"{where}: no drawn plotly figure after 30 s; figures {page.evaluate(PLOTLY_FIGURES_JS)}, "
                    f"plotly.js loaded: {plotly_loaded}, blocked network requests {sorted(set(blocked))}, "
                    f"console errors {[(e['text'], e['url']) for e in console.errors]}")
    figures = page.evaluate(PLOTLY_FIGURES_JS)
    assert len(figures) >= min_figures, f"{where}: {len(figures)} plotly figure(s), expected at least {min_figures}"
    for i, fig in enumerate(figures):
        assert fig["svg"] >= 1 and fig["n_traces"] >= 1 and fig["drawn_traces"] >= 1, (where, i, fig)
        assert fig["width_px"] > 200 and fig["height_px"] > 150, (where, i, fig)
    return figures


@pytest.mark.parametrize("page_name", list(MIN_FIGURES))
def test_report_page_draws_plotly(chromium_browser, rendered_site, page_name, tmp_path):  # noqa: F811
    file = Path(rendered_site) / page_name
    assert file.is_file(), f"rendered_site has no {page_name}: {sorted(p.name for p in Path(rendered_site).iterdir())}"
    page, console, blocked = open_page(chromium_browser, file.resolve().as_uri())
    try:
        figures = check_figures(page, f"{page_name} ({page.url})", MIN_FIGURES[page_name], console, blocked)
        page.screenshot(path=tmp_path / f"report_{file.stem}.png", full_page=True)
    finally:
        console.dump(tmp_path / f"console_{file.stem}.txt")
        page.close()
    assert not blocked, f"{page_name} requested network hosts (the report must work offline): {sorted(set(blocked))}"
    assert not console.errors, f"{page_name}: browser console errors:\n" + "\n".join(
        f"{e['type']}: {e['text']} @ {e['url']}" for e in console.errors)
    print(f"{page_name}: {len(figures)} plotly figure(s), traces {[f['n_traces'] for f in figures]}")
