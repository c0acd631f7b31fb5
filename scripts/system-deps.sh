#!/usr/bin/env bash
# Install the system packages possim needs, when they are missing and this machine can install them.
#
#   scripts/system-deps.sh demo   libzbar0 (the pyzbar decoder)
#   scripts/system-deps.sh test   libzbar0, chromium (tests/web) and a running PostgreSQL at 127.0.0.1:5432
#
# Idempotent and quiet when everything is there. Installs with apt-get as root (or `sudo -n`), starts a
# stopped local PostgreSQL, and installs one (with a `test` database the suite can reach) when there is none.
# When it cannot, it prints one line saying what to install and exits non-zero: a run that would fail
# later for a missing package fails here, with the reason.
set -euo pipefail

what=${1:-test}
pg_host=127.0.0.1
pg_port=5432

say() { printf 'possim setup: %s\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo -n "$@"
    else
        return 1
    fi
}

can_apt() { command -v apt-get >/dev/null 2>&1 && as_root true 2>/dev/null; }

apt_updated=0
apt_install() {
    if [ "$apt_updated" -eq 0 ]; then
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
        apt_updated=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

have_zbar() { ldconfig -p 2>/dev/null | grep -q 'libzbar\.so\.0'; }
have_chromium() { [ -x /usr/bin/chromium ]; }
pg_up() { command -v pg_isready >/dev/null 2>&1 && pg_isready -q -h "$pg_host" -p "$pg_port"; }

missing=()
have_zbar || missing+=(libzbar0)
if [ "$what" = test ]; then
    # tests/web drive the system Chromium through Playwright (never a browser Playwright downloads).
    have_chromium || missing+=(chromium)
fi

if [ ${#missing[@]} -gt 0 ]; then
    if ! can_apt; then
        say "missing ${missing[*]}; install it as root: apt-get install -y --no-install-recommends ${missing[*]}"
        exit 1
    fi
    say "installing ${missing[*]} with apt-get"
    apt_install "${missing[@]}"
fi

[ "$what" = test ] || exit 0

# The store and ledger tests need PostgreSQL at 127.0.0.1:5432 with a database `test` (POSSIM_TEST_POSTGRES
# points them elsewhere; then this script leaves the server alone).
[ -z "${POSSIM_TEST_POSTGRES:-}" ] || exit 0
pg_up && exit 0

if ! command -v pg_ctlcluster >/dev/null 2>&1 || [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
    if ! can_apt; then
        say "no PostgreSQL at $pg_host:$pg_port; install and start one (apt-get install postgresql), or set POSSIM_TEST_POSTGRES"
        exit 1
    fi
    say "installing PostgreSQL with apt-get"
    apt_install postgresql
    fresh_install=1
else
    fresh_install=0
fi

version=$(ls /etc/postgresql | sort -V | tail -n 1)
if [ "$fresh_install" -eq 1 ]; then
    # Let the suite reach its own database over loopback without a password (nothing else changes).
    hba=/etc/postgresql/$version/main/pg_hba.conf
    grep -q '^host test all 127.0.0.1/32 trust' "$hba" ||
        as_root sed -i '1i host test all 127.0.0.1/32 trust\nhost test all ::1/128 trust' "$hba"
fi
say "starting PostgreSQL $version"
as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null || true
for _ in $(seq 1 30); do
    pg_up && break
    sleep 1
done
if ! pg_up; then
    say "PostgreSQL $version did not start on $pg_host:$pg_port; see /var/log/postgresql/"
    exit 1
fi
if [ "$fresh_install" -eq 1 ]; then
    user=$(id -un)
    as_root su postgres -c "psql -qc \"CREATE ROLE \\\"$user\\\" SUPERUSER LOGIN\"" 2>/dev/null || true
    as_root su postgres -c "createdb -O \"$user\" test" 2>/dev/null || true
fi
