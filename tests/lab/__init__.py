"""The spine-leaf lab (vagrant/topology.json) in network namespaces, for end-to-end tests.

    from tests.lab import Lab
    lab = Lab(workdir).start()   # see tests/lab/builder.py and tests/lab/README.md

Fixture: `lab` (session scope, tests/lab/fixtures.py, registered for tests/vm).
"""

from tests.lab.builder import Lab, LabError, LabNode  # noqa: F401
from tests.lab.scenario import Fip, Network, Port, Router, Scenario  # noqa: F401
from tests.lab.topology import VM_TIER_HOSTS, labtool, load  # noqa: F401
from tests.lab.vm import Pinger, PingLog, Vm, ping  # noqa: F401
