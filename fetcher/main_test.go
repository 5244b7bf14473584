package fetcher

import (
	"testing"

	"github.com/ferryworks/ferry/internal/testenv"
)

// TestMain stops the local AWS the package's tests share when they end.
func TestMain(m *testing.M) { testenv.Main(m) }
