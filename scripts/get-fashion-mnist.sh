#!/bin/sh
# Fetch the full Fashion-MNIST (Debian package dataset-fashion-mnist) and convert it to PNG image
# folders under data/fashion-mnist/{train,test} (git-ignored). Idempotent: a second run is a no-op.
# Usage: scripts/get-fashion-mnist.sh [OUT_DIR]   (needs root or sudo only to install the package)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-"$(cd "$here/.." && pwd)/data/fashion-mnist"}
src=/usr/share/datasets/fashion-mnist

if [ ! -f "$src/train-images-idx3-ubyte.gz" ]; then
  echo "installing dataset-fashion-mnist (Debian package)" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update
  $sudo apt-get install -y --no-install-recommends dataset-fashion-mnist
fi
exec python3 "$here/fmnist_to_folders.py" --full "$out" --src "$src"
