# Compose targets for votestream; the main Makefile includes this file.
#   make up            build the images and start the stack
#   make scale N=3     run N counter replicas
#   make logs          follow the logs (SERVICES="counter producer" to narrow)
#   make down          stop everything and delete its data
#   make deploy-check  promtool checks and the deployment tests
#   make compose-test  the stack under a private Docker Engine (as root)

COMPOSE ?= docker compose
PROMTOOL ?= promtool
N ?= 3
SERVICES ?=

.PHONY: up down scale logs deploy-check compose-test

up:
	$(COMPOSE) up -d --build
	@echo "Grafana:          http://localhost:3000  (dashboard: Election night)"
	@echo "Prometheus:       http://localhost:9090"
	@echo "Redpanda Console: http://localhost:8080"

# Each `make up` is a new election: -v deletes the topics, checkpoints and
# metrics with the containers.
down:
	$(COMPOSE) down -v --remove-orphans

# --no-deps leaves Redpanda and the one-shot init alone; --no-recreate keeps
# the running replicas, so only the new ones join the group.
scale:
	$(COMPOSE) up -d --no-deps --no-recreate --scale counter=$(N) counter

logs:
	$(COMPOSE) logs -f --tail=100 $(SERVICES)

deploy-check:
	cd deploy/prometheus && $(PROMTOOL) check config prometheus.yml
	cd deploy/prometheus && $(PROMTOOL) check rules alerts.yml
	cd deploy/prometheus && $(PROMTOOL) test rules alerts_test.yml
	go test ./deploy/...

# Installs what it lacks (docker.io, debootstrap, Compose built from the Go
# module proxy), starts its own dockerd, builds the base images from local
# parts, runs deploy/compose's TestStack on the Apache Kafka stack, and stops
# the engine. Base images and layers stay in COMPOSE_CACHE between runs.
compose-test:
	deploy/compose/stack.sh test
