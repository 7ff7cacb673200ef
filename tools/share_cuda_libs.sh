#!/usr/bin/env bash
# Usage: share_cuda_libs.sh SRC_VENV DST_VENV
# Hard-links the CUDA libraries that PyPI's torch pulls in (the nvidia-* wheels, about 3.2 GB) from
# SRC_VENV (.venv, Python 3.11) into DST_VENV (.venv310, Python 3.10) before DST_VENV's pip runs, so
# that pip finds them installed at the versions torch pins and writes no second copy: CI's disk holds
# both venvs. Those wheels are tagged py3-none (no interpreter part) and their RECORD paths are
# relative to site-packages, so the same files serve both interpreters and pip can still replace or
# uninstall them in either venv without touching the other's links.
# Does nothing (pip then installs them as usual) where SRC_VENV has none, DST_VENV already has its
# own, or the two venvs are on different filesystems (hard links cannot cross them).
set -uo pipefail
src_venv=$1
dst_venv=$2
site_packages() { "$1/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'; }
[ -x "$src_venv/bin/python" ] && [ -x "$dst_venv/bin/python" ] || exit 0
src=$(site_packages "$src_venv") || exit 0
dst=$(site_packages "$dst_venv") || exit 0
[ -d "$src/nvidia" ] || exit 0
[ -e "$dst/nvidia" ] && exit 0
shopt -s nullglob
if cp -al "$src/nvidia" "$dst/nvidia" 2>/dev/null; then
  for dist_info in "$src"/nvidia_*.dist-info; do
    cp -al "$dist_info" "$dst/"
  done
  echo "share_cuda_libs: hard-linked $(ls -d "$src"/nvidia_*.dist-info | wc -l) CUDA wheels from $src_venv into $dst_venv"
else
  rm -rf "$dst/nvidia"
fi
exit 0
