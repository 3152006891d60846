"""Small HTML building blocks shared by report.html and the compare matrix.

Every value from results.json goes through ``esc``: case messages and transcripts contain whatever
the broker sent.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from importlib import resources

from .model import NOT_COVERED


def esc(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def asset(name: str) -> str:
    return resources.files("conformance.reports").joinpath(name).read_text(encoding="utf-8")


def vclass(verdict: str) -> str:
    """CSS class carrying a verdict's colours ('NOT COVERED' -> v-NOT-COVERED)."""
    return "v-" + (verdict or "NONE").replace(" ", "-")


def vkey(verdict: str) -> str:
    """Value used in data-verdict attributes and filter checkboxes."""
    return (verdict or NOT_COVERED).replace(" ", "-")


def badge(verdict: str, text: str | None = None, title: str = "") -> str:
    tip = f' title="{esc(title)}"' if title else ""
    return f'<span class="badge {vclass(verdict)}"{tip}>{esc(text if text is not None else verdict)}</span>'


def checkboxes(name: str, values: Iterable[tuple[str, str]], legend: str) -> str:
    boxes = "".join(
        f'<label><input type="checkbox" name="{esc(name)}" value="{esc(value)}" checked> {label}</label>'
        for value, label in values
    )
    return f"<fieldset><legend>{esc(legend)}</legend>{boxes}</fieldset>"


def select(ident: str, options: Iterable[tuple[str, str]], legend: str, all_label: str = "all") -> str:
    opts = f'<option value="">{esc(all_label)}</option>' + "".join(
        f'<option value="{esc(value)}">{esc(label)}</option>' for value, label in options
    )
    return f'<label>{esc(legend)} <select id="{esc(ident)}">{opts}</select></label>'


def page(title: str, header: str, body: str, footer: str = "") -> str:
    """A complete, self-contained document: CSS and JS inline, nothing fetched."""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title>\n<style>\n{asset('report.css')}</style>\n</head>\n<body>\n"
        f'<header class="top"><div class="inner">{header}</div></header>\n'
        f"<main>\n{body}\n<footer>{footer}</footer>\n</main>\n"
        f"<script>\n{asset('report.js')}</script>\n</body></html>\n"
    )
