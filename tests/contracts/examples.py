"""The guides' runnable examples: each guide prints its example file verbatim, after a
marker naming the file, so that the example the tests run is the one readers copy."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def printed_in(guide: Path, example: Path) -> str:
    """The Python block ``guide`` prints after its marker for ``example``."""
    marker = f"<!-- the file {example.relative_to(ROOT)}, verbatim -->"
    text = guide.read_text()
    assert marker in text, f"{guide.name} must show {example.name} after: {marker}"
    shown = re.search(r"```python\n(.*?)```", text.split(marker, 1)[1], re.DOTALL)
    assert shown is not None, f"{guide.name} has no python block after: {marker}"
    return shown.group(1)
