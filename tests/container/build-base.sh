#!/bin/sh
# Makes local stand-ins for the Debian base images the Containerfile builds
# on, for machines that cannot pull from Docker Hub but can reach a Debian
# package mirror:
#
#   localhost/debian:12        debootstrap --variant=minbase bookworm (what
#                              the official debian:12 image is made of)
#   localhost/debian:12-slim   the same without documentation, manual pages
#                              and translations, and with dpkg told to leave
#                              them out of later installs (as debian:12-slim)
#
# usage: build-base.sh CACHE_DIR [PODMAN_OPTION]...
#
# The root filesystems are kept in CACHE_DIR as tarballs named after the
# day (UTC) they were made (and this script's version), so debootstrap
# (about a minute and 40 MB from the mirror; the tarballs take 210 MB) runs
# at most once a day; older tarballs are removed.
# They are then imported with `podman import`, given the PODMAN_OPTIONs
# (e.g. --root DIR --runroot DIR --storage-driver vfs for private storage).
# Needs root (debootstrap), debootstrap, the debian-archive-keyring and
# podman. Then:
#
#   buildah bud --format docker --build-arg BASE=localhost/debian:12 \
#       --build-arg RUNTIME_BASE=localhost/debian:12-slim -t berth .
#
# The mirror is the first one apt uses for bookworm on this machine
# (/etc/apt/sources.list and /etc/apt/sources.list.d/*.list, *.sources),
# or $DEBIAN_MIRROR; apt's HTTP proxy, if any, is used too.
set -eu

[ $# -ge 1 ] || { echo "usage: $0 CACHE_DIR [PODMAN_OPTION]..." >&2; exit 2; }
cache=$1
shift
suite=bookworm

die() { echo "build-base: $*" >&2; exit 1; }

# The URI of the first enabled "deb" source for $suite (not -updates, -security).
find_mirror() {
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -r "$f" ] || continue
		awk -v suite="$suite" '
			/^[ \t]*deb[ \t]/ {
				i = 2
				if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
				if ($(i + 1) == suite) { print $i; exit }
			}' "$f"
	done
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -r "$f" ] || continue
		awk -v suite="$suite" '
			function flush() {
				if (types ~ /(^| )deb( |$)/ && (" " suites " ") ~ (" " suite " ") && enabled != "no" && uris != "") {
					split(uris, u, " "); print u[1]; found = 1; exit
				}
				types = uris = suites = enabled = ""
			}
			/^[ \t]*#/ { next }
			/^[ \t]*$/ { flush(); next }
			{
				key = tolower($1); sub(/:$/, "", key)
				val = $0; sub(/^[^:]*:[ \t]*/, "", val)
				if (key == "types") types = val
				else if (key == "uris") uris = val
				else if (key == "suites") suites = val
				else if (key == "enabled") enabled = tolower(val)
			}
			END { if (!found) flush() }' "$f"
	done
}

mirror=${DEBIAN_MIRROR:-$(find_mirror | head -n 1)}
[ -n "$mirror" ] || die "no Debian mirror for $suite in the apt sources; set DEBIAN_MIRROR"

if [ -z "${http_proxy:-}" ] && command -v apt-config >/dev/null; then
	eval "$(apt-config shell http_proxy Acquire::http::Proxy)"
	[ -n "${http_proxy:-}" ] && export http_proxy
fi

command -v debootstrap >/dev/null || die "debootstrap is not installed (apt-get install debootstrap)"
command -v podman >/dev/null || die "podman is not installed"

mkdir -p "$cache"
day=$(date -u +%Y%m%d)
# A change to this script makes new tarballs too.
key=$day-$(sha256sum "$0" | cut -c1-8)
full="$cache/debian-$suite-minbase-$key.tar"
slim="$cache/debian-$suite-slim-$key.tar"

if [ ! -s "$full" ] || [ ! -s "$slim" ]; then
	work=$(mktemp -d "$cache/rootfs.XXXXXX")
	trap 'rm -rf "$work"' EXIT
	rootfs="$work/rootfs"
	echo "build-base: debootstrap $suite from $mirror (once a day, about a minute)" >&2
	# In a mount namespace of its own, so the /proc and /sys it mounts in
	# the target cannot outlive it.
	unshare --mount --propagation private \
		debootstrap --variant=minbase "$suite" "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 ||
		{ tail -n 30 "$work/debootstrap.log" >&2; die "debootstrap failed"; }
	# Nothing of this machine stays in the image: the container engine
	# provides these files. Package lists are fetched by whoever installs.
	rm -f "$rootfs/etc/resolv.conf" "$rootfs/etc/hostname"
	rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb \
		"$rootfs"/var/log/* "$rootfs"/tmp/* "$rootfs"/debootstrap
	# As in the official images: dpkg skips fsync (a container build is
	# thrown away on a crash anyway), apt keeps no .deb files, no
	# translations, and compressed package lists.
	echo 'force-unsafe-io' >"$rootfs/etc/dpkg/dpkg.cfg.d/docker-apt-speedup"
	cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<-'EOF'
	DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
	APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
	Dir::Cache::pkgcache "";
	Dir::Cache::srcpkgcache "";
	EOF
	echo 'Acquire::Languages "none";' >"$rootfs/etc/apt/apt.conf.d/docker-no-languages"
	echo 'Acquire::GzipIndexes "true";' >"$rootfs/etc/apt/apt.conf.d/docker-gzip-indexes"
	tar --numeric-owner --xattrs --xattrs-include='*' -C "$rootfs" -cf "$work/full.tar" .

	cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker" <<-'EOF'
	# Slim image: documentation, manual pages and translations are left out.
	path-exclude /usr/share/doc/*
	path-include /usr/share/doc/*/copyright
	path-exclude /usr/share/man/*
	path-exclude /usr/share/groff/*
	path-exclude /usr/share/info/*
	path-exclude /usr/share/lintian/*
	path-exclude /usr/share/linda/*
	path-exclude /usr/share/locale/*
	path-include /usr/share/locale/locale.alias
	EOF
	find "$rootfs/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
	find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
	for d in man groff info lintian linda; do
		rm -rf "${rootfs:?}/usr/share/$d"/*
	done
	find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
	tar --numeric-owner --xattrs --xattrs-include='*' -C "$rootfs" -cf "$work/slim.tar" .

	mv "$work/full.tar" "$full"
	mv "$work/slim.tar" "$slim"
	rm -rf "$work"
	trap - EXIT
	# Earlier days' tarballs.
	for old in "$cache"/debian-$suite-*.tar; do
		[ "$old" = "$full" ] || [ "$old" = "$slim" ] || rm -f "$old"
	done
fi

# The configuration of the official images.
for pair in "debian:12 $full" "debian:12-slim $slim"; do
	name=${pair%% *}
	tarball=${pair#* }
	podman "$@" import \
		--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
		--change 'CMD ["bash"]' \
		--message "debootstrap --variant=minbase $suite ($day)" \
		"$tarball" "localhost/$name" >/dev/null
	echo "build-base: localhost/$name from $tarball" >&2
done
