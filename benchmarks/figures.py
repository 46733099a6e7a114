"""python -m benchmarks.figures [--check] [FILE ...]: the figures in the docs, filled in from the
results files they cite, so that none is typed by hand and none drifts from its run.

A figure is a Markdown link to a results file whose title names the value in it:

    [2,748 requests](../benchmarks/results/soak-vm-xeon.json "requests")
    [1.06×](../benchmarks/results/soak-vm-xeon.json "server>end>rss_gb / server>start>rss_gb")

The title is a path of keys (">" between them; a number indexes a list), or two such paths
with " / " between them for their ratio, or a path " / " a number (" / 1000": ms shown as s).
The first number in the link's text is replaced by the value, rounded to as many decimals as
the text shows (with a thousands comma where it shows one); the rest of the text (units, ×)
is kept. A value that is not a number is the whole text. --check changes nothing and exits
1 where a figure differs from its file or names a file or key that is not there (the suite
runs it on README.md and docs/). Default files: README.md and docs/*.md. Written by hand: no
documentation tool fills figures from JSON."""

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# [text](path/to/results/x.json "title"): a link to a results file, with a title.
FIGURE = re.compile(r'\[(?P<text>[^\]\n]+)\]\((?P<path>[^)\s]*results/[^)\s]+\.json) '
                    r'"(?P<title>[^"\n]+)"\)')
NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


class FigureError(ValueError):
    """A figure names a results file or a key that is not there, or has no number to fill."""


@dataclass(frozen=True)
class Figure:
    doc: Path
    line: int
    text: str
    path: str  # as written, relative to the doc
    title: str

    def value(self):
        """What the title names in the results file."""
        file = (self.doc.parent / self.path).resolve()
        if not file.is_file():
            raise FigureError(f"{self.where}: no results file {self.path}")
        data = json.loads(file.read_text())
        paths = self.title.split(" / ")
        if len(paths) > 2:
            raise FigureError(f"{self.where}: at most one ' / ' in {self.title!r}")
        values = [self._lookup(data, path) for path in paths[:1]]
        values += [_number(path) if _number(path) is not None else self._lookup(data, path)
                   for path in paths[1:]]
        if len(values) == 1:
            return values[0]
        if not all(isinstance(v, int | float) for v in values) or not values[1]:
            raise FigureError(f"{self.where}: {self.title!r} is not a ratio of two numbers")
        return values[0] / values[1]

    def _lookup(self, data, path: str):
        for key in path.split(">"):
            try:
                data = data[int(key)] if isinstance(data, list) else data[key]
            except (KeyError, IndexError, ValueError, TypeError):
                raise FigureError(f"{self.where}: {self.path} has no {path!r} ({key!r} missing)"
                                  ) from None
        return data

    def filled(self) -> str:
        """The link's text with the value in it."""
        value = self.value()
        if isinstance(value, bool) or not isinstance(value, int | float):
            return str(value)
        number = NUMBER.search(self.text)
        if number is None:
            raise FigureError(f"{self.where}: no number in [{self.text}] to fill")
        shown = number.group()
        decimals = len(shown.partition(".")[2])
        comma = "," if "," in shown else ""
        return (self.text[:number.start()] + f"{value:{comma}.{decimals}f}"
                + self.text[number.end():])

    @property
    def where(self) -> str:
        return f"{_shown(self.doc)}:{self.line}"


def _number(text: str) -> float | None:
    """A divisor written as a number (1000: ms shown in s), else None."""
    try:
        return float(text)
    except ValueError:
        return None


def _shown(path: Path) -> Path:
    """The path from the repository's root, where it is inside it."""
    try:
        return path.relative_to(ROOT)
    except ValueError:
        return path


def figures(doc: Path) -> list[Figure]:
    text = doc.read_text()
    return [Figure(doc, text.count("\n", 0, match.start()) + 1, match["text"], match["path"],
                   match["title"]) for match in FIGURE.finditer(text)]


def fill(doc: Path) -> int:
    """Rewrite the doc's figures from their files; returns how many changed."""
    changed = 0

    def replace(match: re.Match) -> str:
        nonlocal changed
        line = text.count("\n", 0, match.start()) + 1
        figure = Figure(doc, line, match["text"], match["path"], match["title"])
        new = figure.filled()
        changed += new != figure.text
        return f'[{new}]({figure.path} "{figure.title}")'

    text = doc.read_text()
    doc.write_text(FIGURE.sub(replace, text))
    return changed


def stale(doc: Path) -> list[str]:
    """Each figure of the doc that differs from its file or cannot be read, as a message."""
    problems = []
    for figure in figures(doc):
        try:
            new = figure.filled()
        except FigureError as e:
            problems.append(str(e))
            continue
        if new != figure.text:
            problems.append(f"{figure.where}: [{figure.text}] but {figure.path} says [{new}]")
    return problems


def cited(docs: list[Path]) -> set[Path]:
    """The results files the docs' figures cite."""
    return {(figure.doc.parent / figure.path).resolve() for doc in docs
            for figure in figures(doc)}


def latest_per_kind(results: Path) -> set[Path]:
    """The latest run (by its date; all of that date) of each benchmark on each CPU: kept in
    results/ whether the docs cite it or not, so that the newest figures of every machine stay
    at hand."""
    runs: dict[tuple, list[tuple[str, Path]]] = {}
    for path in results.glob("*.json"):
        data = json.loads(path.read_text())
        kind = (data.get("benchmark", path.stem), data.get("cpu", {}).get("name"))
        runs.setdefault(kind, []).append((data.get("date", ""), path.resolve()))
    latest = set()
    for found in runs.values():
        newest = max(date for date, _ in found)
        latest |= {path for date, path in found if date == newest}
    return latest


def default_docs() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.figures", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="*", type=Path, help="default: README.md and docs/*.md")
    parser.add_argument("--check", action="store_true",
                        help="change nothing; exit 1 where a figure is not its file's")
    args = parser.parse_args(argv)
    docs = [path.resolve() for path in args.files] or default_docs()
    if args.check:
        problems = [problem for doc in docs for problem in stale(doc)]
        print("\n".join(problems) or f"{sum(len(figures(d)) for d in docs)} figures, all "
                                     f"as their results files say")
        return 1 if problems else 0
    try:
        changed = {doc: fill(doc) for doc in docs}
    except FigureError as e:
        print(e, file=sys.stderr)
        return 1
    for doc, count in changed.items():
        if count:
            print(f"{_shown(doc)}: {count} figures filled in")
    return 0


if __name__ == "__main__":
    sys.exit(main())
