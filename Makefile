# StreamVault — the two commands: `make up` (run the suite) and `make test` (run the tests).
SHELL := /bin/bash
PY := .venv/bin/python

.PHONY: up down test test-fast setup migrate rotate-key fsck bench-processing clean backup restore

setup:
	@bash scripts/setup.sh

up: setup
	@$(PY) -m stack up

down:
	@$(PY) -m stack down

# Two workers, a stack each (README "Tests"): much of the suite waits on real-time playback,
# browsers and services rather than computing. The slowest tests are listed at the end;
# every test's time is in var/test/junit.xml (`python scripts/test_times.py` sums it per module).
test: setup
	@$(PY) -m pytest -n 2 --dist loadfile --durations=25 --junitxml=var/test/junit.xml -m "not reliability and not forensics_accuracy"

# The forensic detector's accuracy against attacked copies (re-encoded, cropped, rescaled,
# dark and grainy, near-duplicate videos): minutes of ffmpeg, run by CI after `make test`.
.PHONY: test-forensics
test-forensics: setup
	@SV_KEEP_SCREENSHOTS=1 $(PY) -m pytest -m forensics_accuracy --durations=10

# The reliability suite (issue #18): stacks of its own whose processes and dependencies are
# killed and stopped on purpose (README "Tests"). Run by CI after `make test`.
.PHONY: test-reliability
test-reliability: setup
	@SV_KEEP_SCREENSHOTS=1 $(PY) -m pytest -m reliability --durations=10

# Without the browser and heavy cases, for a quick loop while coding.
test-fast: setup
	@$(PY) -m pytest -m "not browser and not heavy and not reliability and not forensics_accuracy"

migrate: setup
	@$(PY) database/migrate.py

rotate-key:
	@set -a; source var/dev/env/auth.env; set +a; cd auth-svc && ../$(PY) -m flask --app "auth_svc:create_app()" rotate-key

# Consistency check of the running `make up` stack (docs/operations.md "Consistency check"):
# make fsck [FSCK_ARGS="--json --repair --grace 600"]
fsck:
	@set -a; source var/dev/env/fsck.env; set +a; cd watermark-svc && ../$(PY) -m watermark_svc.fsck $(FSCK_ARGS)

# A consistent snapshot of the running suite (database, objects, secrets encrypted under a
# passphrase) into var/backups/, and back onto an empty stack (docs/operations.md
# "Backup and restore"): `make restore FROM=var/backups/streamvault-dev-…` (FORCE=1 empties
# a stack that has data first).
backup: setup
	@$(PY) -m stack.backup backup $(BACKUP_ARGS)

restore: setup
	@test -n "$(FROM)" || { echo "usage: make restore FROM=var/backups/streamvault-dev-<time> [FORCE=1]" >&2; exit 2; }
	@$(PY) -m stack.backup restore "$(FROM)" $(if $(FORCE),--force) $(RESTORE_ARGS)

bench-processing: setup
	@$(PY) bench/processing/run.py

clean:
	rm -rf var/test var/test-gw*

# The docker compose suite, built and run for real (engine, images, smoke, scaling,
# restart with data intact; cleans up with down -v). See docker/README.md.
.PHONY: test-compose
test-compose: setup
	@bash tests/compose/run.sh
