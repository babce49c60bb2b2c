#!/bin/sh
# Installs hqd's systemd units and what they need into the root file system
# ROOT: the one installer of the host (user-data runs it with ROOT=/) and of
# make test-target's VM. The binary, ROOT/usr/local/bin/hqd, is not its
# business. Idempotent: run it again after any change to the units.
# Usage: deploy/systemd/install.sh ROOT
set -eu

ROOT=${1:?usage: install.sh ROOT (/ on the host)}
ROOT=${ROOT%/}          # "/" becomes "": paths below start with /
here=$(cd "$(dirname "$0")" && pwd)

# 1. Every unit kept beside this script, as shipped.
install -d -m 0755 "$ROOT/etc/systemd/system"
units=
for f in "$here"/*.service "$here"/*.socket "$here"/*.slice; do
	[ -e "$f" ] || continue
	install -m 0644 "$f" "$ROOT/etc/systemd/system/"
	units="$units ${f##*/}"
done

# 2. The system user and group hqd, made now rather than at next boot.
install -d -m 0755 "$ROOT/etc/sysusers.d" "$ROOT/etc/tmpfiles.d"
cat >"$ROOT/etc/sysusers.d/hqd.conf" <<'EOF'
# hqd runs as its own system user (deploy/systemd/install.sh).
u hqd - "hqd daemon" /var/lib/hqd /usr/sbin/nologin
EOF
if command -v systemd-sysusers >/dev/null; then
	systemd-sysusers --root="$ROOT/" "$ROOT/etc/sysusers.d/hqd.conf"
elif ! grep -q '^hqd:' "$ROOT/etc/passwd"; then
	useradd --root "$ROOT/" --system --user-group --home-dir /var/lib/hqd \
		--no-create-home --shell /usr/sbin/nologin hqd
fi

# 3. Its directories: state, settings, and the lake volume's mount point
#    (the unit's ReadWritePaths= needs /srv/lake to exist).
cat >"$ROOT/etc/tmpfiles.d/hqd.conf" <<'EOF'
# hqd's directories (deploy/systemd/install.sh).
d /var/lib/hqd 0700 hqd hqd -
d /etc/hqd     0750 root hqd -
d /srv/lake    0755 hqd hqd -
EOF
systemd-tmpfiles --root="$ROOT/" --create "$ROOT/etc/tmpfiles.d/hqd.conf"

# 4. The settings file the unit reads, empty until someone fills it.
if [ ! -e "$ROOT/etc/hqd/hqd.env" ]; then
	gid=$(awk -F: '$1 == "hqd" { print $3 }' "$ROOT/etc/group")
	install -m 0640 -o 0 -g "$gid" /dev/null "$ROOT/etc/hqd/hqd.env"
fi

# 5. Enabled: hqd.service and every socket (templates start through them).
enable=
for u in $units; do
	case $u in hqd.service | *.socket) enable="$enable $u" ;; esac
done
# shellcheck disable=SC2086 # word splitting wanted: one unit per word
systemctl --quiet --root="$ROOT/" enable $enable
# On a running host, systemd reads the new units now (user-data starts hqd).
if [ -z "$ROOT" ] && [ -d /run/systemd/system ]; then
	systemctl daemon-reload
fi
