#!/usr/bin/env bash
# Unpacks Debian's prometheus package (prometheus + promtool) into a
# git-ignored cache, so the tests run a real Prometheus server against the
# local control plane and check the chart's rules with promtool. The
# package is downloaded with `apt-get download` and unpacked with
# `dpkg-deb -x`: nothing is installed system-wide and no service starts.
#
# Output: _output/tools/prometheus-${PROMETHEUS_VERSION}/usr/bin/{prometheus,promtool}
# (override the folder with TIERRA_TOOLS). Idempotent: binaries that report
# the wanted version are kept; FORCE=1 unpacks again. PROMETHEUS_DEB=<file.deb>
# unpacks that package instead of downloading one.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TOOLS="${TIERRA_TOOLS:-${ROOT}/_output/tools}"
PROMETHEUS_VERSION="${PROMETHEUS_VERSION:-2.42.0}"
OUT="${TOOLS}/prometheus-${PROMETHEUS_VERSION}"
BINS=(prometheus promtool)

log() { printf '%s [prometheus] %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { log "ERROR: $*" >&2; exit 1; }

# current succeeds when every binary runs and reports the wanted version.
current() {
	local b
	for b in "${BINS[@]}"; do
		[[ -x "${OUT}/usr/bin/${b}" ]] || return 1
		"${OUT}/usr/bin/${b}" --version 2>&1 | grep -q "version ${PROMETHEUS_VERSION}[ +]" || return 1
	done
}

if [[ "${FORCE:-0}" != 1 ]] && current; then
	log "prometheus ${PROMETHEUS_VERSION}: up to date (${OUT})"
	exit 0
fi

mkdir -p "${TOOLS}"
tmp="$(mktemp -d "${TOOLS}/.prometheus.XXXXXX")"
trap 'rm -rf "${tmp}"' EXIT

# download fetches the candidate prometheus .deb into ${tmp}; it refreshes
# the package lists once (as root) when apt does not know the package yet.
download() {
	command -v apt-get >/dev/null ||
		die "apt-get not found: this needs Debian's prometheus package (or PROMETHEUS_DEB=<prometheus_${PROMETHEUS_VERSION}*.deb>)"
	if ! apt-cache show prometheus >/dev/null 2>&1; then
		[[ "$(id -u)" == 0 ]] ||
			die "apt does not know the prometheus package; run 'apt-get update' as root (or set PROMETHEUS_DEB)"
		log "apt-get update (the package lists lack prometheus)…"
		apt-get update -qq || die "apt-get update failed"
	fi
	local candidate
	candidate="$(apt-cache policy prometheus | awk '/Candidate:/ {print $2}')"
	[[ "${candidate}" == "${PROMETHEUS_VERSION}"* ]] ||
		die "apt offers prometheus ${candidate:-<none>}, want ${PROMETHEUS_VERSION} (set PROMETHEUS_VERSION, or PROMETHEUS_DEB)"
	# As root, apt drops to user _apt, which cannot write our private temp dir.
	local sandbox=""
	[[ "$(id -u)" != 0 ]] || sandbox="-o APT::Sandbox::User=root"
	log "downloading Debian's prometheus ${candidate} (~19 MiB; nothing is installed)…"
	(cd "${tmp}" && apt-get download -q ${sandbox} "prometheus=${candidate}") || die "apt-get download prometheus=${candidate} failed"
}

start=${SECONDS}
deb="${PROMETHEUS_DEB:-}"
if [[ -z "${deb}" ]]; then
	download
	deb="$(ls "${tmp}"/prometheus_*.deb)"
fi
[[ -f "${deb}" ]] || die "no package at ${deb}"
command -v dpkg-deb >/dev/null || die "dpkg-deb not found (package dpkg)"

log "unpacking $(basename "${deb}")…"
dpkg-deb -x "${deb}" "${tmp}/root" || die "dpkg-deb -x ${deb} failed"
for b in "${BINS[@]}"; do
	[[ -x "${tmp}/root/usr/bin/${b}" ]] || die "$(basename "${deb}") has no usr/bin/${b}"
	# The package's Depends lists only libc6 as a shared library; say which
	# library is missing if that ever changes.
	if command -v ldd >/dev/null && missing="$(ldd "${tmp}/root/usr/bin/${b}" 2>/dev/null | grep 'not found')"; then
		die "${b} needs shared libraries this machine lacks (apt-get install them):
${missing}"
	fi
done
rm -rf "${OUT}"
mv "${tmp}/root" "${OUT}"
current || die "${OUT}/usr/bin/prometheus does not report version ${PROMETHEUS_VERSION}: $("${OUT}/usr/bin/prometheus" --version 2>&1 | head -1)"
log "prometheus done in $((SECONDS - start)) s: $("${OUT}/usr/bin/prometheus" --version 2>&1 | head -1)"
