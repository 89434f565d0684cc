"""Snakemake's HTML report: every table and figure of the profile with its caption, opened in a
real headless browser (Debian's chromium) that clicks through to each result and shows it."""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

from conftest import REPO, project_files, tiny_params
from mtlpareto import pipeline
from mtlpareto.config import load_profile
from mtlpareto.metrics.table_html import markdown_table_html

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--virtual-time-budget=8000",
]


class _Cells(HTMLParser):
    """Text of every th/td cell, row by row, and the h3 and p texts."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.texts: list[str] = []
        self._cell: list[str] | None = None
        self._text: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        elif tag in ("th", "td"):
            self._cell = []
        elif tag in ("h3", "p"):
            self._text = []

    def handle_endtag(self, tag):
        if tag in ("th", "td"):
            self.rows[-1].append("".join(self._cell))
            self._cell = None
        elif tag in ("h3", "p"):
            self.texts.append("".join(self._text))
            self._text = None

    def handle_data(self, data):
        for part in (self._cell, self._text):
            if part is not None:
                part.append(data)


def test_table_html_has_the_markdown_cells():
    markdown = (
        "### multimnist: accuracy (quick profile)\n\n"
        "| Method | left accuracy [%] ↑ | seeds |\n|---|---|---|\n"
        "| Single task | 68.50 ± 7.02 | 3 |\n| <MGDA> & co | – | 2 |\n\n"
        "Mean ± sample standard deviation\nover the seeds.\n\nNo paper column: none.\n"
    )
    parsed = _Cells()
    parsed.feed(markdown_table_html(markdown))
    assert parsed.rows == [["Method", "left accuracy [%] ↑", "seeds"], ["Single task", "68.50 ± 7.02", "3"], ["<MGDA> & co", "–", "2"]]
    assert parsed.texts == ["multimnist: accuracy (quick profile)", "Mean ± sample standard deviation over the seeds.", "No paper column: none."]
    with pytest.raises(ValueError, match="header separator"):
        markdown_table_html("| a | b |\n| 1 | 2 |\n")


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    pytest.skip("no headless browser: chromium is not installed (Debian: apt-get install -y chromium)")


def _snakemake(cwd: Path, env: dict, *args: str) -> str:
    res = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, f"{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return res.stdout + res.stderr


def _clicking(report: str, *steps: str) -> str:
    """The report with a script that clicks, in order, the links named `steps` ("eye": the
    first result's view button, "info": its description, "css:SELECTOR": that element)."""
    selectors = {"eye": 'a[iconname="eye"]', "info": 'a[iconname="information-circle"]'}
    calls = []
    for i, step in enumerate(steps):
        if step in selectors or step.startswith("css:"):
            find = f'document.querySelector({selectors.get(step, step[4:])!r})'
        else:
            find = f'[...document.querySelectorAll("a")].find(a => a.textContent.trim() === {step!r})'
        calls.append(f"setTimeout(() => {{ const a = {find}; if (a) a.click(); else document.title = 'missing ' + {step!r}; }}, {300 + 400 * i});")
    head, tail = report.rsplit("</body>", 1)
    return head + "<script>\n" + "\n".join(calls) + "\n</script>\n</body>" + tail


def _data_uri_bytes(uri: str) -> bytes:
    return base64.b64decode(uri.split("base64,", 1)[1])


@pytest.fixture(scope="module")
def tiny_report(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    (root / "params.yaml").write_text(yaml.safe_dump(tiny_params(methods={"uniform": {}, "mgda_ub": {}})))
    project_files(root)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    _snakemake(root, env, "--cores", "2")  # a bare `snakemake`: the main job is the default target
    # As the README writes it: no target, so the main job's tables and figures.
    log = _snakemake(root, env, "--report", "report.html")
    assert "Report created" in log
    return root


@pytest.mark.slow
def test_report_holds_every_table_and_figure_with_captions(tiny_report):
    report = (tiny_report / "report.html").read_text()
    prof = load_profile(tiny_report / "params.yaml")
    shown = [p for p in pipeline.report_targets(prof) if not p.endswith((".md", ".pdf"))]
    assert shown and all(p.endswith((".csv", ".html", ".png")) for p in shown)
    results = re.search(r'<script id="results">\s*var results = (.*?)</script>', report, re.S)
    assert results, "no results in the report"
    for path in shown:
        assert f'"{path}"' in results.group(1), path
        # each file embedded byte for byte
        uri = re.search(rf'"{re.escape(path)}": \{{.*?"data_uri": "(data:[^"]+)"', results.group(1), re.S)
        assert uri and _data_uri_bytes(uri.group(1)) == (tiny_report / path).read_bytes(), path


@pytest.mark.slow
def test_report_renders_figures_and_tables_in_a_browser(tiny_report, tmp_path):
    chromium = _chromium()
    report = (tiny_report / "report.html").read_text()
    profile_dir = tmp_path / "chromium-profile"

    def browse(page_name: str, html: str, *extra: str) -> subprocess.CompletedProcess:
        page = tmp_path / page_name
        page.write_text(html)
        res = subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile_dir}", *extra, page.as_uri()], capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stderr[-2000:]
        return res

    # The landing page: the app ran (React drew the menu) and shows the workflow description.
    dom = browse("report.html", report, "--dump-dom").stdout
    assert "Results" in dom and "every table and figure of the" in dom

    figure = pipeline.figure_paths(load_profile(tiny_report / "params.yaml"), "multimnist", "tradeoff")[0]
    dom = browse("figure.html", _clicking(report, "Results", "multimnist", "figures", "eye", "info"), "--dump-dom").stdout
    assert "<title>missing" not in dom
    shown = re.findall(r'<img src="(data:image/png[^"]+)"', dom)
    assert any(_data_uri_bytes(uri) == (tiny_report / figure).read_bytes() for uri in shown), "the figure is not displayed"
    assert "Reproduces Sener &amp; Koltun 2018, Fig. 3" in dom  # its caption, rendered
    assert "up and right is better" in dom

    # The screenshot of that view is the figure, not a blank page: the content area right of the
    # menu holds many colours and plenty of non-white pixels.
    shot = tmp_path / "figure.png"
    browse("figure.html", _clicking(report, "Results", "multimnist", "figures", "eye"), f"--screenshot={shot}", "--window-size=1400,900")
    import numpy as np
    from PIL import Image

    image = Image.open(shot).convert("RGB")
    content = np.asarray(image)[:, image.width // 2 :].reshape(-1, 3)
    colours = len(np.unique(content, axis=0))
    non_white = float((content.min(axis=1) < 235).mean())
    assert colours > 50 and non_white > 0.03, (colours, non_white)

    # The table: the HTML rendering in a frame, its caption naming the paper's table.
    table_html = pipeline.table_paths(load_profile(tiny_report / "params.yaml"), "multimnist", "accuracy")[2]
    dom = browse("table.html", _clicking(report, "Results", "multimnist", "tables", "info"), "--dump-dom").stdout
    assert "Reproduces Sener &amp; Koltun 2018, Table 3" in dom
    dom = browse("table-view.html", _clicking(report, "Results", "multimnist", "tables", "css:#toggle-format-html", "eye"), "--dump-dom").stdout
    frames = re.findall(r'<iframe src="(data:text/html[^"]+)"', dom)
    assert any(_data_uri_bytes(uri) == (tiny_report / table_html).read_bytes() for uri in frames), "the table is not displayed"
