#!/usr/bin/env bash
# Check a built image where containers cannot run (no OCI runtime, as on CI VMs whose
# cgroup setup refuses crun): mount the image's file system, run `strongroom server` from
# it in a chroot as the image's user (uid 10001) on loopback, and talk to it from the
# host with the AWS CLI and `strongroom encrypt`/`decrypt`. Needs root, podman, and the
# host's checkout installed (`. .venv/bin/activate`) for the client side.
# Usage: bash deploy/check-image.sh [IMAGE]   (default registry.example.com/strongroom:0.1.0)
set -euo pipefail
image="${1:-registry.example.com/strongroom:0.1.0}"
port="${PORT:-18999}"
root="$(podman image mount "$image")"
work="$(mktemp -d)"
cleanup() {
  [ -n "${server:-}" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
  umount "$root/tmp" "$root/proc" "$root/dev" 2>/dev/null || true
  podman image unmount "$image" >/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
mount -t tmpfs -o mode=1777 tmpfs "$root/tmp"
mount --bind /proc "$root/proc"
mount --bind /dev "$root/dev"
run_in_image=(chroot --userspec=10001:10001 "$root" /usr/bin/env PATH=/opt/strongroom/bin:/usr/bin:/bin HOME=/tmp)
in_image() { "${run_in_image[@]}" "$@"; }

in_image strongroom k8s-plugin --help >/dev/null
in_image strongroom mesh agent --help >/dev/null
# chroot and env exec each other: $! is the server itself
"${run_in_image[@]}" strongroom server --data-dir /tmp/data --host 127.0.0.1 --port "$port" \
  >"$work/server.log" 2>&1 &
server=$!
for _ in $(seq 150); do grep -q "serving" "$work/server.log" 2>/dev/null && break; sleep 0.2; done
cat "$work/server.log"
grep -q "serving" "$work/server.log" || { echo "FAILED: the server did not start" >&2; exit 1; }
eval "$(in_image strongroom env --data-dir /tmp/data | sed "s#/tmp/data#$root/tmp/data#g")"
cd "$work"
key=$(aws kms create-key --description image-check --query KeyMetadata.KeyId --output text)
echo "image check" > plain
strongroom encrypt -k "$key" plain sealed
[ "$(strongroom decrypt sealed -)" = "image check" ]
echo "OK: $image serves the KMS API (key $key); k8s-plugin and mesh agent start"
