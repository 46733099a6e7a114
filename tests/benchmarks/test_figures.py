"""The docs' figures come from the results files they cite (benchmarks.figures): the repo's docs
match their files, and the tool fills, checks and refuses as it says."""

import json

import pytest

from benchmarks import figures


def test_every_figure_in_the_docs_is_its_results_file_s():
    docs = figures.default_docs()
    problems = [problem for doc in docs for problem in figures.stale(doc)]
    assert problems == []
    assert sum(len(figures.figures(doc)) for doc in docs) > 20  # the docs do cite their runs


def test_every_results_file_is_cited_or_the_latest_of_its_kind():
    # Results files nobody cites are removed, but for the latest run per benchmark and CPU.
    results = figures.ROOT / "benchmarks" / "results"
    cited = figures.cited(figures.default_docs())
    latest = figures.latest_per_kind(results)
    orphans = [path.name for path in sorted(results.glob("*.json"))
               if path not in cited and path not in latest]
    assert orphans == []


@pytest.fixture
def doc(tmp_path):
    results = tmp_path / "benchmarks" / "results"
    results.mkdir(parents=True)
    (results / "run.json").write_text(json.dumps(
        {"requests": 2748, "server": {"start": {"rss_gb": 0.72}, "end": {"rss_gb": 0.779}},
         "kinds": [{"p50_s": 4.3281}], "met": "yes"}))
    page = tmp_path / "docs" / "page.md"
    page.parent.mkdir()
    return page


def link(text: str, title: str) -> str:
    return f'[{text}](../benchmarks/results/run.json "{title}")'


def test_figures_are_filled_in_at_the_precision_shown(doc):
    doc.write_text(f"{link('1 requests', 'requests')}, p50 {link('0.00 s', 'kinds>0>p50_s')}; "
                   f"RSS {link('9.9×', 'server>end>rss_gb / server>start>rss_gb')}, "
                   f"{link('no', 'met')}.\n")
    assert len(figures.stale(doc)) == 4
    assert figures.fill(doc) == 4
    assert doc.read_text() == (f"{link('2748 requests', 'requests')}, p50 "
                               f"{link('4.33 s', 'kinds>0>p50_s')}; RSS "
                               f"{link('1.1×', 'server>end>rss_gb / server>start>rss_gb')}, "
                               f"{link('yes', 'met')}.\n")
    assert figures.stale(doc) == [] and figures.fill(doc) == 0
    doc.write_text(link("2,000 requests", "requests"))  # a thousands comma stays one
    figures.fill(doc)
    assert "[2,748 requests]" in doc.read_text()


def test_a_figure_typed_by_hand_is_found(doc, capsys):
    doc.write_text(f"Memory grew {link('1.20×', 'server>end>rss_gb / server>start>rss_gb')}.\n")
    assert figures.main(["--check", str(doc)]) == 1
    assert "docs/page.md:1: [1.20×] but ../benchmarks/results/run.json says [1.08×]" in (
        capsys.readouterr().out)
    assert figures.main([str(doc)]) == 0 and figures.main(["--check", str(doc)]) == 0


def test_a_key_or_file_that_is_not_there_is_named(doc):
    doc.write_text(link("3 s", "server>middle>rss_gb") + "\n\n"
                   + '[3 s](../benchmarks/results/gone.json "requests")\n')
    problems = figures.stale(doc)
    assert "page.md:1" in problems[0] and "'server>middle>rss_gb' ('middle' missing)" in problems[0]
    assert "page.md:3: no results file ../benchmarks/results/gone.json" in problems[1]
    with pytest.raises(figures.FigureError, match="page.md:1: .* has no 'server>middle>rss_gb'"):
        figures.fill(doc)


def test_a_figure_may_be_shown_in_another_unit(doc):
    doc.write_text(link("0 s", "kinds>0>p50_s / 1000") + " " + link("0 GB", "requests / 1024"))
    figures.fill(doc)
    assert "[0.004 s]" not in doc.read_text()  # the decimals shown are kept: none
    doc.write_text(link("0.000 s", "kinds>0>p50_s / 1000") + " "
                   + link("0.0 GB", "requests / 1024"))
    figures.fill(doc)
    assert "[0.004 s]" in doc.read_text() and "[2.7 GB]" in doc.read_text()
