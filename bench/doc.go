// Package bench holds modproxy's benchmarks: in-process micro-benchmarks of
// the hot path (hotpath_test.go, run with go test -bench) and, in
// proxybench/, the end-to-end harness. See README.md.
package bench
