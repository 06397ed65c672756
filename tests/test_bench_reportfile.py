"""bench/reportfile.py: a benchmark rewriting its report keeps the hand-written accounts
(pure: no stack)."""
from __future__ import annotations

from bench.reportfile import accounts, write_markdown

OLD = """# Delivery benchmarks

## Account: run 6, read this first
Run 6 held 3000 viewers.

### Run 7
Both ceilings.

## P1 - generated
old figure 0.75x

## Account: earlier runs
### Run 5
P7 1250.
"""


def test_a_rewrite_keeps_every_account_and_replaces_the_figures(tmp_path):
    report = tmp_path / "delivery.md"
    report.write_text(OLD)
    write_markdown(report, "# Delivery benchmarks\n\n## P1 - generated\nnew figure 0.89x\n")
    text = report.read_text()
    assert "new figure 0.89x" in text and "old figure" not in text
    assert text.index("## P1") < text.index("## Account: run 6") < text.index("## Account: earlier runs")
    assert "Run 6 held 3000 viewers.\n\n### Run 7\nBoth ceilings.\n" in text and "### Run 5\nP7 1250.\n" in text
    # A second rewrite keeps them once, not twice.
    write_markdown(report, "# Delivery benchmarks\n\n## P1 - generated\nnewer 0.9x\n")
    assert report.read_text().count("## Account") == 2 and accounts(report.read_text()) == accounts(text)


def test_a_first_report_is_just_the_generated_text(tmp_path):
    report = tmp_path / "new" / "ttff.md"
    write_markdown(report, "# P2\n\nfigures\n")
    assert report.read_text() == "# P2\n\nfigures\n"
