"""Suite-wide: every service a test starts serves its HTTP API on a free port.

The settings default (8080) is for operators; tests must not collide with each other or
with whatever else listens there. The environment beats settings files and constructors, and
subprocesses (``aggregator run``) inherit it.
"""

from __future__ import annotations

import os

os.environ.setdefault("AGGREGATOR_API__PORT", "0")
