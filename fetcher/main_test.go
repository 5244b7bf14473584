package fetcher

import (
	"os"
	"testing"

	"github.com/ferryworks/ferry/internal/testenv"
)

// TestMain stops the local AWS the package's tests share.
func TestMain(m *testing.M) {
	code := m.Run()
	testenv.CloseSharedLocalAWS()
	os.Exit(code)
}
