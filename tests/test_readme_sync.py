"""README.md is kept in sync with nbs/index.ipynb (the book's front page): every markdown cell appears in it."""
import json

from conftest import REPO


def test_readme_contains_every_index_cell():
    readme = (REPO / "README.md").read_text()
    cells = json.loads((REPO / "nbs" / "index.ipynb").read_text())["cells"]
    sources = ["".join(c["source"]) if isinstance(c["source"], list) else c["source"] for c in cells if c["cell_type"] == "markdown"]
    assert sources, "nbs/index.ipynb has no markdown"
    missing = [s.splitlines()[0] for s in sources if s.strip() not in readme]
    assert not missing, f"README.md is out of sync with nbs/index.ipynb in sections: {missing}"


def test_readme_has_the_two_commands():
    readme = (REPO / "README.md").read_text()
    assert "make book" in readme and "make test" in readme
