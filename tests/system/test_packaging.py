"""scripts/build-packages.sh: the wheel installs into a fresh venv and its
programs run; the sdist carries what the spec installs; the RPM holds the
programs (shebang /usr/bin/python3), the hook specs, the unit, completions,
and its scriptlets prepare the directories."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from .waits import scaled

pytestmark = pytest.mark.system

REPO = Path(__file__).resolve().parents[2]
# (no tomllib before Python 3.11)
VERSION = re.search(r'^version = "([^"]+)"$', (REPO / "pyproject.toml").read_text(),
                    re.MULTILINE).group(1)  # type: ignore[union-attr]
PROGRAMS = ("syscontainer-tools", "syscontainer-hooks", "lxcfs-toolkit", "lxcfs-hook",
            "syscontainer-runc")
HAVE_RPMBUILD = shutil.which("rpmbuild") is not None
needs_rpm = pytest.mark.skipif(not HAVE_RPMBUILD, reason="rpmbuild not installed")


def run(argv: list[str], **kw) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    kw.setdefault("timeout", 120)
    kw.setdefault("cwd", "/")  # not the checkout: python -c would import from it
    proc = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, **kw)
    assert proc.returncode == 0, f"{argv}: {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def own_install() -> tuple[str, list[str]]:
    """Where this environment's syscontainer-tools is, and its programs here."""
    where = run([sys.executable, "-c", "import importlib.metadata as m; "
                 "print(m.distribution('syscontainer-tools').locate_file(''))"]).stdout
    bindir = Path(sys.executable).parent
    return where, sorted(p for p in PROGRAMS if (bindir / p).exists())


def test_build_copy_leaves_out_what_git_ignores():
    """build-packages.sh copies the tree minus what .gitignore lists: .vm (the
    VM lanes' roots, gigabytes) once took the copy past any timeout."""
    script = (REPO / "scripts" / "build-packages.sh").read_text()
    ignored = [line.strip().rstrip("/") for line in (REPO / ".gitignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")]
    missing = [name for name in ignored
               if not any(f"--exclude={form}" in script
                          for form in (f"./{name}", name, f"'{name}'"))]
    assert not missing, f"build-packages.sh copies what .gitignore ignores: {missing}"


@pytest.fixture(scope="module")
def out(tmp_path_factory) -> Iterator[Path]:
    d = tmp_path_factory.mktemp("packages")
    env = {**os.environ, "PYTHON": sys.executable}
    if not HAVE_RPMBUILD:
        env["NO_RPM"] = "1"
    before = own_install()
    run(["bash", str(REPO / "scripts" / "build-packages.sh"), str(d)], env=env, timeout=scaled(300))
    # the RPM's %install runs this interpreter's pip: it must not have touched
    # this environment's own copy (pip uninstalls it unless --ignore-installed)
    assert own_install() == before
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def rpm(out) -> Path:
    if not HAVE_RPMBUILD:
        pytest.skip("rpmbuild not installed")
    found = sorted(out.glob(f"syscontainer-tools-{VERSION}-*.noarch.rpm"))
    assert len(found) == 1, list(out.iterdir())
    return found[0]


def test_sdist_carries_what_the_spec_installs(out):
    sdist = out / f"syscontainer_tools-{VERSION}.tar.gz"
    assert sdist.is_file()
    top = f"syscontainer_tools-{VERSION}/"
    with tarfile.open(sdist) as tar:
        names = {n.removeprefix(top) for n in tar.getnames()}
    for need in ("pyproject.toml", "hookspec.json", "systemd/lxcfs-toolkit.service",
                 "hooks/podman/50-syscontainer-hooks-prestart.json",
                 "hooks/podman/50-syscontainer-hooks-poststop.json",
                 "hooks/podman/60-lxcfs-hook.json", "hooks/syscontainer-hooks",
                 "completion/syscontainer-tools.bash", "completion/lxcfs-toolkit.bash",
                 "completion/_syscontainer-tools", "completion/lxcfs-toolkit.fish",
                 "packaging/syscontainer-tools.spec", "syscontainer_tools/cli/__init__.py",
                 "lxcfs_toolkit/cli.py"):
        assert need in names, need
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


def test_wheel_installs_into_a_fresh_venv(out, tmp_path):
    wheel = out / f"syscontainer_tools-{VERSION}-py3-none-any.whl"
    assert wheel.is_file()
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    py = venv / "bin" / "python"
    # this interpreter's pip installs into the fresh venv: no network, no deps
    run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps",
         "--no-index", str(wheel)])
    for prog in PROGRAMS:
        script = venv / "bin" / prog
        assert script.is_file() and os.access(script, os.X_OK), prog
        assert script.read_text().splitlines()[0] == f"#!{py}", prog
    # the dependencies come from this test's environment, appended after the
    # fresh venv's own site-packages, so the package itself is the wheel's
    purelib = run([str(py), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]).stdout.strip()
    (Path(purelib) / "zz-deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    where = run([str(py), "-c", "import syscontainer_tools, lxcfs_toolkit; "
                 "print(syscontainer_tools.__file__); print(lxcfs_toolkit.__file__)"]).stdout
    assert all(line.startswith(str(venv)) for line in where.split()), where
    # pip compiled the bytecode at install time: nothing compiles at start-up
    tag = sys.implementation.cache_tag
    for mod in ("syscontainer_tools/__pycache__/hooks", "lxcfs_toolkit/__pycache__/server"):
        assert (Path(purelib) / f"{mod}.{tag}.pyc").is_file(), mod
    for prog in ("syscontainer-tools", "lxcfs-toolkit"):
        assert "Usage:" in run([str(venv / "bin" / prog), "--help"]).stdout
    # the hooks, given no OCI state on stdin, fail with their own message
    for argv in (["syscontainer-hooks", "--state", "prestart", "--state-dir", str(tmp_path / "sd")],
                 ["lxcfs-hook", "--lxcfs-dir", str(tmp_path / "lxcfs")]):
        argv[0] = str(venv / "bin" / argv[0])
        proc = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                              timeout=scaled(60), cwd="/")
        assert proc.returncode == 1, (argv, proc.stderr)
        assert "OCI state" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    # the runtime wrapper passes a call straight to the runtime it is given
    proc = subprocess.run([str(venv / "bin" / "syscontainer-runc"), "--sc-runtime=false",
                           "state", "x"], capture_output=True, text=True, timeout=scaled(60), cwd="/",
                          stdin=subprocess.DEVNULL, env={**os.environ,
                                                         "SYSCONTAINER_RUNC_CONFIG": "/nonexistent"})
    assert proc.returncode == 1 and proc.stderr == "", proc.stderr

@needs_rpm
def test_rpm_file_list(rpm):
    files = set(run(["rpm", "-qlp", str(rpm)]).stdout.split())
    for prog in PROGRAMS:
        assert f"/usr/bin/{prog}" in files
    for need in ("/var/lib/isulad/hooks/hookspec.json",
                 "/usr/lib/systemd/system/lxcfs-toolkit.service",
                 "/usr/share/containers/oci/hooks.d/50-syscontainer-hooks-prestart.json",
                 "/usr/share/containers/oci/hooks.d/50-syscontainer-hooks-poststop.json",
                 "/usr/share/containers/oci/hooks.d/60-lxcfs-hook.json",
                 "/usr/share/bash-completion/completions/syscontainer-tools",
                 "/usr/share/bash-completion/completions/lxcfs-toolkit",
                 "/usr/share/zsh/site-functions/_syscontainer-tools",
                 "/usr/share/fish/vendor_completions.d/lxcfs-toolkit.fish",
                 "/usr/share/syscontainer-tools/hooks/syscontainer-hooks",
                 "/var/lib/lxc/lxcfs", "/var/lib/syscontainer-tools"):
        assert need in files, need
    site = [f for f in files if "/site-packages/" in f]
    assert any(f.endswith("/syscontainer_tools/cli/__init__.py") for f in site)
    assert any(f.endswith("/lxcfs_toolkit/cli.py") for f in site)
    assert any(f.endswith(".dist-info/entry_points.txt") for f in site)
    assert not any(f.endswith(("/RECORD", "/direct_url.json")) for f in site)
    # bytecode ships in the package, for the build interpreter's tag
    tag = sys.implementation.cache_tag
    for mod in ("syscontainer_tools/__pycache__/hooks", "syscontainer_tools/cli/__pycache__/__init__",
                "lxcfs_toolkit/__pycache__/server"):
        assert any(f.endswith(f"/{mod}.{tag}.pyc") for f in site), mod
    configs = run(["rpm", "-qcp", str(rpm)]).stdout.split()
    assert "/var/lib/isulad/hooks/hookspec.json" in configs


@needs_rpm
def test_rpm_scripts(rpm):
    scripts = run(["rpm", "-qp", "--scripts", str(rpm)]).stdout
    assert "postinstall scriptlet" in scripts
    assert "mkdir -p /var/lib/lxc/lxcfs /var/lib/syscontainer-tools" in scripts
    assert "systemctl daemon-reload" in scripts
    assert "preuninstall scriptlet" in scripts
    requires = run(["rpm", "-qpR", str(rpm)]).stdout.split("\n")
    assert "python3-typer" in requires and "/usr/bin/python3" in requires


@needs_rpm
def test_rpm_requires_the_python_it_was_built_for(rpm):
    requires = run(["rpm", "-qpR", str(rpm)]).stdout.split("\n")
    abi = f"python(abi) = {sys.version_info[0]}.{sys.version_info[1]}"
    assert abi in requires
    site = [f for f in run(["rpm", "-qlp", str(rpm)]).stdout.split() if "/site-packages/" in f]
    assert all(f.startswith(f"/usr/lib/python{sys.version_info[0]}.{sys.version_info[1]}/")
               for f in site)


@needs_rpm
@pytest.mark.parametrize("isula_root", ["/var/lib/isulad", "/var/lib/sctgraph/isulad", None])
def test_rpm_post_puts_the_hook_spec_under_isulads_root(rpm, tmp_path, isula_root):
    """The real %post, run in a private mount namespace with a tmpfs on
    /var/lib (the host's stays untouched) and an ``isula`` that answers
    ``info`` as iSulad does: a non-default root gets the hook spec too; the
    default root, or no iSulad, changes nothing."""
    post = run(["rpm", "-qp", "--qf", "%{POSTIN}", str(rpm)]).stdout
    fakebin = tmp_path / "bin"
    fakebin.mkdir()
    if isula_root:
        isula = fakebin / "isula"
        isula.write_text("#!/bin/sh\n[ \"$1\" = info ] || exit 1\n"
                         "printf 'Containers: 0\\n Running: 0\\n'\n"
                         f"printf 'iSulad Root Dir: {isula_root}\\nTotal Memory: 1 GB\\n'\n")
        isula.chmod(0o755)
    (tmp_path / "post.sh").write_text(post)
    spec = (REPO / "hookspec.json").read_text()
    (tmp_path / "hookspec.json").write_text(spec)
    script = f"""set -e
mount -t tmpfs sctpost /var/lib
mkdir -p /var/lib/isulad/hooks
cp {tmp_path}/hookspec.json /var/lib/isulad/hooks/hookspec.json
PATH={fakebin}:/usr/sbin:/usr/bin:/sbin:/bin sh {tmp_path}/post.sh
find /var/lib -name hookspec.json | sort
for f in $(find /var/lib -name hookspec.json); do cmp "$f" {tmp_path}/hookspec.json; done
"""
    proc = run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script])
    found = proc.stdout.split("\n")
    expect = ["/var/lib/isulad/hooks/hookspec.json"]
    if isula_root == "/var/lib/sctgraph/isulad":
        expect = ["/var/lib/isulad/hooks/hookspec.json",
                  "/var/lib/sctgraph/isulad/hooks/hookspec.json"]
        assert f"iSulad Root Dir is {isula_root}" in proc.stdout
    assert [line for line in found if line.startswith("/")] == expect


@needs_rpm
def test_rpm_payload_runs(rpm, tmp_path):
    """Unpacked, the programs say /usr/bin/python3, the packaged code imports
    and answers --help, and the hook specs are the repository's."""
    root = tmp_path / "root"
    root.mkdir()
    payload = subprocess.run(["rpm2archive", "-"], stdin=rpm.open("rb"), capture_output=True,
                             timeout=scaled(60), check=True).stdout
    tar_path = tmp_path / "payload.tgz"
    tar_path.write_bytes(payload)
    with tarfile.open(tar_path) as tar:
        if hasattr(tarfile, "tar_filter"):  # extraction filters: 3.12, 3.11.4, 3.10.12, 3.9.17
            tar.extractall(root, filter="tar")
        else:  # e.g. Debian 12's 3.11.2; the archive is the RPM just built here
            tar.extractall(root)
    for prog in PROGRAMS:
        script = root / "usr" / "bin" / prog
        assert os.access(script, os.X_OK), prog
        assert script.read_text().splitlines()[0] == "#!/usr/bin/python3", prog
    (site,) = root.glob("usr/lib/python3*/site-packages")
    env = {**os.environ, "PYTHONPATH": str(site)}
    where = run([sys.executable, "-c", "import syscontainer_tools; print(syscontainer_tools.__file__)"],
                env=env).stdout
    assert where.startswith(str(site)), where
    for prog in ("syscontainer-tools", "lxcfs-toolkit"):
        proc = run([sys.executable, str(root / "usr" / "bin" / prog), "--help"], env=env)
        assert "Usage:" in proc.stdout
    assert (root / "var/lib/isulad/hooks/hookspec.json").read_text() == (REPO / "hookspec.json").read_text()
    assert ((root / "usr/lib/systemd/system/lxcfs-toolkit.service").read_text()
            == (REPO / "systemd/lxcfs-toolkit.service").read_text())
    assert ((root / "usr/share/bash-completion/completions/syscontainer-tools").read_text()
            == (REPO / "completion/syscontainer-tools.bash").read_text())
    installer = next(site.glob("syscontainer_tools-*.dist-info")) / "INSTALLER"
    assert installer.read_text().strip() == "rpm"
