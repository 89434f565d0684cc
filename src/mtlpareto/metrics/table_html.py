"""An HTML page of a rendered table, for Snakemake's report (which shows HTML and images, and
offers other files only for download).

It renders the Markdown that `tables.to_markdown` writes, so both show the same cells: a
`### title`, one pipe table (header, separator, rows) and notes in plain paragraphs.
"""

from __future__ import annotations

import html

STYLE = (
    "body{font-family:sans-serif;margin:1em}"
    "table{border-collapse:collapse}"
    "th,td{border:1px solid #bbb;padding:.25em .6em;text-align:right}"
    "th:first-child,td:first-child{text-align:left}"
    "thead th{background:#eee}"
    "p{max-width:60em}"
)


def _cells(line: str) -> list[str]:
    return [html.escape(c.strip()) for c in line.strip().strip("|").split("|")]


def markdown_table_html(markdown: str) -> str:
    """A standalone HTML document of `markdown` (the subset `to_markdown` writes)."""
    lines = markdown.splitlines()
    body: list[str] = []
    title = ""
    paragraph: list[str] = []

    def close_paragraph() -> None:
        if paragraph:
            body.append(f"<p>{html.escape(' '.join(paragraph))}</p>")
            paragraph.clear()

    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("### "):
            close_paragraph()
            title = line[4:].strip()
            body.append(f"<h3>{html.escape(title)}</h3>")
        elif line.startswith("|"):
            close_paragraph()
            rows = []
            while i < len(lines) and lines[i].startswith("|"):
                rows.append(lines[i])
                i += 1
            if len(rows) < 2 or set(rows[1].replace("|", "").strip()) - set("-: "):
                raise ValueError(f"not a Markdown table (no header separator): {rows[:2]}")
            head = "".join(f"<th>{c}</th>" for c in _cells(rows[0]))
            data = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in _cells(r)) + "</tr>" for r in rows[2:])
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{data}</tbody></table>")
            continue
        elif line.strip():
            paragraph.append(line.strip())
        else:
            close_paragraph()
        i += 1
    close_paragraph()
    return (
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{STYLE}</style></head>\n<body>\n" + "\n".join(body) + "\n</body></html>\n"
    )
