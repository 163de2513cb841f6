"""The demo tests use the root fixtures (migrated_admin_url, db, orders_url, inventory_url).

pytest (importlib mode) names these modules ``demo.tests.*``, which makes ``demo`` a namespace package over
this directory and hides the installed ``demo`` package; add its source directory to that namespace so
``demo.race`` resolves to the real code.
"""

import sys
from pathlib import Path

_SOURCE = str(Path(__file__).resolve().parents[1] / "src" / "demo")
_package = sys.modules.get("demo")
if _package is not None and _SOURCE not in list(_package.__path__):
    _package.__path__.append(_SOURCE)
