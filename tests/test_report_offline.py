"""The report works offline: equations are MathML written at build time (no MathJax, no
network), checked in headless Chromium with the network off where Chromium is installed."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from cmnlib import report_page

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)


def test_tex_becomes_mathml_outside_code_only():
    text, failed = report_page.markdown_math_to_mathml(
        "Eq. $$a = \\frac{b}{c}$$ with $d \\times d$, `$not math$`, a price of \\$5, and\n```\n$x$\n```")
    assert failed == []
    assert text.count("<math") == 2 and 'display="block"' in text and 'display="inline"' in text
    assert "`$not math$`" in text and "\\$5" in text and "```\n$x$\n```" in text
    assert "<mfrac>" in text  # \\frac converted, not copied
    _, failed = report_page.markdown_math_to_mathml("$\\notacommand{x}$ and $y$")
    assert failed in ([], ["\\notacommand{x}"])  # whatever the library accepts, nothing raises


def test_every_notebook_page_has_its_equations_as_mathml_and_fetches_nothing(tmp_path):
    for notebook in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        page = tmp_path / f"{notebook.stem}.html"
        assert report_page.export_html(notebook, page) == [], notebook.name  # every formula converted
        html = page.read_text()
        assert not re.search(r"<script[^>]*\bsrc=\"https?://", html), notebook.name
        assert "cdnjs" not in html and "MathJax.Hub" not in html
    assert (tmp_path / "02_self_attention.html").read_text().count("<math") >= 20  # eq. (1)-(3) and their text


def _rendered_in_chromium(folder: Path, page: str) -> dict:
    """Open ``page`` in headless Chromium with every network request refused; return how
    many MathML elements it has and how many Chromium laid out (non-zero size, display
    'math'), measured by a script in a wrapper page."""
    (folder / "check.html").write_text(f"""<!doctype html><html><body><pre id="result">pending</pre>
<iframe id="page" src="{page}" style="width:1200px;height:800px"></iframe>
<script>
document.getElementById("page").addEventListener("load", () => {{
  const doc = document.getElementById("page").contentDocument;
  const maths = [...doc.querySelectorAll("math")];
  const laid = maths.filter(m => getComputedStyle(m).display.includes("math")
                                  && m.getBoundingClientRect().width > 0 && m.getBoundingClientRect().height > 0);
  document.getElementById("result").textContent = JSON.stringify(
      {{math: maths.length, rendered: laid.length, title: doc.title}});
}});
</script></body></html>""")
    result = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files",
                             "--proxy-server=127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND",
                             "--virtual-time-budget=5000", "--dump-dom", (folder / "check.html").as_uri()],
                            capture_output=True, text=True, timeout=120)
    found = re.search(r'<pre id="result">([^<]*)</pre>', result.stdout)
    assert found, result.stderr[-2000:]
    return json.loads(found.group(1).replace("&quot;", '"'))


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on this machine (.ci/run installs Debian's chromium "
                                             "package; apt-get install chromium)")
def test_the_report_renders_its_equations_in_chromium_with_the_network_off(tmp_path):
    report_page.export_html(ROOT / "notebooks" / "02_self_attention.ipynb", tmp_path / "notebook.html")
    shown = _rendered_in_chromium(tmp_path, "notebook.html")
    assert shown["math"] >= 20 and shown["rendered"] == shown["math"], shown
    # the index page: loads offline too (its title is read from the loaded document)
    (tmp_path / "report" / "figures").mkdir(parents=True)
    manifest = {"notebooks": [], "data_sources": {}, "versions": {}, "profile": "quick", "total_seconds": 1.0,
                "git_commit": None}
    index = report_page.write_index(tmp_path / "report", manifest)
    assert not re.search(r"<(?:script|link)[^>]*(?:src|href)=\"https?://", index.read_text())
    shutil.copy(index, tmp_path / "index.html")
    assert _rendered_in_chromium(tmp_path, "index.html")["title"]
