# Entry points. The local environment lives in env/ (see README "Local environment").
SHELL := /bin/bash
ENVCTL := env/envctl

.PHONY: env-up env-down env-status env-vars env-fetch env-reset check test lint demo

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
