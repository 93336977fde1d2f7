"""A service process's start-up heap is left out of the garbage collector's walks.

Run in a process of its own: freezing the test runner's heap would change every later
test's collections."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROGRAM = """
import gc, json, weakref
from shared.web.runner import settle_heap

class Node:
    pass

def cycle():
    node = Node()
    node.self = node  # garbage only a collection finds
    return weakref.ref(node)

before = cycle()  # garbage made at start-up
kept = [Node() for _ in range(1000)]  # what the service keeps
settle_heap()
after = cycle()  # garbage made while serving
frozen = gc.get_freeze_count()
gc.collect()
print(json.dumps({"frozen": frozen, "before": before() is None, "after": after() is None}))
"""


def test_the_start_up_heap_is_frozen_and_its_garbage_collected_first() -> None:
    done = subprocess.run(  # noqa: S603 (our own program, run by this interpreter)
        [sys.executable, "-c", PROGRAM], cwd=ROOT, capture_output=True, text=True, check=True
    )
    found = json.loads(done.stdout)
    assert found["frozen"] > 1000  # the kept objects, and the modules' own, frozen
    assert found["before"], "start-up garbage was frozen instead of collected"
    assert found["after"], "garbage made after the freeze is no longer collected"
