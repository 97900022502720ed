# Development tasks. CI runs .ci/run, which runs scripts/test.
.PHONY: build test lint bench fuzz

build:
	go build -o bin/modproxy ./cmd/modproxy

test:
	./scripts/test

lint:
	test -z "$$(gofmt -l $$(git ls-files '*.go'))"
	go vet ./...
	staticcheck ./...

fuzz:
	go test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime 60s ./internal/artifact/

bench:
	go test -run '^$$' -bench . -benchmem ./internal/... ./bench/...
