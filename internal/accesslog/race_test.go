//go:build race

package accesslog

// raceEnabled: the race detector is on; it changes allocation counts
// (sync.Pool drops items at random), so allocation tests skip.
const raceEnabled = true
