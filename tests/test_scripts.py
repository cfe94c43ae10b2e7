"""scripts/test.sh, the README's test command: it says what it installs, shows pip's
progress, and installs what the README says it does."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_test_script_announces_its_steps_and_installs_what_the_readme_says():
    script = (ROOT / "scripts" / "test.sh").read_text()
    readme = (ROOT / "README.md").read_text()
    quick = readme[readme.index("## Quickstart"):readme.index("## Recognise")]
    big = [line for line in script.splitlines() if "pip install" in line and "-e" in line]
    assert len(big) == 1
    assert " -q" not in big[0], "the multi-GB install must show pip's progress"
    extras = re.search(r"\.\[([\w,]+)\]", big[0]).group(1).split(",")
    for extra in extras:
        assert f"`{extra}`" in quick, f"the README does not say the tests install {extra}"
    # every install and the test run are announced on a line of their own first
    lines = script.splitlines()
    for i, line in enumerate(lines):
        if re.search(r"(pip|apt-get) install|venv \.venv|pytest|ruff check", line) \
                and not line.lstrip().startswith(("#", "step ")):
            before = [x for x in lines[max(0, i - 3):i] if x.strip().startswith("step ")]
            assert before, f"no announcement before: {line.strip()}"
