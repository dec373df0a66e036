"""The committed notebooks' outputs read as tables, not as dataframe dumps: no table shows
pandas' default 0..n row numbers (a meaningful index, such as a named one, is fine)."""
from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from cmnlib.reporting import show

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))
ROW_HEADING = re.compile(r"<tr>\s*<th[^>]*>\s*([^<]*?)\s*</th>", re.S)


def default_index_tables(html: str) -> int:
    """How many tables in ``html`` start their body rows with the headings 0, 1, ..., n-1
    and name no index (an unnamed RangeIndex)."""
    count = 0
    for table in re.findall(r"<table.*?</table>", html, re.S):
        head, _, body = table.partition("<tbody>")
        headings = ROW_HEADING.findall(body)
        named = "index_name" in head or len(re.findall(r"<tr", head)) > 1
        if headings and headings == [str(i) for i in range(len(headings))] and not named:
            count += 1
    return count


def test_the_detector_tells_a_default_index_from_a_meaningful_one():
    frame = pd.DataFrame({"model": ["CMN", "MulT"], "F1": [69.2, 60.2]})
    assert default_index_tables(frame.to_html()) == 1
    assert default_index_tables(frame.style.to_html()) == 1
    assert default_index_tables(show(frame).to_html()) == 0
    assert default_index_tables(frame.set_index("model").to_html()) == 0
    assert default_index_tables(frame.rename_axis("seed").to_html()) == 0


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_cell_prints_a_dataframe_with_its_default_index(path):
    notebook = nbformat.read(path, as_version=4)
    offenders = []
    for index, cell in enumerate(notebook.cells):
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            if default_index_tables(output.get("data", {}).get("text/html", "")):
                offenders.append(f"cell {index}: {cell.source.strip().splitlines()[-1][:80]}")
    assert not offenders, f"{path.name}: " + "; ".join(offenders)


# What a reader sees of a notebook's outputs, in characters: 15,000 for every notebook, 17,000
# for 06 (both tables, the claims audit and the fusion findings), 20,000 for 08 (it shows the
# recorded long runs too). Detail goes to the report's tables.
OUTPUT_BUDGET = {"08_alignment": 20_000}
DEFAULT_BUDGET = 15_000


def visible_text(output) -> str:
    """An output as a reader sees it: its HTML with <style> and <script> blocks removed and
    tags stripped, else its Markdown, else its plain text; stream text as it is; images
    count nothing. Whitespace collapsed."""
    import html as html_lib
    if output.get("output_type") == "stream":
        text = output.get("text", "")
    else:
        data = output.get("data", {})
        if "text/html" in data:
            page = re.sub(r"(?is)<(style|script)\b.*?</\1>", " ", data["text/html"])
            text = html_lib.unescape(re.sub(r"<[^>]+>", " ", page))
        else:
            text = data.get("text/markdown", data.get("text/plain", ""))
    return " ".join(text.split())


def test_the_visible_size_is_measured_as_a_reader_sees_it():
    html = {"output_type": "display_data", "data": {
        "text/html": "<style>td {color: red}</style><table><tr><td>79.5</td><td>a &amp; b</td></tr></table>",
        "text/plain": "<Styler>"}}
    assert visible_text(html) == "79.5 a & b"
    assert visible_text({"output_type": "stream", "text": "two\n  words\n"}) == "two words"
    assert visible_text({"output_type": "display_data", "data": {"image/png": "AAAA", "text/plain": ""}}) == ""
    assert visible_text({"output_type": "execute_result", "data": {"text/markdown": "* **x**"}}) == "* **x**"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_each_notebook_stays_within_its_output_budget(path):
    cells = nbformat.read(path, as_version=4).cells
    sizes = {i: sum(len(visible_text(o)) for o in c.get("outputs", [])) for i, c in enumerate(cells)
             if c.cell_type == "code"}
    budget = OUTPUT_BUDGET.get(path.stem, DEFAULT_BUDGET)
    largest = sorted(sizes.items(), key=lambda kv: -kv[1])[:3]
    assert sum(sizes.values()) <= budget, f"{path.name}: {sum(sizes.values())} characters (largest cells {largest})"


def metric_keys() -> set[str]:
    """Every metric key of the registry (what a reader must never see in place of its name)."""
    from cmnlib import metrics
    return {m.key for family in metrics.FAMILIES.values() for m in family.metrics}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_output_shows_a_raw_metric_key(path):
    keys = metric_keys()
    assert {"acc2_has0", "macro_f1", "mae"} <= keys  # the registry is read, not an empty set
    raw = []
    for i, cell in enumerate(nbformat.read(path, as_version=4).cells):
        for output in cell.get("outputs", []):
            page = output.get("data", {}).get("text/html", "")
            headers = [h.strip() for h in re.findall(r"<th[^>]*>([^<]*)</th>", page)]
            text = visible_text(output)
            raw += [(i, h) for h in headers if h in keys or h.removesuffix(" %") in keys]
            raw += [(i, k) for k in keys if "_" in k and re.search(rf"\b{k}\b", text)]
    assert not raw, f"{path.name}: raw metric keys (cell, key): {raw}"


def figure_cells(cells) -> list[int]:
    """The indexes of the code cells whose outputs hold a figure (a PNG)."""
    return [i for i, c in enumerate(cells) if c.cell_type == "code"
            and any("image/png" in o.get("data", {}) for o in c.get("outputs", []))]


def uncaptioned(cells, reach: int = 3) -> list[int]:
    """Figure cells with no Markdown cell among the ``reach`` cells before them (a caption
    may serve a pair, such as an untrained map and its trained counterpart)."""
    return [i for i in figure_cells(cells)
            if not any(cells[j].cell_type == "markdown" for j in range(max(0, i - reach), i))]


def test_the_caption_rule_finds_a_figure_without_words_before_it():
    md, code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell
    figure = code("plot()", outputs=[nbformat.v4.new_output("display_data", data={"image/png": "AAAA"})])
    cells = [md("caption"), figure, code("x = 1"), code("y = 2"), code("z = 3"), figure]
    assert figure_cells(cells) == [1, 5] and uncaptioned(cells) == [5]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_figure_is_captioned_and_no_code_cell_is_empty(path):
    cells = nbformat.read(path, as_version=4).cells
    assert not uncaptioned(cells), f"{path.name}: figure cells without a caption before them: {uncaptioned(cells)}"
    empty = [i for i, c in enumerate(cells) if c.cell_type == "code" and not c.source.strip()]
    assert not empty, f"{path.name}: empty code cells {empty}"


def html_tables(cells):
    """(cell index, table HTML) for every HTML table in the outputs."""
    return [(i, t) for i, c in enumerate(cells) if c.cell_type == "code" for o in c.get("outputs", [])
            for t in re.findall(r"<table.*?</table>", o.get("data", {}).get("text/html", ""), re.S)]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_table_of_rates_says_percent_and_has_no_empty_cell(path):
    """A table showing a rate of the metric registry (Acc2, F1 ...) says "%" in its caption
    or a header; no data cell is empty (a missing value shows as a dash)."""
    from cmnlib import metrics
    rates = {m.label for family in metrics.FAMILIES.values() for m in family.metrics if m.percent}
    unitless, empty = [], []
    for i, table in html_tables(nbformat.read(path, as_version=4).cells):
        headers = [re.sub(r"<[^>]+>", "", h).strip() for h in re.findall(r"<th[^>]*>(.*?)</th>", table, re.S)]
        caption = " ".join(re.findall(r"<caption>(.*?)</caption>", table, re.S))
        if any(h == r or h.startswith((r + ":", r + " (")) for h in headers for r in rates) and not (
                "%" in caption or any("%" in h for h in headers)):
            unitless.append(i)
        empty += [i for cell in re.findall(r"<td[^>]*>(.*?)</td>", table, re.S) if not cell.strip()]
    assert not unitless, f"{path.name}: tables of rates without % (cells): {unitless}"
    assert not empty, f"{path.name}: empty table cells (cells): {sorted(set(empty))}"
