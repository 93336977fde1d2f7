"""docs/integrating.md lists every topic and every event type a topic carries, in the
tables of the section of the contract module that defines it (no more, no fewer)."""

from __future__ import annotations

import re
from pathlib import Path

from shared.contract_docs.discovery import channels, contract_modules, defined_events

GUIDE = Path(__file__).resolve().parents[2] / "docs/integrating.md"
# "## Enrollment events (`shared/contracts/enrollment.py`)": a contract module's section
SECTION = re.compile(r"^## .*\(`shared/contracts/(\w+)\.py`\)$", re.MULTILINE)
ROW = re.compile(r"^\| `([A-Za-z]+\.v\d+)` \|", re.MULTILINE)
TOPIC_ROW = re.compile(r"^\| `(trialledger\.[\w.]+)` \|", re.MULTILINE)


def tabled_events(text: str) -> dict[str, list[str]]:
    """The event types in the table rows of each contract module's section, by module."""
    found: dict[str, list[str]] = {}
    headings = list(SECTION.finditer(text))
    for heading, following in zip(headings, [*headings[1:], None], strict=True):
        end = following.start() if following else text.find("\n## ", heading.end())
        body = text[heading.end() : end if end != -1 else len(text)]
        found[heading.group(1)] = ROW.findall(body)
    return found


def test_each_contract_modules_section_tables_exactly_the_events_it_defines() -> None:
    tabled = tabled_events(GUIDE.read_text())
    defined = {
        name: sorted(e.event_type for e in defined_events(module))
        for name, module in contract_modules().items()
    }
    assert sorted(tabled) == sorted(defined), "one section per shared/contracts module"
    for name, events in tabled.items():
        assert len(events) == len(set(events)), f"{name}: a type listed twice: {events}"
        missing = sorted(set(defined[name]) - set(events))
        extra = sorted(set(events) - set(defined[name]))
        assert not (missing or extra), f"{name} section: missing {missing}, extra {extra}"


def test_every_event_a_topic_carries_is_tabled() -> None:
    tabled = {e for events in tabled_events(GUIDE.read_text()).values() for e in events}
    for channel in channels():
        untabled = sorted(e.event_type for e in channel.events if e.event_type not in tabled)
        assert not untabled, f"{channel.topic} carries {untabled}, absent from the guide"


def test_the_topics_table_names_every_topic() -> None:
    topics_section = GUIDE.read_text().split("## Topics", 1)[1].split("\n## ", 1)[0]
    assert sorted(TOPIC_ROW.findall(topics_section)) == sorted(c.topic for c in channels())


def test_a_missing_or_extra_row_is_seen() -> None:
    text = GUIDE.read_text()
    without = text.replace("| `SubjectDied.v1` |", "| SubjectDied (removed) |")
    assert "SubjectDied.v1" not in tabled_events(without)["enrollment"]
    assert "SubjectDied.v1" in tabled_events(text)["enrollment"]
    extra = text.replace("| `SubjectDied.v1` |", "| `SubjectDied.v1` |\n| `Invented.v1` | x |")
    assert "Invented.v1" in tabled_events(extra)["enrollment"]
