package testenv

import (
	"os"
	"sync"
	"testing"

	"github.com/ferryworks/ferry/internal/localaws"
)

// sharedStack is the one localaws stack of a test binary (SharedLocalAWS).
var sharedStack struct {
	once  sync.Once
	stack *localaws.Stack
	err   error
}

// SharedLocalAWS returns the test binary's shared localaws stack, serving
// https as LocalAWS does, started by the first test that asks for it. A
// stack costs a kumo child process and a CA; tests whose world is isolated
// by name share one instead: each makes its own accounts (NewAccount),
// buckets, queues and roles under names no other test of the package uses.
//
// A test that reads the stack's call counts (Stats, ResetStats), injects
// faults (InjectFault, ClearFaults), moves the gate's clock or delays IAM
// sees and affects every test of the binary, so it must start a stack of
// its own (LocalAWS, StartLocalAWS) instead.
//
// The package's TestMain calls Main, which stops the stack once the tests
// ran: the kumo child is stopped and waited for, so its CPU time counts in
// the test binary's, as every other stack's does.
func SharedLocalAWS(t testing.TB) *localaws.Stack {
	t.Helper()
	Integration(t)
	sharedStack.once.Do(func() {
		sharedStack.stack, sharedStack.err = localaws.Start(localaws.Options{TLS: true})
	})
	if sharedStack.err != nil {
		t.Fatalf("start the shared localaws: %v", sharedStack.err)
	}
	return sharedStack.stack
}

// Main is the TestMain of a package whose tests use SharedLocalAWS: it runs
// them, stops the shared stack and exits with their status.
func Main(m *testing.M) {
	os.Exit(Run(m))
}

// Run is Main without the exit, for a TestMain with more to clean up: it
// runs the tests, stops the shared stack and returns their status.
func Run(m *testing.M) int {
	code := m.Run()
	if sharedStack.stack != nil {
		_ = sharedStack.stack.Close()
	}
	return code
}
