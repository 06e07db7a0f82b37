#!/usr/bin/env bash
# Rebuild resources/{pretrain,datasets}/*.txt.xz from Debian bookworm packages (provenance: README.md).
# Needs apt access to the Debian archive and python3 (>= 3.10). Run from anywhere:
#   bash resources/make_resources.sh
# The package versions below are the ones the shipped files were built from; if the archive has moved on,
# fetch those exact .debs from https://snapshot.debian.org/ (or set the variables to "" to take the
# current candidates) and compare the result with the sha256 sums in README.md.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
PKGS=(
    "bible-kjv=4.38"                      # the reader binary: bible-kjv-text ships EC02-compressed data
    "bible-kjv-text=4.38"
    "dict-devil=1.0-13.1"
    "dict-jargon=4.4.7-3.1"
    "python3.11-doc=3.11.2-6+deb12u9"
    "python-biopython-doc=1.80+dfsg-4"
    "libpython3.11-minimal=3.11.2-6+deb12u8"
    "libpython3.11-stdlib=3.11.2-6+deb12u8"
)

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
apt-get download "${PKGS[@]}"
for deb in ./*.deb; do
    dpkg -x "$deb" root
done
sha256sum ./*.deb

python3 "$HERE/make_resources.py" "$WORK/root" "$HERE"
cd "$HERE"
sha256sum pretrain/*.txt.xz datasets/*.txt.xz
