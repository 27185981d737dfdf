"""The kernel target: netlink reads and writes, the drift monitor, sysctls.

pyroute2 is registered here without running its package `__init__`, which imports every
part of the library (IPDB, NDB with sqlite3, conntrack, nftables, wireguard, ...: 163
modules, about 1 s of an agent start in User-Mode Linux and 0.05 s natively); the kernel
target needs 30 of them, all by submodule (`pyroute2.netlink.rtnl...`). The first access to
a name of the package itself that is not a submodule (`from pyroute2 import IPRoute`,
anywhere in the process) runs the `__init__` then, so other users of pyroute2 see the whole
library as usual.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
from types import ModuleType

_init_lock = threading.Lock()


def _register_pyroute2_lazily() -> None:
    if "pyroute2" in sys.modules:
        return  # already imported (a test, another library): nothing to save
    spec = importlib.util.find_spec("pyroute2")
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        return  # not installed: the imports below fail with the usual error
    package = importlib.util.module_from_spec(spec)  # its __path__, not yet its names
    loader = spec.loader

    def __getattr__(name: str) -> object:  # noqa: N807 - a module's __getattr__ (PEP 562)
        if not name.startswith("__") and importlib.util.find_spec(f"pyroute2.{name}") is not None:
            return importlib.import_module(f"pyroute2.{name}")  # a submodule (`from pyroute2
            # import config` in pyroute2's own modules): no need for the whole library
        with _init_lock:
            if not pyroute2_initialised(package):  # this hook is removed once it has run
                del package.__dict__["__getattr__"]
                loader.exec_module(package)
        try:
            return package.__dict__[name]
        except KeyError:
            raise AttributeError(f"module 'pyroute2' has no attribute {name!r}") from None

    package.__dict__["__getattr__"] = __getattr__
    sys.modules["pyroute2"] = package


def pyroute2_initialised(module: ModuleType | None = None) -> bool:
    """Whether pyroute2's package `__init__` has run (for the test of the above)."""
    module = module or sys.modules.get("pyroute2")
    return module is not None and "__getattr__" not in module.__dict__


_register_pyroute2_lazily()
