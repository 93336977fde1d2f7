"""One spelling of the trial's words across code, tests and docs.

The project writes "enrollment" (the protocol's and the FDA's spelling). The only other
spelling allowed is the HTTP path first published with it, kept as a deprecated alias.
"""

from __future__ import annotations

from tests.docs.test_self_contained import ROOT, tracked_files

OTHER_SPELLING = "enrol" + "ment"  # split, so that this file does not find itself
ALLOWED = {
    (
        "services/enrollment/api.py",
        f'@router.command("/subjects/{{subject_id}}/{OTHER_SPELLING}", "enrol", '
        'tags=["subjects"], deprecated=True)',
    ),
}


def test_enrollment_is_spelled_one_way() -> None:
    found = []
    for relative in tracked_files():
        path = ROOT / relative
        if not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if OTHER_SPELLING in line.lower() and (relative, line.strip()) not in ALLOWED:
                if relative.startswith("docs/openapi/"):
                    continue  # generated from the code; the alias path appears there
                found.append(f"{relative}:{number}: {line.strip()}")
    assert not found, "spell it 'enrollment':\n" + "\n".join(found)
