//go:build !race

package devproc

// RaceEnabled reports whether this process was built with -race. The
// standard library keeps the same fact in internal/race, which other
// modules cannot import.
const RaceEnabled = false
