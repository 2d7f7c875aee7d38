"""The research book end to end on the smoke profile: runs, registry caching, publishing and rendering."""
import json
import subprocess
import sys
from pathlib import Path

import yaml

from conftest import REPO
from credit_rl.book.publish import book_chapters, book_specs, quarto_chapters, run_book, sync_quarto
from credit_rl.book.runs import PROFILES, list_runs, load_spec


def test_every_chapter_validates_in_every_profile():
    "One params/<chapter>.yaml per chapter; each profile (params + profiles.<p> overrides) validates."
    from credit_rl.book.runs import params_files
    files = params_files(REPO)
    assert not [p for p in (REPO / "params").iterdir() if p.is_dir()], "params/ holds one file per chapter, no profile folders"
    for f in files:
        specs = [load_spec(f, profile) for profile in PROFILES]
        assert {s.name for s in specs} == {f.stem} and [s.profile for s in specs] == list(PROFILES)
        assert len({s.template for s in specs}) == 1
    chapters = book_chapters(REPO)
    assert chapters[0] == "index" and chapters[-1] == "results"   # _quarto.yml's chapters: sets the order between them
    assert sorted(chapters[1:-1]) == sorted(f.stem for f in files)
    for profile in PROFILES:
        assert [s.name for s in book_specs(profile, REPO)] == chapters[1:-1]


def test_quarto_yml_is_generated_from_its_chapter_list():
    "project.render and website.sidebar.contents are what `credit-rl chapters` writes from chapters:."
    assert sync_quarto(REPO, write=False) is False, "_quarto.yml is out of sync: run `credit-rl chapters`"
    cfg = yaml.safe_load((REPO / "_quarto.yml").read_text())
    assert cfg["project"]["render"] == cfg["website"]["sidebar"]["contents"] == quarto_chapters(REPO)
    assert quarto_chapters(REPO) == [f"reports/book/{c}.ipynb" for c in book_chapters(REPO)]


def test_reports_folder_is_in_the_clone_and_its_content_ignored():
    assert (REPO / "reports" / "README.md").is_file()
    if not (REPO / ".git").exists(): return  # not a git checkout (e.g. an unpacked sdist): nothing more to check
    tracked = subprocess.run(["git", "ls-files", "reports"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    assert tracked == ["reports/README.md"]
    ignored = subprocess.run(["git", "check-ignore", "reports/runs/x/meta.json", "reports/book/x.ipynb", "reports/site/index.html"],
                             cwd=REPO, capture_output=True, text=True).stdout.split()
    assert len(ignored) == 3


def test_smoke_book_second_run_executes_nothing(smoke_book):
    root, first = smoke_book
    assert first.failed == [] and first.executed == len(first.results) > 0
    again = run_book(profile="smoke", reports_dir=root, project_dir=REPO, render=False, echo=False)
    assert again.executed == 0
    assert [r.run_id for r in again.results] == [r.run_id for r in first.results]
    assert all(r.cached for r in again.results)
    assert set(list_runs(root).status) == {"succeeded"}


def test_run_folders_hold_what_the_report_reads(smoke_book):
    root, first = smoke_book
    has_data = (REPO.parent / "shared" / "data").is_dir()
    produced = {"train_ppo": {"metrics.json", "timeseries.parquet", "model.zip"},
                "market": {"metrics.json", "calibration.csv"} if has_data else {"metrics.json"},
                "regimes_crisis": {"metrics.json"}, "walk_forward": {"metrics.json", "timeseries.parquet"},
                "execution": {"metrics.json", "episodes.parquet"}, "regime_ppo": {"metrics.json", "timeseries.parquet"},
                "constrained": {"metrics.json", "timeseries.parquet"}, "agents_dp": {"metrics.json", "per_seed.csv"}}
    assert {r.spec.template for r in first.results} == set(produced)
    for r in first.results:
        files = {p.name for p in r.path.iterdir()}
        assert {"meta.json", "params.yaml", "notebook.ipynb", "log.txt"} | produced[r.spec.template] <= files
        metrics = json.loads((r.path / "metrics.json").read_text())
        if r.spec.template == "train_ppo": assert {"ppo", "passive"} <= set(metrics["policies"])
        elif r.spec.template == "market": assert metrics["calibration_pass"] is (True if has_data else None)  # passes its rule
        meta = json.loads((r.path / "meta.json").read_text())
        assert meta["run_id"] == r.run_id and meta["status"] == "succeeded" and meta["params_file"].endswith(f"{r.spec.name}.yaml")


def test_quarto_yml_lists_existing_chapters_after_smoke(smoke_book):
    root, _ = smoke_book
    cfg = yaml.safe_load((REPO / "_quarto.yml").read_text())
    assert cfg["project"]["output-dir"].startswith("reports/")
    for chapter in cfg["project"]["render"]:
        assert chapter.startswith("reports/book/")
        assert (root / chapter.removeprefix("reports/")).is_file(), chapter
    assert [c["href"] if isinstance(c, dict) else c for c in cfg["website"]["sidebar"]["contents"]] == cfg["project"]["render"]


def test_rendered_site_has_every_chapter_with_one_plotlyjs(smoke_book, rendered_site):
    root, first = smoke_book
    assert first.renderer.startswith(("quarto", "nbconvert"))
    pages = {p.name for p in rendered_site.glob("*.html")}
    assert {"index.html", "results.html", "ppo_ig.html"} <= pages
    results = (rendered_site / "results.html").read_text()
    assert "Plotly.newPlot" in results and "plotly.js v" not in results  # figures, library loaded once per site
    assert (root / "site" / "plotly.min.js").stat().st_size > 1_000_000
    assert "https://cdn" not in results and "cdnjs" not in results  # nothing fetched from the internet


def test_cli_rejects_bad_params_before_work(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("template: train_ppo\nparams:\n  seed: -1\n  total_timestep: 100\n")
    cli = Path(sys.executable).parent / "credit-rl"  # the console script of the installed package
    p = subprocess.run([str(cli), "validate", str(bad)], capture_output=True, text=True)
    assert p.returncode == 2, p.stderr
    assert "bad.yaml" in p.stderr and "total_timestep" in p.stderr and "seed" in p.stderr


def test_run_explorer_shows_every_chapters_run_folder(smoke_book):
    "The run explorer's views on the book's own run folders, one per template: no error, the chapter's figures shown."
    from credit_rl.book.figures import policy_metrics, run_views
    from credit_rl.book.runs import load_run
    root, first = smoke_book
    with_table = {"train_ppo", "constrained", "regime_ppo", "regimes_crisis", "walk_forward"}
    for r in first.results:
        run = load_run(r.path)
        fig, html = run_views(run)
        assert "metrics-table" in html, r.spec.template
        assert bool(policy_metrics(run.metrics)) == (r.spec.template in with_table), r.spec.template
        if run.timeseries is not None and len(run.timeseries): assert len(fig.data) > 0, r.spec.template


def test_smoke_book_matches_golden_summary(smoke_book):
    "Every chapter's smoke metrics equal the committed golden summary (`make golden` rewrites it on purpose)."
    from credit_rl.book.publish import GOLDEN_FILE, golden_differences, golden_summary
    root, first = smoke_book
    expected = json.loads((REPO / GOLDEN_FILE).read_text())
    diffs = golden_differences(golden_summary(first), expected)
    assert not diffs, (f"{len(diffs)} smoke figures differ from {GOLDEN_FILE} (if on purpose: `make golden`, and list "
                       "each cause in the commit message):\n" + "\n".join(diffs[:40]))
