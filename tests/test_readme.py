"""The README is the operator's first page: its two commands and its config table stay true."""

from __future__ import annotations

import re
from pathlib import Path

from freshlm.settings import markdown_table

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text()


def test_readme_opens_with_the_two_commands():
    first_block = re.search(r"```sh\n(.*?)```", README, re.S).group(1)
    assert first_block.splitlines()[0].startswith("make demo")
    assert first_block.splitlines()[1].startswith("make test")
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"^demo:", makefile, re.M) and re.search(r"^test:", makefile, re.M)


def test_configuration_table_matches_the_settings_module():
    block = re.search(
        r"<!-- settings-table:start.*?-->\n(.*?)<!-- settings-table:end", README, re.S
    )
    assert block, "README lost its settings-table markers"
    assert block.group(1).strip() == markdown_table(), (
        "README's configuration table is stale: paste `python -m freshlm.settings --markdown`"
    )


def test_ci_runs_make_test_and_nothing_else():
    script = (REPO / ".ci" / "run").read_text()
    commands = [ln for ln in script.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    assert commands[-1].strip() in {"exec make test", "make test"}
    assert all(c.startswith(("set ", "cd ")) for c in commands[:-1])
