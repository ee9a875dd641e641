#!/usr/bin/env bash
# Install the Debian 12 packages needed to build and test (idempotent). Uses sudo when not root.
set -euo pipefail
cd "$(dirname "$0")/.."
pkgs=$(cat scripts/deps-debian.txt)
missing=$(dpkg-query -W -f='${Package} ${Status}\n' $pkgs 2>/dev/null | awk '$NF != "installed" {print $1}' || true)
# dpkg-query prints nothing for never-installed packages: compare counts too
if [ -z "$missing" ] && [ "$(dpkg-query -W -f='${Status}\n' $pkgs 2>/dev/null | grep -c ' installed$')" -eq "$(echo $pkgs | wc -w)" ]; then
  exit 0
fi
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends $pkgs >/dev/null
