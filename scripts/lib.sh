# Shared by the project's scripts: bring the npm dependencies a fresh clone lacks.
# Sourced, not run.

# npm ci when node_modules is missing or older than the lock file.
ensure_node_modules() {
  if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    echo "installing npm dependencies (npm ci; better-sqlite3 compiles SQLite, about a minute)" >&2
    npm ci --no-audit --no-fund >&2
  fi
}

# `npm run build`: tsc to dist/ (the screen's page files copied beside its module), then the bundle in dist/station/
# that is the command, made executable (scripts/bundle.mjs).
build() {
  npm run --silent build
}
