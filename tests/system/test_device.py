"""add/remove/list/update-device against real runc containers and loop devices."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import PREFIX
from .waits import polls, scaled

pytestmark = pytest.mark.system


def devcg(ctr: Any) -> Path:
    return Path(f"/sys/fs/cgroup/devices/{ctr.id}")


def blkcg(ctr: Any) -> Path:
    return Path(f"/sys/fs/cgroup/blkio/{ctr.id}")


def saved(state_dir: str, ctr: Any) -> str | None:
    path = Path(state_dir) / ctr.id / "state.json"
    return path.read_text() if path.exists() else None


def record(state_dir: str, ctr: Any) -> dict[str, Any]:
    text = saved(state_dir, ctr)
    return json.loads(text) if text else {"devices": [], "qos": []}


def ls_dev(ctr: Any, path: str) -> subprocess.CompletedProcess[str]:
    return ctr.exec("ls", "-l", path, check=False)


def majmin_in_ls(line: str) -> tuple[int, int]:
    # busybox: "brw-rw----    1 root     root        7,   3 Nov 21 21:34 /dev/x"
    fields = line.split()
    return int(fields[4].rstrip(",")), int(fields[5])


def test_add_device_live(make_container, make_loop, tool, state_dir):
    ctr = make_container("add")
    loop = make_loop()
    major, minor = loop.majmin
    with open(loop.backing, "r+b") as f:
        f.write(b"hello-from-host")
    proc = tool("add-device", ctr.id, f"{loop.path}:/dev/sdb:rw")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"Add device ({loop.path}) to container({ctr.id},/dev/sdb) done."
    out = ls_dev(ctr, "/dev/sdb")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("b")
    assert majmin_in_ls(out.stdout) == (major, minor)
    read = ctr.sh("dd if=/dev/sdb bs=15 count=1 2>/dev/null")
    assert read.stdout == "hello-from-host"
    assert f"b {major}:{minor} rw" in (devcg(ctr) / "devices.list").read_text()
    items = record(state_dir, ctr)["devices"]
    assert [(i["host"], i["container"], i["perm"]) for i in items] == [
        (loop.path, "/dev/sdb", "rw")]

    listing = tool("list-device", ctr.id, "--format", "json")
    assert listing.returncode == 0, listing.stderr
    rows = json.loads(listing.stdout)
    assert rows[0]["PathOnHost"] == loop.path and rows[0]["Major"] == major
    table = tool("list-device", ctr.id)
    assert "/dev/sdb" in table.stdout and "Host path" in table.stdout

    proc = tool("remove-device", ctr.id, f"{loop.path}:/dev/sdb")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == \
        f"Remove device ({loop.path}) from container({ctr.id},/dev/sdb) done."
    assert ls_dev(ctr, "/dev/sdb").returncode != 0
    assert f"b {major}:{minor}" not in (devcg(ctr) / "devices.list").read_text()
    # the node is gone, and a node made by hand cannot be read either
    denied = ctr.sh(f"mknod /tmp/x b {major} {minor}; dd if=/tmp/x bs=1 count=1", check=False)
    assert denied.returncode != 0
    assert "not permitted" in denied.stderr
    assert record(state_dir, ctr)["devices"] == []


def test_qos_and_update(make_container, make_loop, tool, state_dir):
    ctr = make_container("qos")
    loop = make_loop()
    major, minor = loop.majmin
    proc = tool("add-device", ctr.id, loop.path, "--device-read-bps", f"{loop.path}:10m",
                "--device-write-iops", f"{loop.path}:100")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        f"Add device ({loop.path}) to container({ctr.id},{loop.path}) done.",
        f"Update write iops for device ({loop.path},100) done.",
        f"Update read bps for device ({loop.path},10485760) done.",
    ]
    assert f"{major}:{minor} 10485760" in \
        (blkcg(ctr) / "blkio.throttle.read_bps_device").read_text()
    assert f"{major}:{minor} 100" in (blkcg(ctr) / "blkio.throttle.write_iops_device").read_text()

    proc = tool("update-device", ctr.id, "--device-read-bps", f"{loop.path}:1m",
                "--device-write-bps", f"{loop.path}:2k")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        f"Update read bps for device ({loop.path},1048576) done.",
        f"Update write bps for device ({loop.path},2048) done.",
    ]
    assert f"{major}:{minor} 1048576" in \
        (blkcg(ctr) / "blkio.throttle.read_bps_device").read_text()
    assert f"{major}:{minor} 2048" in (blkcg(ctr) / "blkio.throttle.write_bps_device").read_text()
    kinds = {q["kind"]: q["value"] for q in record(state_dir, ctr)["qos"]}
    assert kinds == {"read_bps": 1048576, "write_bps": 2048, "write_iops": 100}

    rows = json.loads(tool("list-device", ctr.id, "--pretty").stdout)
    assert "read_bps=1048576" in rows[0]["Qos"]

    proc = tool("remove-device", ctr.id, loop.path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        f"Remove device ({loop.path}) from container({ctr.id},{loop.path}) done.",
        f"Remove write iops for device ({loop.path}) done.",
        f"Remove read bps for device ({loop.path}) done.",
        f"Remove write bps for device ({loop.path}) done.",
    ]
    for name in ("read_bps", "write_bps", "write_iops"):
        text = (blkcg(ctr) / f"blkio.throttle.{name}_device").read_text()
        assert f"{major}:{minor}" not in text
    assert record(state_dir, ctr)["qos"] == []


def test_follow_partition(make_container, make_loop, tool, state_dir):
    ctr = make_container("part")
    loop = make_loop(16, partitions=2)
    proc = tool("add-device", "--follow-partition", ctr.id, f"{loop.path}:/dev/vdb")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines == [
        f"Add device ({loop.path}) to container({ctr.id},/dev/vdb) done.",
        f"Add device ({loop.partitions[0]}) to container({ctr.id},/dev/vdbp1) done.",
        f"Add device ({loop.partitions[1]}) to container({ctr.id},/dev/vdbp2) done.",
    ]
    for part in loop.partitions:
        st = os.stat(part)
        n = part.rsplit("p", 1)[1]
        out = ls_dev(ctr, f"/dev/vdbp{n}")
        assert out.returncode == 0 and out.stdout.startswith("b")
        assert majmin_in_ls(out.stdout) == (os.major(st.st_rdev), os.minor(st.st_rdev))
    rows = json.loads(tool("list-device", ctr.id, "--format", "json").stdout)
    assert [r["PathInContainer"] for r in rows] == ["/dev/vdb"]
    rows = json.loads(tool("list-device", ctr.id, "--format", "json", "--sub-partition").stdout)
    assert [r["PathInContainer"] for r in rows] == ["/dev/vdb", "/dev/vdbp1", "/dev/vdbp2"]
    # the whole disk got a udev rule naming the container
    rule = record(state_dir, ctr)["devices"][0]["udev_rule"]
    assert ctr.id in rule and os.path.exists(rule)
    assert "add-device" in Path(rule).read_text()

    proc = tool("remove-device", "--follow-partition", ctr.id, loop.path)
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.splitlines()) == 3
    for n in (1, 2):
        assert ls_dev(ctr, f"/dev/vdbp{n}").returncode != 0
    assert ls_dev(ctr, "/dev/vdb").returncode != 0
    assert not os.path.exists(rule)
    assert record(state_dir, ctr)["devices"] == []


def test_force_replaces_existing_node(make_container, make_loop, tool, state_dir):
    ctr = make_container("force")
    loop = make_loop()
    major, minor = loop.majmin
    ctr.sh("echo keep > /tmp/occupied")
    before = saved(state_dir, ctr)
    proc = tool("add-device", ctr.id, f"{loop.path}:/tmp/occupied")
    assert proc.returncode == 1
    assert proc.stderr.startswith("Failed to add device: ")
    assert "already exists" in proc.stderr
    assert ctr.sh("cat /tmp/occupied").stdout == "keep\n"
    assert saved(state_dir, ctr) == before

    proc = tool("add-device", "--force", ctr.id, f"{loop.path}:/tmp/occupied")
    assert proc.returncode == 0, proc.stderr
    out = ls_dev(ctr, "/tmp/occupied")
    assert out.stdout.startswith("b") and majmin_in_ls(out.stdout) == (major, minor)
    assert ctr.sh("ls -a /tmp").stdout.split() == [".", "..", "occupied"]


def test_not_running_saves_only(make_container, make_loop, tool, state_dir):
    ctr = make_container("stopped")
    loop = make_loop()
    ctr.runc("kill", ctr.id, "KILL")
    for _ in polls(5):
        if ctr.state()["status"] == "stopped":
            break
        time.sleep(0.05)
    proc = tool("add-device", ctr.id, f"{loop.path}:/dev/saved")
    assert proc.returncode == 0, proc.stderr
    assert f"Add device ({loop.path}) to container({ctr.id},/dev/saved) done." in proc.stdout
    assert "not running" in proc.stderr
    assert [i["container"] for i in record(state_dir, ctr)["devices"]] == ["/dev/saved"]
    assert not (ctr.rootfs / "dev" / "saved").exists()


def test_update_config_only(make_container, make_loop, tool, state_dir):
    ctr = make_container("cfgonly")
    loop = make_loop()
    proc = tool("add-device", "--update-config-only", ctr.id, f"{loop.path}:/dev/later")
    assert proc.returncode == 0, proc.stderr
    assert ls_dev(ctr, "/dev/later").returncode != 0
    assert [i["container"] for i in record(state_dir, ctr)["devices"]] == ["/dev/later"]


def test_bad_input(make_container, make_loop, tool, state_dir, tmp_path):
    ctr = make_container("bad")
    loop = make_loop()
    other = make_loop()
    ok = tool("add-device", ctr.id, f"{other.path}:/dev/other")
    assert ok.returncode == 0, ok.stderr
    before = saved(state_dir, ctr)
    devlist = (devcg(ctr) / "devices.list").read_text()
    regular = tmp_path / "plain"
    regular.write_text("x")
    cases = [
        (["add-device", ctr.id, f"/dev/{PREFIX}-nonexistent"], "Failed to parse device: ",
         "does not exist"),
        (["add-device", ctr.id, str(regular)], "Failed to parse device: ", "not a device"),
        (["add-device", ctr.id, f"{loop.path}:/dev/x:rwx"], "Failed to parse device: ",
         "permission 'x' is not one of r, w, m"),
        (["add-device", ctr.id, f"{loop.path}:rwx"], "Failed to parse device: ",
         "permission 'x'"),
        (["add-device", ctr.id, f"{loop.path}:/dev/x:rr"], "Failed to parse device: ",
         "repeats"),
        (["add-device", ctr.id, "dev/loop0"], "Failed to parse device: ", "not absolute"),
        (["add-device", ctr.id, f"{loop.path}:dev/x"], "Failed to parse device: ",
         "not absolute"),
        (["add-device", ctr.id, f"{loop.path}:/a:/b:rw"], "Failed to parse device: ",
         "too many"),
        (["add-device", ctr.id, "/dev/null", "--device-read-bps", "/dev/null:1m"],
         "Failed to add device: ", "char device"),
        (["add-device", ctr.id, "/dev/zero:/dev/z2", "--device-read-bps",
          f"{loop.path}:1m"], "Failed to add device: ", "was not added"),
        (["add-device", ctr.id, f"{loop.path}:/dev/y", "--device-read-bps",
          f"{loop.path}:fast"], "Failed to add device: ", "invalid rate"),
        (["add-device", ctr.id, f"{loop.path}:/dev/y", "--blkio-weight-device",
          f"{loop.path}:5"], "Failed to add device: ", "weight must be 0 or 10 to 1000"),
        (["add-device", ctr.id, f"{loop.path}:/dev/other"], "Failed to add device: ",
         "already taken"),
        (["add-device", ctr.id, f"{other.path}:/dev/again"], "Failed to add device: ",
         "already added"),
        (["add-device", f"{PREFIX}-nosuch", loop.path], "Failed to add device: ", ""),
        (["update-device", ctr.id, "--device-read-bps", f"{loop.path}:1m"],
         "Failed to update device: ", "was not added"),
        (["update-device", ctr.id], "Failed to update device: ", "at least one"),
        (["remove-device", ctr.id, "/dev/never-added"], "Failed to remove device: ",
         "was not added"),
        (["list-device", ctr.id, "--format", "yaml"], "Failed to list device: ", "table or json"),
    ]
    for args, prefix, words in cases:
        proc = tool(*args)
        assert proc.returncode == 1, (args, proc.stdout, proc.stderr)
        assert proc.stderr.startswith(prefix), (args, proc.stderr)
        assert words in proc.stderr, (args, proc.stderr)
        assert "Traceback" not in proc.stderr
        assert saved(state_dir, ctr) == before, args
    assert (devcg(ctr) / "devices.list").read_text() == devlist
    assert ls_dev(ctr, "/dev/y").returncode != 0 and ls_dev(ctr, "/dev/x").returncode != 0


def test_ambiguous_prefix(make_container, make_loop, tool, state_dir):
    a = make_container("amb-one")
    b = make_container("amb-two")
    loop = make_loop()
    proc = tool("add-device", f"{PREFIX}-amb", loop.path)
    assert proc.returncode == 1
    assert proc.stderr.startswith("Failed to add device: ")
    assert a.id in proc.stderr and b.id in proc.stderr
    assert saved(state_dir, a) is None and saved(state_dir, b) is None


def test_symlink_escape_add(make_container, make_loop, tool, state_dir):
    ctr = make_container("escape")
    loop = make_loop()
    (ctr.rootfs / "escape").symlink_to("/")
    (ctr.rootfs / "dev-evil").symlink_to("/etc")
    victim_dir = Path("/tmp") / f"{PREFIX}-pwned"
    assert not victim_dir.exists()
    proc = tool("add-device", ctr.id, f"{loop.path}:/escape/tmp/{PREFIX}-pwned/node",
                f"/dev/full:/dev-evil/{PREFIX}-node")
    assert proc.returncode == 0, proc.stderr
    assert not victim_dir.exists()
    assert not Path(f"/etc/{PREFIX}-node").exists()
    # it landed inside the container's root instead
    inside = ctr.rootfs / "tmp" / f"{PREFIX}-pwned" / "node"
    assert inside.is_block_device()
    assert (ctr.rootfs / "etc" / f"{PREFIX}-node").is_char_device()

    proc = tool("add-device", ctr.id, f"/dev/zero:/dev-evil/{PREFIX}-zero")
    assert proc.returncode == 0, proc.stderr
    assert not Path(f"/etc/{PREFIX}-zero").exists()
    assert (ctr.rootfs / "etc" / f"{PREFIX}-zero").is_char_device()

    # a symlink the container itself plants in its /dev tmpfs
    ctr.sh("ln -s /etc /dev/evil")
    proc = tool("add-device", ctr.id, f"/dev/urandom:/dev/evil/{PREFIX}-rnd")
    assert proc.returncode == 0, proc.stderr
    assert not Path(f"/etc/{PREFIX}-rnd").exists()
    assert ctr.exec("ls", "-l", f"/etc/{PREFIX}-rnd").stdout.startswith("c")


def test_symlink_escape_remove(make_container, make_loop, tool, state_dir, tmp_path):
    ctr = make_container("escrm")
    loop = make_loop()
    victim = Path("/tmp") / f"{PREFIX}-victim"
    os.mknod(victim, 0o600 | 0o060000, os.makedev(*loop.majmin))
    try:
        proc = tool("add-device", ctr.id, f"{loop.path}:/dev/target")
        assert proc.returncode == 0, proc.stderr
        # the container replaces its node by a symlink to a host path
        ctr.sh(f"rm /dev/target; ln -s /tmp/{PREFIX}-victim /dev/target")
        (ctr.rootfs / "escape").symlink_to("/")
        proc = tool("remove-device", ctr.id, f"{loop.path}:/dev/target")
        assert proc.returncode == 0, proc.stderr
        assert victim.exists()
        # a parent directory that is a symlink to / is resolved inside the root too
        proc = tool("add-device", ctr.id, f"{loop.path}:/escape/tmp/{PREFIX}-victim")
        assert proc.returncode == 0, proc.stderr
        assert (ctr.rootfs / "tmp" / f"{PREFIX}-victim").is_block_device()
        proc = tool("remove-device", ctr.id, f"{loop.path}:/escape/tmp/{PREFIX}-victim")
        assert proc.returncode == 0, proc.stderr
        assert victim.exists()
        assert not (ctr.rootfs / "tmp" / f"{PREFIX}-victim").exists()
    finally:
        victim.unlink(missing_ok=True)


def test_concurrent_adds_both_land(make_container, make_loop, tool, state_dir, runtime_root):
    import sys

    ctr = make_container("conc")
    loops = [make_loop(), make_loop()]
    env = dict(os.environ, SYSCONTAINER_ENGINE="runc", SYSCONTAINER_RUNTIME_ROOT=runtime_root,
               SYSCONTAINER_STATE_DIR=state_dir)
    procs = [subprocess.Popen([sys.executable, "-m", "syscontainer_tools", "add-device", ctr.id,
                               f"{lp.path}:/dev/c{n}"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
             for n, lp in enumerate(loops)]
    for p in procs:
        out, err = p.communicate(timeout=scaled(60))
        assert p.returncode == 0, err
    assert sorted(i["container"] for i in record(state_dir, ctr)["devices"]) == \
        ["/dev/c0", "/dev/c1"]
    for n in (0, 1):
        assert ls_dev(ctr, f"/dev/c{n}").stdout.startswith("b")


def test_multi_item_rollback(make_container, make_loop, tool, state_dir):
    ctr = make_container("rollback")
    a, b = make_loop(), make_loop()
    devlist = (devcg(ctr) / "devices.list").read_text()
    proc = tool("add-device", ctr.id, f"{a.path}:/dev/first", f"{b.path}:/dev/null")
    assert proc.returncode == 1
    assert proc.stderr.startswith("Failed to add device: ")
    assert ls_dev(ctr, "/dev/first").returncode != 0
    assert ctr.sh("ls -l /dev/null").stdout.startswith("c")
    assert (devcg(ctr) / "devices.list").read_text() == devlist
    assert saved(state_dir, ctr) is None

    proc = tool("add-device", ctr.id, f"{a.path}:/dev/a1/deep/first", "/dev/null:/dev/n2")
    assert proc.returncode == 0, proc.stderr
    proc = tool("remove-device", ctr.id, "/dev/null:/dev/n2", f"{a.path}:/dev/a1/deep/first")
    assert proc.returncode == 0, proc.stderr
    # /dev/null was granted by runc before: removing it must not take that away
    assert ctr.sh("echo hi > /dev/null && echo ok").stdout == "ok\n"
    assert "c 1:3 rwm" in (devcg(ctr) / "devices.list").read_text()
    # the parent directories made for a failed add are removed again
    proc = tool("add-device", ctr.id, f"{a.path}:/dev/p/q/first", f"{b.path}:/dev/zero")
    assert proc.returncode == 1
    assert ls_dev(ctr, "/dev/p").returncode != 0


def test_remove_by_container_path_and_missing_node(make_container, make_loop, tool, state_dir):
    ctr = make_container("rmctr")
    loop = make_loop()
    assert tool("add-device", ctr.id, f"{loop.path}:/dev/byctr").returncode == 0
    ctr.sh("rm /dev/byctr")          # already gone inside: remove still succeeds
    proc = tool("remove-device", ctr.id, ":/dev/byctr")
    assert proc.returncode == 0, proc.stderr
    assert record(state_dir, ctr)["devices"] == []


def test_udev_rule_commands_follow_new_partitions(make_container, make_loop, tool, state_dir,
                                                  udev_rules_dir):
    """Run the add/remove commands of the disk's udev rule as udevd would."""
    import shlex

    ctr = make_container("udev")
    loop = make_loop(16, partitions=1)
    proc = tool("add-device", ctr.id, f"{loop.path}:/dev/vdd:rw")
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.splitlines()) == 1           # no --follow-partition
    rules = list(udev_rules_dir.iterdir())
    assert [r.name for r in rules] == [f"99-syscontainer-tools-{ctr.id}@{Path(loop.path).name}"
                                       ".rules"]
    text = rules[0].read_text()
    part = Path(loop.partitions[0]).name
    runs = {}
    for line in text.splitlines():
        if line.startswith("ACTION=="):
            action = line.split('"')[1]
            cmd = line.split('RUN+="', 1)[1].rstrip('"')
            runs[action] = shlex.split(cmd.replace("%k", part).replace("%n", "1"))
    assert set(runs) == {"add", "remove"}
    done = subprocess.run(runs["add"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert ctr.exec("ls", "-l", "/dev/vddp1").stdout.startswith("b")
    rows = json.loads(tool("list-device", ctr.id, "--format", "json").stdout)
    assert [r["PathInContainer"] for r in rows] == ["/dev/vdd"]    # the partition is a child
    part_item = record(state_dir, ctr)["devices"][1]
    assert part_item["parent"] == loop.path and part_item["perm"] == "rw"
    done = subprocess.run(runs["remove"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert ls_dev(ctr, "/dev/vddp1").returncode != 0
    assert [i["container"] for i in record(state_dir, ctr)["devices"]] == ["/dev/vdd"]
