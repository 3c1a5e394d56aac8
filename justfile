# Tollgate tasks. `just --list` shows them.

# Run the service (sandbox processor, SQLite, development config).
run *args:
    cargo run -p billing-app -- {{args}}

# Run every test, starting the services they need (PostgreSQL, …).
test *args:
    scripts/test {{args}}

# The hot paths under load beside their references, as ratios from one run (docs/BENCHMARKS.md).
bench:
    scripts/bench

# Formatting check, clippy with warnings as errors, and the domain dependency rule (as in CI).
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings
    scripts/check-domain-deps

# Format the whole workspace.
fmt:
    cargo fmt --all

# Validate the settings and the plan catalog without starting anything.
check-config:
    cargo run -p billing-app -- check-config

# Print the plan catalog.
plans:
    cargo run -p billing-app -- plans

# The full CI pipeline.
ci:
    .ci/run
