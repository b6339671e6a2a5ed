#!/usr/bin/env bash
# Build the wheel and sdist (python -m build) and, if rpmbuild is there, the
# RPM from that sdist (packaging/syscontainer-tools.spec), all into dist/ or
# the directory given as $1.
#   PYTHON   interpreter with `build` installed (default .venv/bin/python);
#            also the __python3 the spec's %build/%install run (the spec
#            rewrites the console scripts' shebangs to /usr/bin/python3)
#   NO_RPM=1 skip the RPM
# BuildRequires are openEuler package names, so rpmbuild runs with --nodeps.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=${1:-dist}
mkdir -p "$out"
out=$(cd "$out" && pwd)
py=${PYTHON:-$root/.venv/bin/python}
py=$(command -v "$py") || { echo "build-packages.sh: no interpreter $py" >&2; exit 1; }
case $py in /*) ;; *) py=$root/$py ;; esac

spec=packaging/syscontainer-tools.spec
version=$(sed -n 's/^Version:[[:space:]]*//p' "$spec")
pyver=$(sed -n 's/^version = "\(.*\)"$/\1/p' pyproject.toml)
if [ "$version" != "$pyver" ]; then
    echo "build-packages.sh: $spec has Version $version, pyproject.toml $pyver" >&2
    exit 1
fi

work=$(mktemp -d /tmp/syscontainer-tools-build.XXXXXX)
trap 'rm -rf "$work"' EXIT

echo "== wheel + sdist"
# From a clean copy of the tree: setuptools would otherwise add whatever a
# stale *.egg-info/SOURCES.txt lists to the sdist (hiding a MANIFEST.in gap),
# and build/ would land in the checkout.  Everything .gitignore lists stays
# out (the VM lanes' .vm holds the distribution roots: gigabytes;
# tests/system/test_packaging.py checks the two lists agree).
mkdir "$work/src"
tar -C "$root" -c --exclude=./.git --exclude=./.venv --exclude=./dist --exclude=./build \
    --exclude='*.egg-info' --exclude=__pycache__ --exclude=.pytest_cache \
    --exclude=.mypy_cache --exclude=.ruff_cache --exclude=./.vm . | tar -C "$work/src" -x
# With the interpreter's own setuptools when it is 70.1 or newer (pyproject's
# build-system wants 64, but only from 69.3 is the sdist named as PEP 625
# says, and from 70.1 no wheel package is needed): no index needed (the VM
# roots have none).  Otherwise build fetches one into an isolated environment.
iso=()
"$py" -c 'import setuptools, sys; sys.exit(tuple(map(int, setuptools.__version__.split(".")[:2])) < (70, 1))' \
    2>/dev/null && iso=(--no-isolation)
"$py" -m build "${iso[@]}" --outdir "$out" "$work/src" >"$out/build.log" 2>&1 \
    || { cat "$out/build.log" >&2; exit 1; }
sdist=$out/syscontainer_tools-$version.tar.gz
wheel=$out/syscontainer_tools-$version-py3-none-any.whl
ls -l "$sdist" "$wheel"

if [ -n "${NO_RPM:-}" ]; then
    exit 0
fi
if ! command -v rpmbuild >/dev/null; then
    echo "build-packages.sh: rpmbuild not found, no RPM (install the rpm package)" >&2
    exit 1
fi

echo "== rpm"
top=$work/rpm
mkdir -p "$top"/{BUILD,BUILDROOT,RPMS,SOURCES,SPECS,SRPMS}
cp "$sdist" "$top/SOURCES/"
cp "$spec" "$top/SPECS/"
rpmbuild -bb --nodeps \
    --define "_topdir $top" \
    --define "__python3 $py" \
    "$top/SPECS/$(basename "$spec")" >"$out/rpmbuild.log" 2>&1 \
    || { tail -40 "$out/rpmbuild.log" >&2; exit 1; }
find "$top/RPMS" -name '*.rpm' -exec cp {} "$out/" \;
ls -l "$out"/*.rpm
