"""The README's result tables are summarize's, to the last digit (one rounding path)."""

from conftest import REPO


def test_the_readme_holds_every_table_summarize_wrote():
    readme = (REPO / "README.md").read_text()
    tables = (REPO / "plots" / "summary.md").read_text().strip().split("\n\n")
    assert len(tables) == 2  # The recipes' accuracies, the reference recipe's speed.
    for table in tables:
        assert table in readme
