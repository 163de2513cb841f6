"""The bench smoke test uses the root fixtures (migrated_admin_url, orders_url).

pytest (importlib mode) names these modules ``bench.tests.*``, which makes ``bench`` a namespace package over
this directory and hides the installed ``bench`` package; add its source directory to that namespace so
``bench.load`` resolves to the real code.
"""

import sys
from pathlib import Path

_SOURCE = str(Path(__file__).resolve().parents[1] / "src" / "bench")
_package = sys.modules.get("bench")
if _package is not None and _SOURCE not in list(_package.__path__):
    _package.__path__.append(_SOURCE)
