//go:build !race

package goproxy_test

const raceEnabled = false
