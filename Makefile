# Entry points. The local environment lives in env/ (see README "Local environment").
SHELL := /bin/bash
ENVCTL := env/envctl

.PHONY: env-up env-down env-status env-vars env-fetch env-reset check test lint demo image

env-up:        ## fetch/build (cached) and start every component; reuses what already runs
	$(ENVCTL) up $(COMPONENTS)
env-fetch:     ## only obtain/build every component into the cache
	$(ENVCTL) fetch $(COMPONENTS)
env-down:      ## stop what env-up started
	$(ENVCTL) down $(COMPONENTS)
env-status:
	$(ENVCTL) status
env-vars:      ## `eval "$$(make -s env-vars)"`
	@$(ENVCTL) vars
env-reset:     ## stop everything and delete runtime state (caches are kept)
	$(ENVCTL) reset

check: env-up  ## the README's test command: environment up, then the whole suite (what CI runs)
	$(MAKE) test

test:          ## the whole test suite against the running environment
	source <($(ENVCTL) vars) && ./scripts/test.sh $(PYTEST_ARGS)

demo:          ## the main job locally: env up, operator, Kafka → PostgreSQL DataFlow, rows arriving
	./scripts/demo.sh

# The operator image (docs/image.md). Rebuilt only when an input changed; saved for a kubelet to import.
VERSION := $(shell sed -n 's/^appVersion: "\(.*\)"/\1/p' charts/dataflow-operator/Chart.yaml)
IMAGE ?= localhost/dataflow-operator:$(VERSION)
image:         ## build the operator image with podman: `make image IMAGE=registry.example/you/dataflow-operator:0.1.0`
	$(ENVCTL) fetch image-tools
	source <($(ENVCTL) vars) && ./scripts/build_image.sh $(IMAGE)
