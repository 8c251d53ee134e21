//go:build race

package workflows

// raceEnabled: the tests run under the race detector.
const raceEnabled = true
