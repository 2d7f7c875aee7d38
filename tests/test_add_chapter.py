"""Adding a chapter, end to end on a throw-away project: a template notebook with a `parameters` cell, a params
dataclass registered in `SCHEMAS`, one params file and one name in `_quarto.yml`'s `chapters:` list; the book
is then run, published and rendered (nbconvert fallback) with that chapter as its only page."""
import json
from dataclasses import dataclass

import nbformat
import yaml

from credit_rl.book.publish import quarto_chapters, run_book
from credit_rl.book.runs import SCHEMAS, load_spec, run_id
from credit_rl.config import param


@dataclass(frozen=True)
class ToyChapterParams:
    "The toy chapter's parameters (a real chapter keeps its dataclass in its study module)."
    seed: int = param(0, "random seed", ge=0)
    n: int = param(10, "how many numbers to add up", ge=1)


TEMPLATE_CELLS = [
    ("markdown", "# A toy chapter\n\nAdds up the first `n` numbers."),
    ("parameters", "params = {'seed': 0, 'n': 3}\nrun_dir = '.'"),
    ("code", "import json, pathlib\ntotal = sum(range(params['n']))\n"
             "pathlib.Path(run_dir, 'metrics.json').write_text(json.dumps({'total': total, 'seed': params['seed']}))\n"
             "print('total', total)"),
]


def make_toy_project(root):
    "The smallest project `run_book` accepts: _quarto.yml, one params file, one template."
    (root / "nbs" / "research").mkdir(parents=True)
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    nb.cells = [nbformat.v4.new_markdown_cell(s) if kind == "markdown" else
                nbformat.v4.new_code_cell(s, metadata={"tags": ["parameters"]} if kind == "parameters" else {})
                for kind, s in TEMPLATE_CELLS]
    nbformat.write(nb, root / "nbs" / "research" / "toy.ipynb")
    (root / "params").mkdir()
    (root / "params" / "toy.yaml").write_text(
        "# The toy chapter: sums the first n numbers.\ntemplate: toy\ntitle: A toy chapter\n"
        "params: {seed: 1, n: 100}\nprofiles:\n  smoke: {n: 5}  # smoke: a shorter sum\n")
    (root / "_quarto.yml").write_text(
        "chapters:\n  - toy\nproject:\n  type: website\n  output-dir: reports/site\n  render:\n    - reports/book/stale.ipynb\n"
        "execute:\n  enabled: false\nwebsite:\n  title: toy book\n  sidebar:\n    contents:\n      - reports/book/stale.ipynb\n")
    return root


def test_a_new_chapter_needs_a_template_a_registered_schema_and_one_params_file(tmp_path, monkeypatch):
    monkeypatch.setitem(SCHEMAS, "toy", f"{__name__}:ToyChapterParams")  # the one registration of a template's schema
    proj = make_toy_project(tmp_path / "proj")
    spec = load_spec(proj / "params" / "toy.yaml", "smoke")
    assert spec.params == {"seed": 1, "n": 5}

    result = run_book("smoke", reports_dir=proj / "reports", project_dir=proj, render=True, renderer="nbconvert", echo=False)

    assert result.failed == [] and result.executed == 1 and [r.spec.name for r in result.results] == ["toy"]
    assert result.results[0].run_id == run_id(spec, proj)
    assert json.loads((result.results[0].path / "metrics.json").read_text()) == {"total": 10, "seed": 1}
    page = proj / "reports" / "site" / "reports" / "book" / "toy.html"
    assert page.is_file() and "A toy chapter" in page.read_text() and "total 10" in page.read_text()
    assert "toy.html" in (proj / "reports" / "site" / "index.html").read_text()
    cfg = yaml.safe_load((proj / "_quarto.yml").read_text())  # the render and sidebar lists were regenerated
    assert cfg["project"]["render"] == cfg["website"]["sidebar"]["contents"] == quarto_chapters(proj) == ["reports/book/toy.ipynb"]
