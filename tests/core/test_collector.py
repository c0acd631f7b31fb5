"""A serving process settles its garbage collector before it serves (payment_core.server.settle_collector):
start-up's objects frozen out of the scans, collections less often. Run in a child interpreter, so that
this test process keeps Python's defaults."""

from __future__ import annotations

import json
import subprocess
import sys

from payment_core.server import COLLECTOR_THRESHOLDS

_CHILD = """
import gc, json
before = (gc.get_threshold(), gc.get_freeze_count())
from payment_core.api import create_app  # what a serving process has imported by then
from payment_core.server import settle_collector
settle_collector()
print(json.dumps({"before": before, "after": [gc.get_threshold(), gc.get_freeze_count()]}))
"""


def test_settling_freezes_what_start_up_made_and_collects_less_often() -> None:
    child = subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True, timeout=120, check=True)
    seen = json.loads(child.stdout)
    (thresholds_before, frozen_before), (thresholds_after, frozen_after) = seen["before"], seen["after"]
    assert thresholds_before == [700, 10, 10] and frozen_before == 0  # Python's defaults, nothing frozen
    assert thresholds_after == list(COLLECTOR_THRESHOLDS)
    assert frozen_after > 10_000  # the modules and objects start-up made are no longer scanned
