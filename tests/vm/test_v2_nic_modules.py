"""What the native host's minimal kernel cannot show, on a stock kernel:
``--type eth`` with a ``dummy`` link and with a virtio-net PCI NIC (add,
update-nic, remove, poststop hand-back under its own name), NICs that would
die with the container's netns, and KERNEL_MODULES at prestart."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

import pytest

from tests.system.conftest import PREFIX, run
from tests.vm.conftest import NIC
from tests.vm.helpers import hooks_for, sh

pytestmark = pytest.mark.system


def host_link(name: str) -> dict | None:
    out = run(["ip", "-j", "-d", "link", "show", "dev", name], check=False)
    return json.loads(out.stdout)[0] if out.returncode == 0 else None


def ctr_addrs(ctr, name: str) -> str:
    return ctr.exec("ip", "addr", "show", "dev", name, check=False).stdout


@pytest.fixture
def links():
    made: list[str] = []

    def add(name: str, *spec: str) -> str:
        run(["ip", "link", "add", name, *spec])
        made.append(name)
        # udevd's 99-default.link (MACAddressPolicy=persistent) replaces the
        # random MAC of a new virtual link: read it only after udevd is done
        sh("udevadm settle -t 30", check=False)
        return name

    yield add
    for name in made:
        run(["ip", "link", "del", name], check=False)


def _cycle(ctr, tool, hname: str, mac: str, net: str) -> None:
    """add, update-nic, remove: the host interface is back as it was."""
    out = tool("add-nic", "--type", "eth", "--name", f"{hname}:eth1", "--ip", f"{net}.2/24",
               ctr.id, check=True).stdout
    assert out.strip() == f"Add network interface ({hname}) to container ({ctr.id},eth1) done"
    assert host_link(hname) is None
    text = ctr_addrs(ctr, "eth1")
    assert f"{net}.2/24" in text and mac in text
    tool("update-nic", "--name", "eth1", "--ip", f"{net}.3/24", "--mtu", "1400", ctr.id,
         check=True)
    text = ctr_addrs(ctr, "eth1")
    assert f"{net}.3/24" in text and "mtu 1400" in text
    # kernels before live rename refuse to rename an up link (EBUSY): the
    # remove must bring it down before renaming it
    proc = tool("remove-nic", "--type", "eth", "--name", "eth1", ctr.id)
    assert proc.returncode == 0, proc.stderr
    assert "eth1" not in ctr.exec("ip", "link", check=False).stdout
    back = host_link(hname)
    assert back is not None and back["address"] == mac and back["mtu"] != 1400


def test_eth_dummy_link_cycle_and_poststop(make_container, tool, state_dir, links):
    d0 = links(f"{PREFIX}d0", "type", "dummy")
    mac = host_link(d0)["address"]
    ctr = make_container("ethd", hooks=hooks_for(state_dir))
    _cycle(ctr, tool, d0, mac, "10.231.0")
    # added live to a container started with nothing saved: a dummy link dies
    # with the netns unless it is pinned now; poststop hands it back
    tool("add-nic", "--type", "eth", "--name", f"{d0}:eth1", ctr.id, check=True)
    ctr.stop()
    back = host_link(d0)
    assert back is not None and back["address"] == mac, "the dummy link died with the netns"
    assert not os.path.lexists(f"/run/syscontainer-tools/netns/{ctr.id}")
    # and it comes back at the next start (prestart), and back again at stop
    ctr.start()
    assert mac in ctr_addrs(ctr, "eth1")
    ctr.stop()
    assert host_link(d0) is not None


def test_eth_virtio_pci_nic(make_container, tool, state_dir):
    assert NIC, "the lane gives the guest a virtio-net NIC"
    mac = host_link(NIC)["address"]
    ctr = make_container("ethv", hooks=hooks_for(state_dir))
    _cycle(ctr, tool, NIC, mac, "10.232.0")
    tool("add-nic", "--type", "eth", "--name", f"{NIC}:eth2", ctr.id, check=True)
    assert mac in ctr_addrs(ctr, "eth2")
    ctr.stop()
    back = host_link(NIC)
    assert back is not None and back["address"] == mac


@pytest.mark.parametrize("kind", ["veth", "macvlan"])
def test_virtual_link_moved_in_live_is_never_lost(make_container, tool, state_dir, links, kind):
    name = f"{PREFIX}{kind[:2]}"
    if kind == "veth":
        links(name, "type", "veth", "peer", "name", f"{PREFIX}vp")
    else:
        dummy = links(f"{PREFIX}mp", "type", "dummy")
        links(name, "link", dummy, "type", "macvlan", "mode", "bridge")
    mac = host_link(name)["address"]
    ctr = make_container(f"v{kind[:2]}", hooks=hooks_for(state_dir))
    tool("add-nic", "--type", "eth", "--name", f"{name}:eth3", ctr.id, check=True)
    assert os.path.ismount(f"/run/syscontainer-tools/netns/{ctr.id}"), \
        "a live eth of a container wired with poststop pins its netns at once"
    ctr.stop()
    back = host_link(name)
    assert back is not None and back["address"] == mac, f"the {kind} died with the netns"


def test_kernel_modules_at_prestart(make_container, state_dir):
    mod = "nlmon"
    sh(f"rmmod {mod}", check=False)
    assert not Path(f"/sys/module/{mod}").exists()
    make_container("kmod", hooks=hooks_for(state_dir), env=[f"KERNEL_MODULES={mod}"])
    assert Path(f"/sys/module/{mod}").exists()
    with contextlib.suppress(Exception):
        sh(f"rmmod {mod}", check=False)


def test_missing_kernel_module_fails_start(make_container, state_dir):
    missing = f"{PREFIX}nomod"
    ctr = make_container("kmod-miss", start=False, hooks=hooks_for(state_dir),
                         env=[f"KERNEL_MODULES={missing}"])
    with pytest.raises(AssertionError) as err:
        ctr.start()
    assert missing in str(err.value)
