"""Shared pytest set-up: the slow marker (on when CI=true or --runslow) and the smoke book fixtures."""
import os
from pathlib import Path

import pytest
from hypothesis import settings

REPO = Path(__file__).resolve().parents[1]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# CI draws the same hypothesis examples on every run, so a CI failure reproduces; local runs keep exploring new ones
settings.register_profile("ci", derandomize=True, print_blob=True)
if IN_CI: settings.load_profile("ci")


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False, help="run tests marked slow")


def pytest_collection_modifyitems(config, items):
    if IN_CI or config.getoption("--runslow"):
        return
    skip_slow = pytest.mark.skip(reason="slow: runs when CI=true or with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip_slow)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def smoke_book(tmp_path_factory):
    "Run the smoke profile once per test session into a temporary reports root; returns (root, first result)."
    from credit_rl.book.publish import run_book
    root = tmp_path_factory.mktemp("reports")
    result = run_book(profile="smoke", reports_dir=root, project_dir=REPO)
    return root, result


@pytest.fixture(scope="session")
def rendered_site(smoke_book) -> Path:
    "Folder holding the rendered report's front page (index.html) and results page (results.html)."
    root, result = smoke_book
    return result.site_dir
