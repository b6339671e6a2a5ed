#!/usr/bin/env python3
"""A narrated demo on a real busybox system container under runc.

    scripts/demo.sh [--yes]                (as root: sets the machine up, then runs this)
    .venv/bin/python scripts/demo.py [--yes]

It starts this project's Python lxcfs, runs a container with both hooks in
its config.json, then gives it a loop device with a read-bps limit, a veth
NIC on a demo bridge with an address and a route, and a host directory; it
shows the container's own /proc view, restarts the container to show that
everything comes back, and tears everything down again.  Everything it makes
lives under /run/scdemo (runc root, state dir, lxcfs dir, bundle, disk image)
or is named ``scdemo*`` (bridge, veth), and the teardown removes exactly that,
and the host directories the tools made on first use (HOST_DIRS) if the demo
made them.
``--yes`` (or no terminal) runs without pausing between steps.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from rich.console import Console
from rich.panel import Panel

BIN = Path(sys.executable).parent
BASE = Path("/run/scdemo")
CID = "scdemo"
BRIDGE = "scdemo0"
HOST_NIC = "scdemo-veth"
NET = "10.231.77"
APPLETS = ("sh", "ls", "cat", "sleep", "dd", "mount", "ip", "free", "nproc", "stat", "echo",
           "ping", "head", "grep", "uptime", "route", "ifconfig", "df", "wc")
ENV = dict(os.environ, SYSCONTAINER_ENGINE="runc", SYSCONTAINER_RUNTIME_ROOT=str(BASE / "runc"),
           SYSCONTAINER_STATE_DIR=str(BASE / "state"), LXCFS_DIR=str(BASE / "lxcfs"))

# made by the tools when first needed (netns pins, udev rules), deepest first
HOST_DIRS = ("/run/syscontainer-tools/netns", "/run/syscontainer-tools", "/run/udev/rules.d")

console = Console(highlight=False)


class Demo:
    def __init__(self, pause: bool) -> None:
        self.pause = pause
        self.lxcfs: subprocess.Popen[bytes] | None = None
        self.loop: str | None = None
        self.made_dirs = [d for d in HOST_DIRS if not os.path.lexists(d)]

    # --- narration -------------------------------------------------------------
    def step(self, title: str, text: str) -> None:
        console.print()
        console.print(Panel(text, title=f"[bold]{title}", title_align="left", expand=False))
        if self.pause:
            console.input("[dim]press Enter to go on[/] ")

    def sh(self, *argv: str, check: bool = True, show: bool = True) -> str:
        """Run a command as a user would type it; show it and its output."""
        shown = " ".join(a if " " not in a and "{" not in a else f"'{a}'" for a in argv)
        if show:
            console.print(f"[bold green]$[/] {shown}", soft_wrap=True)
        proc = subprocess.run(argv, env=ENV, stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, check=False)
        out = (proc.stdout + proc.stderr).rstrip()
        if show and out:
            console.print(out, markup=False, soft_wrap=True)
        if check and proc.returncode != 0:
            raise SystemExit(f"demo: {shown} failed with exit status {proc.returncode}")
        return proc.stdout

    def tool(self, *args: str) -> str:
        return self.sh("syscontainer-tools", *args)  # BIN is first on the demo's PATH

    def inside(self, script: str, check: bool = True) -> str:
        return self.sh("runc", "--root", str(BASE / "runc"), "exec", CID, "sh", "-c", script,
                       check=check)

    # --- set-up ------------------------------------------------------------------
    def make_bundle(self) -> Path:
        bundle = BASE / "bundle"
        rootfs = bundle / "rootfs"
        for d in ("bin", "dev", "proc", "sys", "etc", "tmp", "root", "run", "var", "mnt"):
            (rootfs / d).mkdir(parents=True, exist_ok=True)
        busybox = shutil.which("busybox") or "/bin/busybox"
        shutil.copy2(busybox, rootfs / "bin" / "busybox")
        # a dynamically linked busybox (openEuler's) needs its loader and
        # libraries inside; ldd fails on a static one (Debian's busybox-static)
        ldd = subprocess.run(["ldd", busybox], capture_output=True, text=True, check=False)
        for line in ldd.stdout.splitlines() if ldd.returncode == 0 else ():
            lib = next((w for w in line.split() if w.startswith("/")), None)
            if lib:
                (rootfs / lib.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(lib, rootfs / lib.lstrip("/"))
        for applet in APPLETS:
            (rootfs / "bin" / applet).symlink_to("busybox")
        subprocess.run(["runc", "spec", "--bundle", str(bundle)], check=True)
        cfg = json.loads((bundle / "config.json").read_text())
        cfg["process"].update(terminal=False, args=["/bin/sleep", "1000000"])
        cfg["root"]["readonly"] = False
        cfg["hostname"] = CID
        for capset in ("bounding", "effective", "permitted"):  # ping needs a raw socket
            cfg["process"]["capabilities"][capset].append("CAP_NET_RAW")
        cfg["linux"]["resources"].update(memory={"limit": 256 << 20}, cpu={"cpus": "0"})
        state = ["--state-dir", str(BASE / "state"), "--log", str(BASE / "hooks.log")]
        cfg["hooks"] = {
            "prestart": [
                {"path": str(BIN / "syscontainer-hooks"),
                 "args": ["syscontainer-hooks", "--state", "prestart", *state]},
                {"path": str(BIN / "lxcfs-hook"),
                 "args": ["lxcfs-hook", "--lxcfs-dir", str(BASE / "lxcfs"),
                          "--log", str(BASE / "hooks.log")]},
            ],
            "poststop": [
                {"path": str(BIN / "syscontainer-hooks"),
                 "args": ["syscontainer-hooks", "--state", "poststop", *state]},
            ],
        }
        (bundle / "config.json").write_text(json.dumps(cfg, indent=1))
        return bundle

    def start_lxcfs(self) -> None:
        (BASE / "lxcfs").mkdir(parents=True, exist_ok=True)
        log = open(BASE / "lxcfs.log", "wb")  # noqa: SIM115 - lives as long as the daemon
        self.lxcfs = subprocess.Popen(
            [str(BIN / "lxcfs-toolkit"), "--lxcfs-dir", str(BASE / "lxcfs"), "serve"],
            env=ENV, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        for _ in range(100):
            if subprocess.run([str(BIN / "lxcfs-toolkit"), "--lxcfs-dir", str(BASE / "lxcfs"),
                               "check-lxcfs"], env=ENV, capture_output=True).returncode == 0:
                return
            if self.lxcfs.poll() is not None:
                break
            time.sleep(0.1)
        raise SystemExit(f"demo: the lxcfs daemon did not come up: {BASE / 'lxcfs.log'}")

    def run_container(self) -> None:
        with open(BASE / "runc.log", "w") as out:
            proc = subprocess.run(["runc", "--root", str(BASE / "runc"), "run", "-d", CID],
                                  cwd=BASE / "bundle", stdin=subprocess.DEVNULL, stdout=out,
                                  stderr=out, check=False)
        if proc.returncode != 0:
            raise SystemExit(f"demo: runc run failed: {(BASE / 'runc.log').read_text()}")

    def stop_container(self) -> None:
        root = str(BASE / "runc")
        subprocess.run(["runc", "--root", root, "kill", CID, "KILL"], capture_output=True)
        for _ in range(100):
            st = subprocess.run(["runc", "--root", root, "state", CID], capture_output=True,
                                text=True)
            if st.returncode != 0 or json.loads(st.stdout)["status"] == "stopped":
                break
            time.sleep(0.05)
        subprocess.run(["runc", "--root", root, "delete", "--force", CID], capture_output=True)

    # --- the story ----------------------------------------------------------------
    def run(self) -> None:
        self.step("1. A system container under runc",
                  "Python lxcfs serves a per-container /proc view; the container's config.json "
                  "runs syscontainer-hooks and lxcfs-hook at prestart and poststop.\n"
                  f"Everything lives under {BASE}.")
        BASE.mkdir(parents=True, exist_ok=True)
        self.start_lxcfs()
        self.make_bundle()
        self.run_container()
        self.sh("runc", "--root", str(BASE / "runc"), "list")

        self.step("2. Its own /proc (lxcfs)",
                  "256 MiB memory limit and cpuset 0 in config.json: /proc/meminfo, cpuinfo and "
                  "stat inside show them. (busybox free reads sysinfo(2), which no lxcfs can "
                  "change; /proc/meminfo is what procps free and most tools read.)")
        self.sh("grep", "MemTotal", "/proc/meminfo")
        self.inside("grep -E 'MemTotal|MemFree|SwapTotal' /proc/meminfo")
        self.inside("echo processors: $(grep -c ^processor /proc/cpuinfo); nproc; "
                    "head -2 /proc/stat; cat /proc/uptime")

        self.step("3. A block device with a read-bps limit",
                  "A loop device stands in for a disk. add-device creates the node inside with "
                  "the host's major:minor, allows it in the device cgroup and sets blkio QoS.")
        disk = BASE / "disk.img"
        with open(disk, "wb") as f:
            f.truncate(64 << 20)
        self.loop = self.sh("losetup", "-f", "--show", str(disk), show=False).strip()
        self.tool("add-device", "--device-read-bps", f"{self.loop}:1m", CID,
                  f"{self.loop}:/dev/sdb:rw")
        self.inside("ls -l /dev/sdb; dd if=/dev/sdb of=/dev/null bs=64k count=4 2>&1 | tail -1")
        self.sh("cat", f"/sys/fs/cgroup/blkio/{CID}/blkio.throttle.read_bps_device")
        self.tool("list-device", CID)

        self.step("4. A veth NIC on a bridge, with an address and a route",
                  f"A demo bridge {BRIDGE} ({NET}.1/24) on the host; add-nic creates the veth "
                  "pair, moves one end in as eth1 and enslaves the other to the bridge.")
        self.sh("ip", "link", "add", BRIDGE, "type", "bridge")
        self.sh("ip", "addr", "add", f"{NET}.1/24", "dev", BRIDGE)
        self.sh("ip", "link", "set", BRIDGE, "up")
        self.tool("add-nic", "--type", "veth", "--name", f"{HOST_NIC}:eth1", "--ip",
                  f"{NET}.2/24", "--bridge", BRIDGE, "--mtu", "1400", CID)
        self.tool("add-route", CID, json.dumps([{"dest": "10.231.78.0/24", "gw": f"{NET}.1",
                                                 "dev": "eth1"}]))
        self.inside(f"ip -4 addr show eth1; ip route; ping -c 1 -W 2 {NET}.1")
        self.tool("list-nic", CID)

        self.step("5. A host directory bind-mounted in",
                  "add-path binds a host directory into the running container (rslave by "
                  "default); a file written on the host appears inside at once.")
        share = BASE / "share"
        share.mkdir(exist_ok=True)
        self.tool("add-path", CID, f"{share}:/mnt/share")
        (share / "hello.txt").write_text("written on the host\n")
        self.inside("cat /mnt/share/hello.txt")
        self.tool("list-path", CID)

        self.step("6. Restart: everything comes back",
                  "runc kill + delete (poststop hook) and run again with the same bundle: the "
                  "prestart hook re-applies the saved device, QoS, path, NIC and route, and "
                  "lxcfs-hook mounts the /proc view again.")
        self.stop_container()
        self.run_container()
        self.inside("ls -l /dev/sdb; cat /mnt/share/hello.txt; ip -4 addr show eth1 | grep inet; "
                    f"ip route | grep 10.231.78; ping -c 1 -W 2 {NET}.1 | tail -1; "
                    "grep MemTotal /proc/meminfo")

        self.step("7. Remove them live", "The remove-* commands undo each change in place.")
        self.tool("remove-path", CID, f"{share}:/mnt/share")
        self.tool("remove-route", CID, json.dumps([{"dest": "10.231.78.0/24",
                                                    "gw": f"{NET}.1", "dev": "eth1"}]))
        self.tool("remove-nic", "--type", "veth", "--name", f"{HOST_NIC}:eth1", CID)
        self.tool("remove-device", CID, f"{self.loop}:/dev/sdb")
        self.inside("ls /dev/sdb /mnt/share/hello.txt 2>&1; ip link | grep -c eth1", check=False)

    # --- teardown -----------------------------------------------------------------
    def teardown(self) -> None:
        with contextlib.suppress(Exception):
            self.stop_container()
        subprocess.run(["ip", "link", "del", HOST_NIC], capture_output=True)
        subprocess.run(["ip", "link", "del", BRIDGE], capture_output=True)
        if self.loop:
            subprocess.run(["losetup", "-d", self.loop], capture_output=True)
        if self.lxcfs and self.lxcfs.poll() is None:
            self.lxcfs.send_signal(signal.SIGTERM)
            try:
                self.lxcfs.wait(10)
            except subprocess.TimeoutExpired:
                self.lxcfs.kill()
        for mnt in mounts_under(BASE):
            subprocess.run(["umount", "-l", mnt], capture_output=True)
        if not mounts_under(BASE):
            shutil.rmtree(BASE, ignore_errors=True)
        for d in self.made_dirs:  # only if empty: another user's pins or rules stay
            with contextlib.suppress(OSError):
                os.rmdir(d)
        console.print()
        console.print("[bold]Torn down:[/] container, bridge, veth, loop device, lxcfs daemon "
                      f"and {BASE} are gone.")


def mounts_under(base: Path) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    return sorted((p for p in points if p == str(base) or p.startswith(f"{base}/")),
                  reverse=True)


@contextlib.contextmanager
def demo(pause: bool) -> Iterator[Demo]:
    d = Demo(pause)
    try:
        yield d
    finally:
        d.teardown()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--yes", "-y", action="store_true", help="do not pause between steps")
    args = p.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("demo: run as root (containers, devices, links)")
    if (BASE / "runc" / CID).exists() or subprocess.run(
            ["ip", "link", "show", BRIDGE], capture_output=True).returncode == 0:
        raise SystemExit(f"demo: a previous demo is still set up ({BASE}, {BRIDGE}); "
                         "remove it first")
    ENV["PATH"] = f"{BIN}:{ENV.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}"
    with demo(pause=not args.yes and sys.stdin.isatty()) as d:
        d.run()


if __name__ == "__main__":
    main()
