# PostgreSQL for scripts/test and scripts/bench: installed with apt-get when missing, started, and reachable
# without a password from localhost. Needs lib/common.sh. `ensure_postgres` exports TEST_POSTGRES_URL.
# shellcheck shell=bash

# ---------------------------------------------------------------------------------------------------------------
# PostgreSQL: the store and e2e tests run against it as well as SQLite.

DEFAULT_POSTGRES_URL="postgres://postgres@127.0.0.1:5432/postgres"
pg_installed_here=false

pg_version() { ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1; }

pg_ready() { pg_isready -q -h 127.0.0.1 -p 5432 -t 2 >/dev/null 2>&1; }

install_postgres() {
    command -v apt-get >/dev/null 2>&1 ||
        die "PostgreSQL is not installed and apt-get is unavailable: install PostgreSQL and start it on 127.0.0.1:5432"
    log "PostgreSQL is not installed: installing it with apt-get"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    pg_installed_here=true
}

start_postgres() {
    local version
    version="$(pg_version)"
    [[ -n "$version" ]] || die "PostgreSQL is installed but /etc/postgresql has no cluster (create one: pg_createcluster <version> main)"
    log "starting PostgreSQL $version/main"
    # A non-zero exit here (e.g. "already running") is judged by the readiness wait below, not by this command.
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
}

wait_for_postgres() {
    local waited=0
    until pg_ready; do
        if ((waited >= 30)); then
            local version
            version="$(pg_version)"
            local server_log="/var/log/postgresql/postgresql-$version-main.log"
            if [[ -n "$version" && -r "$server_log" ]]; then
                echo "--- last lines of $server_log:" >&2
                tail -n 20 "$server_log" >&2
            fi
            die "PostgreSQL is not accepting connections on 127.0.0.1:5432 after 30 s; the PostgreSQL tests cannot run"
        fi
        sleep 1
        waited=$((waited + 1))
    done
}

# Debian's default pg_hba.conf asks for a password over TCP. On a cluster this script installed, or on a
# throwaway CI machine, let the postgres user in from localhost without one; elsewhere, say what to do.
allow_passwordless_localhost() {
    command -v psql >/dev/null 2>&1 || return 0 # the tests themselves will say so if they cannot log in
    psql "$TEST_POSTGRES_URL" -Atqc 'select 1' >/dev/null 2>&1 && return 0
    if [[ "$pg_installed_here" != true && "${CI:-}" != true ]]; then
        die "cannot log in with $TEST_POSTGRES_URL. Either set TEST_POSTGRES_URL to a URL that works (a superuser, e.g. postgres://postgres:PASSWORD@127.0.0.1:5432/postgres), or allow 'host all postgres 127.0.0.1/32 trust' in pg_hba.conf"
    fi
    local version hba
    version="$(pg_version)"
    hba="/etc/postgresql/$version/main/pg_hba.conf"
    log "allowing passwordless TCP logins of the postgres user from localhost ($hba)"
    as_root sh -c "{ printf '%s\n' '# Added by tollgate scripts/test: passwordless localhost logins for the test database.' \
        'host all postgres 127.0.0.1/32 trust' 'host all postgres ::1/128 trust'; cat '$hba'; } > '$hba.tollgate' \
        && cat '$hba.tollgate' > '$hba' && rm -f '$hba.tollgate'"
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main reload
    psql "$TEST_POSTGRES_URL" -Atqc 'select 1' >/dev/null ||
        die "still cannot log in with $TEST_POSTGRES_URL after editing $hba"
}

ensure_postgres() {
    if [[ -n "${TEST_POSTGRES_URL:-}" ]]; then
        # A server chosen by the caller is theirs to run; only check that it answers.
        log "using TEST_POSTGRES_URL from the environment"
        if command -v pg_isready >/dev/null 2>&1; then
            pg_isready -q -d "$TEST_POSTGRES_URL" -t 10 ||
                die "TEST_POSTGRES_URL is set but that PostgreSQL is not accepting connections"
        fi
        return 0
    fi
    export TEST_POSTGRES_URL="$DEFAULT_POSTGRES_URL"
    if ! pg_ready; then
        if ! command -v pg_ctlcluster >/dev/null 2>&1 || ! command -v pg_isready >/dev/null 2>&1 ||
            [[ -z "$(pg_version)" ]]; then
            install_postgres
        fi
        pg_ready || start_postgres
        wait_for_postgres
    fi
    allow_passwordless_localhost
    log "PostgreSQL ready at $TEST_POSTGRES_URL"
}
