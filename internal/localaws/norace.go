//go:build !race

package localaws

// raceEnabled tells whether this binary was built with -race (kumo.go).
const raceEnabled = false
