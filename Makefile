# backstop -- every target bootstraps a local virtual environment from pyproject.toml.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PROFILE ?= okx
OUT    ?= build/audit

.PHONY: audit report-pdf test typecheck prove bench clean vectors-release prove-parallel proof-cache-clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

## The main job: all proofs and the traceability audit on the default profile.
## PROOF_JOBS: proof processes (slowest first); proofs already checked by `make test` come from the verdict cache.
PROOF_JOBS ?= 2
audit: $(STAMP)
	$(BIN)/backstop audit --profile $(PROFILE) --out $(OUT) -j $(PROOF_JOBS)

## Optional: the audit report (make audit first) as $(OUT)/audit.pdf, through WeasyPrint (the
## `pdf` extra). WeasyPrint needs the system's Pango >= 1.44, which the project's machines have;
## the PDF shows every rule's details open (a browser's print keeps them folded).
$(VENV)/.pdf-installed: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[pdf]'
	touch $@
report-pdf: $(VENV)/.pdf-installed
	@test -f $(OUT)/audit.html || { echo "no $(OUT)/audit.html: run 'make audit' first" >&2; exit 2; }
	@$(BIN)/python -c "import weasyprint" 2>/dev/null || { echo "report-pdf: WeasyPrint cannot load the system's Pango (>= 1.44; Debian: libpango-1.0-0); print $(OUT)/audit.html from a browser instead" >&2; exit 2; }
	$(BIN)/python -c "import sys, weasyprint; weasyprint.HTML(sys.argv[1]).write_pdf(sys.argv[2])" $(OUT)/audit.html $(OUT)/audit.pdf
	@echo "wrote $(OUT)/audit.pdf"

## The whole test suite (unit, property, proofs on every shipped profile, planted bugs).
## JOBS=1 runs it in one process; the default is one worker per core (pytest-xdist), slowest files first.
JOBS ?= auto
test: $(STAMP)
	$(BIN)/python -m pytest -q -n $(JOBS) --dist worksteal

## mypy --strict over the package in its installed layout (tools/typecheck.py; `make test` runs it too).
typecheck: $(STAMP)
	$(BIN)/python tools/typecheck.py

prove: $(STAMP)
	$(BIN)/backstop prove --profile $(PROFILE)

## SOAK_EVENTS=1000000 for the full seeded soak (hours on 2 cores); the default is a quick one.
SOAK_EVENTS ?= 20000
## ACCOUNTS:MARKS pairs of the stress scenario (bench/gen_stress.py); the issue's sizes are 100,1000,10000 accounts.
SCALE_SIZES ?= 100:600,1000:600,100:60,1000:60
bench: $(STAMP)
	for f in bench/bench_margin.py bench/bench_simulate.py bench/bench_startup.py bench/bench_fuzz.py bench/bench_eval_speed.py bench/bench_prove.py; do $(BIN)/python $$f || exit 1; done
	$(BIN)/python bench/bench_scale.py --sizes $(SCALE_SIZES)
	$(BIN)/python bench/bench_soak.py --events $(SOAK_EVENTS)

## Test vectors of every shipped profile, audited for region coverage, packed deterministically
## (sorted names, fixed mtime and owner, gzip without a timestamp) into build/backstop-vectors-v1.tar.gz.
VECTORS ?= build/vectors
vectors-release: $(STAMP)
	rm -rf $(VECTORS)
	$(BIN)/backstop vectors --out $(VECTORS) --check $(VECTORS)
	tar --sort=name --mtime='2026-01-01 00:00:00Z' --owner=0 --group=0 --numeric-owner --format=gnu --mode='a+rX,u+w,go-w' \
	    -C $(VECTORS) -cf - v1 | gzip -9 -n > build/backstop-vectors-v1.tar.gz
	@echo "wrote build/backstop-vectors-v1.tar.gz"

clean:
	rm -rf build .pytest_cache .hypothesis

## prove: every obligation in JOBS processes, slowest first, through the verdict cache
## ($$BACKSTOP_CACHE, else $$XDG_CACHE_HOME/backstop/proofs; `make test` and `make audit` share it).
JOBS ?= 2
prove-parallel: $(STAMP)
	$(BIN)/backstop prove --profile $(PROFILE) -j $(JOBS)

proof-cache-clean:
	rm -rf "$${BACKSTOP_CACHE:-$${XDG_CACHE_HOME:-$$HOME/.cache}/backstop/proofs}"
