#!/usr/bin/env bash
# A Debian root for the VM lane (issue 14: the suite with the distribution's own
# python3 and kernel), made with debootstrap from Debian's archive:
#   tests/vm/mkroot.sh SUITE DIR        e.g. bullseye .vm/roots/bullseye
# It holds the distribution's kernel (DIR/boot/vmlinuz-*, its modules in
# DIR/lib/modules), the packages the tests use, and a venv at
# DIR/opt/sctvm/venv made by that python3 (the PyPI dependencies installed by
# chroot here: the guest has no network).  The package itself is not copied:
# a .pth file points the venv at the worktree, which the guest sees at the same
# path (scripts/vm-lane.sh --root DIR).  Run again to refresh the venv.
set -euo pipefail
suite=${1:?usage: mkroot.sh SUITE DIR}
dir=${2:?usage: mkroot.sh SUITE DIR}
REPO=$(cd "$(dirname "$0")/../.." && pwd)
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
say() { echo "mkroot [$suite]: $*" >&2; }

command -v debootstrap >/dev/null || { say "debootstrap is not installed (apt-get install debootstrap)"; exit 2; }
# what the tests run in the guest (minbase: no recommends, no docs to speak of).
# The kernel is not among them: its package would pull initramfs-tools and
# build an initrd that virtme-ng never uses (it boots with its own), so it is
# unpacked below instead.
pkgs=python3,python3-venv,runc,busybox-static,iproute2,fuse3,udev,kmod
pkgs+=,util-linux,fdisk,procps,systemd-sysv,dbus

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
t0=$(date +%s)
if [ ! -x "$dir/usr/bin/python3" ] || [ ! -e "$dir/.sctvm-bootstrapped" ]; then
    say "debootstrap into $dir (takes minutes)"
    debootstrap --variant=minbase --include="$pkgs" "$suite" "$dir" "$mirror" >"$dir.debootstrap.log" 2>&1 || {
        say "debootstrap failed; the end of $dir.debootstrap.log:"; tail -20 "$dir.debootstrap.log" >&2; exit 1; }
    touch "$dir/.sctvm-bootstrapped"
    say "debootstrap took $(( $(date +%s) - t0 ))s"
fi
# the suite's own kernel: the package linux-image-amd64 points at, unpacked
# (dpkg -x) with its modules indexed for modprobe in the guest
if ! ls "$dir"/boot/vmlinuz-* >/dev/null 2>&1; then
    # (debootstrap leaves the suite's package lists in the root)
    kpkg=$(chroot "$dir" apt-cache depends linux-image-amd64 2>/dev/null |
           awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
    [ -n "$kpkg" ] || { say "the root's apt knows no kernel behind linux-image-amd64"; exit 1; }
    mkdir -p "$dir/tmp/sctvm-kernel"
    chroot "$dir" sh -c "cd /tmp/sctvm-kernel && apt-get -q -o APT::Sandbox::User=root download $kpkg" >&2 ||
        { say "could not download $kpkg"; exit 1; }
    # unpacked beside, then moved in: dpkg -x over the root would replace its
    # merged-/usr symlinks (lib -> usr/lib) with directories
    x="$dir/tmp/sctvm-kernel/x"
    dpkg -x "$dir"/tmp/sctvm-kernel/"$kpkg"_*.deb "$x"
    mkdir -p "$dir/boot" "$dir/lib/modules"
    cp -a "$x"/boot/. "$dir/boot/"
    for m in "$x"/lib/modules "$x"/usr/lib/modules; do
        if [ -d "$m" ]; then cp -a "$m"/. "$dir/lib/modules/"; fi
    done
    rm -rf "$dir/tmp/sctvm-kernel"
    say "kernel $kpkg unpacked"
fi
for m in "$dir"/lib/modules/*; do
    if [ -d "$m" ]; then depmod -b "$dir" "$(basename "$m")"; fi
done
ls "$dir"/boot/vmlinuz-* >/dev/null 2>&1 || { say "no kernel in $dir/boot"; exit 1; }
# the archives debootstrap kept (the guest installs nothing)
rm -f "$dir"/var/cache/apt/archives/*.deb

deps=$(cd "$REPO" && python3 - <<'PY'
import re
text = open("pyproject.toml").read()
block = re.search(r"^dependencies = \[(.*?)^\]", text, re.S | re.M).group(1)
deps = re.findall(r'"([^"]+)"', block)
test = re.search(r"^test = \[(.*?)\]", text, re.M | re.S).group(1)
# what the tests import and run (build: tests/system/test_packaging.py makes
# the wheel and sdist with that python3), not the linters
deps += [d for d in re.findall(r'"([^"]+)"', test)
         if re.split("[<>=]", d)[0] not in ("ruff", "mypy")]
print(" ".join(deps))
PY
)
say "venv with $(chroot "$dir" python3 --version) and: $deps"
chroot "$dir" sh -c "[ -x /opt/sctvm/venv/bin/python ] || python3 -m venv /opt/sctvm/venv"
# the host's pip (whatever index it is set up for) fetches wheels for that
# python3; pip in the chroot installs them with no index
pyver=$(chroot "$dir" python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
wheels="$dir/opt/sctvm/wheels"
mkdir -p "$wheels"
# (Debian 12's own pip, 23.0, spent more than ten minutes of CPU resolving this
# set for another python version without an answer; scripts/setup.sh upgrades
# it too, this covers a .venv made by hand)
"$REPO/.venv/bin/python" -m pip install -q "pip>=24" >&2
"$REPO/.venv/bin/python" -m pip download -q -d "$wheels" --only-binary=:all: \
    --python-version "$pyver" --implementation cp --platform manylinux2014_x86_64 \
    --platform manylinux_2_17_x86_64 --platform linux_x86_64 $deps "pip>=22.3" setuptools wheel \
    exceptiongroup tomli typing_extensions importlib_resources importlib_metadata zipp >&2   # markers are judged by the host's python
chroot "$dir" /opt/sctvm/venv/bin/python -m pip install -q --disable-pip-version-check \
    --no-index --find-links /opt/sctvm/wheels $deps "pip>=22.3" >&2   # (pip --python: 22.3)
site=$(chroot "$dir" /opt/sctvm/venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$REPO" > "$dir$site/syscontainer-tools-worktree.pth"
# the console scripts the tests and hooks call (pyproject's [project.scripts]),
# as pip would write them
scripts=$(cd "$REPO" && python3 - <<'PY'
import re
block = re.search(r"^\[project\.scripts\]\n(.*?)(?:^\[|\Z)", open("pyproject.toml").read(), re.S | re.M).group(1)
print(" ".join("%s=%s" % m for m in re.findall(r'^([\w-]+) = "([^"]+)"', block, re.M)))
PY
)
for spec in $scripts; do
    name=${spec%%=*} target=${spec#*=}
    printf '#!/opt/sctvm/venv/bin/python\nimport sys\nfrom %s import %s\nsys.exit(%s())\n' \
        "${target%%:*}" "${target##*:}" "${target##*:}" > "$dir/opt/sctvm/venv/bin/$name"
    chmod +x "$dir/opt/sctvm/venv/bin/$name"
done
mkdir -p "$dir$REPO"
say "ready: $(ls "$dir"/boot/vmlinuz-* | tail -1)"
