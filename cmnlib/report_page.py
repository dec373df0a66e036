"""The report's pages (:func:`cmnlib.reproduce.reproduce` writes them): each executed
notebook as one self-contained HTML page, and the front page, ``index.html``.

A page must open offline, as a reader may keep the report on a laptop: nbconvert's "lab"
template loads MathJax, require.js and Mermaid from the network, so the equations of the
Markdown cells are converted to MathML at build time (latex2mathml; browsers render it
without a script) and the scripts that fetch are left out.
"""
from __future__ import annotations

import html
import re
from pathlib import Path

import latex2mathml.converter
import nbformat
import pandas as pd
from nbconvert import HTMLExporter

from .atomic import write_text

# Math in Markdown cells: $$display$$ and $inline$ (not inside `code`, not an escaped \$)
_CODE = re.compile(r"(```.*?```|`[^`\n]*`)", re.S)
_DISPLAY_MATH = re.compile(r"\$\$(.+?)\$\$", re.S)
_INLINE_MATH = re.compile(r"(?<![\\$])\$(?![\s$])([^$\n]+?)(?<![\s\\])\$(?!\d)")
# What in nbconvert's template fetches from the network: the MathJax loader and its
# configuration, require.js (for widgets, which these notebooks have none of) and the
# Mermaid module (for diagrams, likewise). A report page needs none of them.
_NETWORK_SCRIPTS = re.compile(r"<script[^>]*(?:mathjax|MathJax)[^>]*>.*?</script>"
                              r"|<script[^>]*\bsrc=\"https?://[^\"]*\"[^>]*>\s*</script>"
                              r"|<script type=\"module\">(?:(?!</script>).)*?https?://"
                              r"(?:(?!</script>).)*</script>", re.S)


def markdown_math_to_mathml(markdown: str) -> tuple[str, list[str]]:
    """``markdown`` with each TeX formula replaced by MathML (latex2mathml), which browsers
    render without a network or a script; the formulas it could not convert stay as TeX and
    are returned (the report's equations then show their source, not an error)."""
    failed = []

    def convert(match: re.Match, display: str) -> str:
        tex = match.group(1).strip()
        try:
            return latex2mathml.converter.convert(tex, display=display)
        except Exception:  # the library raises several kinds for TeX it does not know
            failed.append(tex)
            return match.group(0)

    parts = _CODE.split(markdown)
    for i in range(0, len(parts), 2):  # the even parts are outside code
        text = _DISPLAY_MATH.sub(lambda m: convert(m, "block"), parts[i])
        parts[i] = _INLINE_MATH.sub(lambda m: convert(m, "inline"), text)
    return "".join(parts), failed


def export_html(notebook_path: Path, html_path: Path) -> list[str]:
    """The executed notebook as one self-contained HTML page: equations rendered as MathML
    at build time, so the page needs no network (no MathJax). Returns the formulas left as
    TeX."""
    notebook = nbformat.read(notebook_path, as_version=4)
    failed = []
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            cell.source, missed = markdown_math_to_mathml(cell.source)
            failed += missed
    body, _ = HTMLExporter(template_name="lab").from_notebook_node(notebook)
    write_text(html_path, _NETWORK_SCRIPTS.sub("", body))
    return failed


# --------------------------------------------------------------------------------------
# index.html
# --------------------------------------------------------------------------------------

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;
color:#222;padding:0 1rem}h1{margin-bottom:.2rem}h2{border-bottom:1px solid #ddd;padding-bottom:.2rem;
margin-top:2rem}table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}td,th{border:1px solid #ddd;
padding:.25rem .5rem;text-align:right}th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}
.ok{color:#1a7f37}.failed{color:#cf222e}.skipped{color:#9a6700}.meta{color:#555;font-size:.85rem}
.figs{display:flex;flex-wrap:wrap;gap:.8rem}.figs a{display:block;width:250px;text-align:center;
font-size:.75rem;color:#444;text-decoration:none}.figs img{width:250px;border:1px solid #ddd}
.prose td{text-align:left;vertical-align:top}
.note{background:#fff8c5;border:1px solid #d4a72c;padding:.5rem .8rem;border-radius:4px}
"""


def write_index(folder: Path, manifest: dict) -> Path:
    """index.html: the verdict on the paper (when notebook 06 wrote one), then the data,
    the notebooks with status and time, tables inline, figures as thumbnails."""
    rows = "".join(
        f"<tr><td>{html.escape(r['notebook'])}</td><td class='{r['status']}'>{r['status']}</td>"
        f"<td>{r.get('seconds', '')}</td><td><a href='html/{r['notebook']}.html'>HTML</a> · "
        f"<a href='notebooks/{r['notebook']}.ipynb'>ipynb</a></td>"
        f"<td>{html.escape(r.get('error', r.get('reason', '')))}</td></tr>" for r in manifest["notebooks"])
    sources = "".join(f"<li><b>{d}</b>: {html.escape(s.get('label', s.get('error', '')))}</li>"
                      for d, s in manifest["data_sources"].items())
    synthetic = any("SYNTHETIC" in s.get("label", "") for s in manifest["data_sources"].values())
    tables = []
    # the paper's Tables 1-2 first, then the claims audit, then the rest by name
    order = {"table": 0, "claims": 1}
    for csv in sorted((folder / "tables").glob("*.csv"),
                      key=lambda p: (next((v for k, v in order.items() if p.stem.startswith(k)), 2), p.stem)):
        fragment = csv.with_suffix(".html")
        if fragment.exists():  # the displayed table, formatted as in the notebook
            body = fragment.read_text()
        else:
            frame = pd.read_csv(csv)
            data = " / ".join(map(str, frame.pop("data").unique())) if "data" in frame else ""
            body = (f"<p class='meta'>data: {html.escape(data)}</p>" if data else "") + \
                frame.to_html(index=False, na_rep="", border=0, float_format=lambda x: f"{x:.3g}")
        tables.append(f"<h3>{html.escape(csv.stem)}</h3>{body}"
                      f"<p class='meta'><a href='tables/{csv.name}'>CSV</a> · "
                      f"<a href='tables/{csv.stem}.md'>Markdown</a> · <a href='tables/{csv.stem}.tex'>LaTeX</a></p>")
    verdict_file = folder / "tables" / "verdict.html"
    verdict = (f"<h2>What this companion concludes about the paper</h2>{verdict_file.read_text()}"
               f"<p class='meta'>From notebook 06's claims audit (<a href='tables/verdict.md'>Markdown</a>); "
               f"the data behind each finding is named in it.</p>") if verdict_file.exists() else ""
    figures = "".join(f"<a href='figures/{p.name}'><img src='figures/{p.name}' loading='lazy'>"
                      f"<br>{html.escape(p.stem)}</a>" for p in sorted((folder / "figures").glob("*.png")))
    versions = ", ".join(f"{k} {v}" for k, v in manifest["versions"].items() if v and k != "platform")
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>CMN companion report</title>
<style>{_STYLE}</style></head><body>
<h1>CMN paper companion: report</h1>
<p class="meta">profile <b>{manifest['profile']}</b> · {manifest['total_seconds']:.0f} s ·
commit {html.escape(str(manifest['git_commit']))} · {html.escape(versions)}</p>
{"<p class='note'>These numbers come from the <b>synthetic stand-in</b>, not from the real "
 "benchmarks; they are not a reproduction of the paper's results on real data.</p>" if synthetic else ""}
{verdict}
<h2>Data</h2><ul>{sources}</ul>
<h2>Notebooks</h2><table><tr><th>notebook</th><th>status</th><th>seconds</th><th>open</th><th>error or reason</th></tr>
{rows}</table>
<h2>Tables</h2>{''.join(tables) or '<p>none</p>'}
<h2>Figures</h2><div class="figs">{figures or '<p>none</p>'}</div>
<p class="meta"><a href="manifest.json">manifest.json</a></p>
</body></html>"""
    return write_text(folder / "index.html", page)
