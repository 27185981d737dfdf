"""pyroute2 registered without its package __init__ (ovnbgp/kernel/__init__.py): the agent's
modules load the 30-odd submodules they use, and the rest of the library is still there for
anyone who asks for a name of the package. Each case runs in a fresh interpreter: the test
process has pyroute2 imported already."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

AGENT_MODULES = ("ovnbgp.agent.daemon", "ovnbgp.kernel.netlink", "ovnbgp.kernel.monitor",
                 "ovnbgp.kernel.teardown", "ovnbgp.kernel.nsenter", "ovnbgp.frr.manager")


def run_fresh(code: str) -> dict:
    cp = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                        text=True, timeout=60, check=True)
    return json.loads(cp.stdout.strip().splitlines()[-1])


def test_the_agent_modules_do_not_run_pyroute2s_package_init():
    out = run_fresh(f"""
        import json, sys
        for m in {AGENT_MODULES!r}:
            __import__(m)
        from ovnbgp.kernel import pyroute2_initialised
        print(json.dumps({{"initialised": pyroute2_initialised(),
                           "ndb": "pyroute2.ndb.main" in sys.modules,
                           "count": sum(m.startswith("pyroute2") for m in sys.modules)}}))
    """)
    assert out["initialised"] is False
    assert out["ndb"] is False
    assert out["count"] < 60  # 30 with pyroute2 0.9.7; the whole library is 163


def test_a_name_of_the_package_loads_the_whole_library():
    out = run_fresh("""
        import json
        import ovnbgp.kernel.netlink
        from pyroute2 import IPRoute, NetlinkError
        import pyroute2
        from ovnbgp.kernel import pyroute2_initialised
        print(json.dumps({"iproute": IPRoute.__name__, "error": NetlinkError.__name__,
                          "version": pyroute2.__version__, "initialised": pyroute2_initialised()}))
    """)
    assert out == {"iproute": "IPRoute", "error": "NetlinkError", "version": out["version"],
                   "initialised": True}
    assert out["version"] != "unknown"


def test_an_unknown_name_is_an_attribute_error():
    out = run_fresh("""
        import json
        import ovnbgp.kernel
        import pyroute2
        try:
            pyroute2.no_such_thing
            print(json.dumps({"raised": False}))
        except AttributeError as e:
            print(json.dumps({"raised": True, "message": str(e)}))
    """)
    assert out == {"raised": True, "message": "module 'pyroute2' has no attribute 'no_such_thing'"}


def test_pyroute2_imported_first_is_left_alone():
    out = run_fresh("""
        import json
        import pyroute2
        import ovnbgp.kernel.netlink
        from ovnbgp.kernel import pyroute2_initialised
        print(json.dumps({"initialised": pyroute2_initialised(), "has": hasattr(pyroute2, "IPRoute")}))
    """)
    assert out == {"initialised": True, "has": True}
