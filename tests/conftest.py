"""Shared fixtures: the tests directory on sys.path for the ``pair`` harness."""

import sys
from pathlib import Path

TESTS = Path(__file__).parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))
