"""pytest fixture `lab`: the spine-leaf lab, built once per session, removed at the end.

Registered for tests/vm in tests/vm/conftest.py. It needs the User-Mode Linux guest (modules
tun, veth, ipv6; vrf and dummy are loaded too, for the agent). The build time of each step is
printed (pytest's capture is bypassed) and written to <vm_out>/lab-timings.txt; the lab's logs
and configs are copied to <vm_out>/lab/ at teardown (kept with OVNBGP_VM_RESULTS=<dir>).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.lab.builder import Lab

LAB_MODULES = ("tun", "veth", "ipv6", "vrf", "dummy")


def _say(request: pytest.FixtureRequest, text: str) -> None:
    capman = request.config.pluginmanager.getplugin("capturemanager")
    if capman is not None:
        with capman.global_and_fixture_disabled():
            print(f"\n{text}", flush=True)
    else:
        print(text, flush=True)


@pytest.fixture(scope="session")
def lab(request: pytest.FixtureRequest, modprobe, tmp_path_factory, vm_out) -> Iterator[Lab]:
    for module in LAB_MODULES:
        modprobe(module)
    the_lab = Lab(tmp_path_factory.mktemp("lab"))
    try:
        the_lab.start()
    except BaseException:
        the_lab.collect(vm_out / "lab")
        raise
    report = the_lab.timing_report()
    _say(request, report)
    (vm_out / "lab-timings.txt").write_text(report + "\n")
    try:
        yield the_lab
    finally:
        try:
            the_lab.collect(vm_out / "lab")
        finally:
            the_lab.stop()
