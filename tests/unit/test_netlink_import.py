"""netlink.py imports the two pyroute2 modules it uses without pyroute2's
package ``__init__`` (which imports every pyroute2 API: IPDB, NDB,
conntrack, ...), and the package still works for whoever imports it whole."""

from __future__ import annotations

import json
import subprocess
import sys

# what only pyroute2/__init__.py imports: none of it is needed for IPRoute
HEAVY = ("pyroute2.ndb.main", "pyroute2.ipdb", "pyroute2.conntrack", "pyroute2.ipset",
         "pyroute2.netlink.nl80211")


def run(code: str) -> dict[str, object]:
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def test_host_handle_and_errors_without_the_package_init() -> None:
    out = run(
        "import errno, json, sys\n"
        "from syscontainer_tools import netlink\n"
        "from syscontainer_tools.errors import ToolError\n"
        "with netlink.host() as ipr:\n"
        "    lo = netlink.link_index(ipr, 'lo')\n"
        "    try:\n"
        "        with netlink.failing('delete it'):\n"
        "            ipr.link('del', index=2**31 - 1)\n"
        "        err = None\n"
        "    except ToolError as e:\n"
        "        err = str(e)\n"
        f"print(json.dumps({{'lo': lo, 'err': err, 'heavy': [m for m in {HEAVY!r} "
        "if m in sys.modules]}))\n")
    assert out["lo"] == 1
    assert out["err"] == "delete it: No such device"
    assert out["heavy"] == []


def test_the_whole_package_still_imports_afterwards() -> None:
    out = run(
        "import json, sys\n"
        "from syscontainer_tools import netlink\n"
        "netlink.host().close()\n"
        "import pyroute2\n"
        "from pyroute2 import IPRoute, NDB, NetlinkError\n"
        "print(json.dumps({'version': pyroute2.__version__, 'same': IPRoute is "
        "sys.modules['pyroute2.iproute.linux'].IPRoute, 'error': NetlinkError is "
        "netlink.error_type(), 'ndb': NDB.__module__}))\n")
    assert out["version"] and out["version"] != "unknown"
    assert out["same"] is True and out["error"] is True
    assert out["ndb"] == "pyroute2.ndb.main"
