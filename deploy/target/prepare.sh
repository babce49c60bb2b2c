#!/usr/bin/env bash
# The inputs of make test-target (deploy/target), installed and cached on
# first use, never by hand: the host tools (apt, as root), Debian's 6.1
# cloud kernel and a bookworm root filesystem with systemd for ARCH.
# Usage: deploy/target/prepare.sh amd64|arm64
# Prints KERNEL=, MODULES= and ROOTFS= lines (paths under the cache) on stdout; talks on stderr.
set -euo pipefail

ARCH=${1:-amd64}
case $ARCH in amd64 | arm64) ;; *) echo "prepare.sh: ARCH is amd64 or arm64, not $ARCH" >&2 && exit 2 ;; esac

# The kernel's ABI is pinned: a new ABI is a deliberate change here. When
# Debian drops it from the mirror, `apt-cache search linux-image-6.1.0 cloud`
# names the current one (or set HQD_TARGET_KERNEL for a try).
KERNEL_PKG=${HQD_TARGET_KERNEL:-linux-image-6.1.0-57-cloud-$ARCH}
# What the VM runs besides hqd: systemd as init, the tools the checker
# calls (systemctl, journalctl, systemd-analyze, ps), kmod for the modules.
PACKAGES=systemd,systemd-sysv,udev,dbus,iproute2,curl,ca-certificates,procps,passwd,util-linux,jq,kmod
# The root filesystem is held in RAM: no documentation, manuals or locales.
EXCLUDES=('/usr/share/doc/*' '/usr/share/man/*' '/usr/share/info/*' '/usr/share/locale/*' '/usr/share/i18n/*')
# Packages come from where the host's apt takes them (its own sources).
SOURCES=()
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
  if [[ -s $f ]]; then SOURCES+=("$f"); fi
done

CACHE=${HQD_TARGET_CACHE:-$HOME/.cache/hqd/target}/$ARCH
mkdir -p "$CACHE"
say() { echo "prepare.sh: $*" >&2; }

# 1. Host tools, from the host's own (Debian bookworm) apt sources.
tools=(mmdebstrap cpio kmod)
if [[ $ARCH == amd64 ]]; then
  tools+=(qemu-system-x86)
else
  tools+=(qemu-system-arm qemu-user-static binfmt-support arch-test)
fi
missing=()
for p in "${tools[@]}"; do
  dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  [[ $(id -u) == 0 ]] || { say "installing ${missing[*]} needs root (apt-get)"; exit 1; }
  say "installing ${missing[*]} (apt)"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
if [[ $ARCH == arm64 ]]; then
  # mmdebstrap runs the arm64 packages' scripts through qemu-user-static.
  [[ -e /proc/sys/fs/binfmt_misc/register ]] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  [[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]] || update-binfmts --enable qemu-aarch64 >&2
  # apt-get download of an arm64 package.
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    dpkg --add-architecture arm64
    apt-get update -qq >&2
  fi
fi

# 2. The kernel and its modules (the VM loads overlay and the like from
#    them), indexed by depmod as the package's postinst would.
kdir=$CACHE/$KERNEL_PKG
if [[ ! -f $kdir/vmlinuz ]]; then
  say "fetching $KERNEL_PKG"
  tmp=$(mktemp -d) && chmod 0755 "$tmp" && { chown _apt "$tmp" 2>/dev/null || true; } # apt downloads as _apt
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && apt-get download -q "$KERNEL_PKG:$ARCH" >&2) || {
    say "cannot download $KERNEL_PKG; is it still on the mirror? (apt-get update; apt-cache search linux-image-6.1.0 cloud)"
    exit 1
  }
  dpkg-deb -x "$tmp"/*.deb "$tmp/x"
  rm -rf "$kdir" && mkdir -p "$kdir/lib"
  mv "$tmp/x/lib/modules" "$kdir/lib/modules"
  cp "$tmp"/x/boot/vmlinuz-* "$kdir/vmlinuz.part" && mv "$kdir/vmlinuz.part" "$kdir/vmlinuz"
  rm -rf "$tmp"
  trap - EXIT
fi
for k in "$kdir"/lib/modules/*; do
  [[ -f $k/modules.dep ]] || depmod -b "$kdir" "${k##*/}"
done

# 3. The root filesystem, keyed by everything that goes into it.
key=$( (printf '%s\n' "$ARCH" "$PACKAGES" "${EXCLUDES[@]}"; cat "${SOURCES[@]}") | sha256sum | cut -c1-12)
rootfs=$CACHE/root-$key.tar
if [[ ! -f $rootfs ]]; then
  say "building the $ARCH root filesystem with mmdebstrap (about a minute for amd64, longer for arm64)"
  opts=()
  for e in "${EXCLUDES[@]}"; do opts+=(--dpkgopt="path-exclude=$e"); done
  mmdebstrap --quiet --format=tar --variant=minbase --arch="$ARCH" --include="$PACKAGES" "${opts[@]}" \
    bookworm "$rootfs.part" "${SOURCES[@]}" >&2
  rm -f "$CACHE"/root-*.tar
  mv "$rootfs.part" "$rootfs"
fi

echo "KERNEL=$kdir/vmlinuz"
echo "MODULES=$kdir/lib/modules"
echo "ROOTFS=$rootfs"
