package credcache_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/ferryworks/ferry/credcache"
)

// What recording a task's outcome costs the worker's task path: a map
// update under a mutex, never a Redis call (Flush, not measured here, is
// what writes).
func BenchmarkObserveTask(b *testing.B) {
	rec := credcache.NewStatusRecorder(nil, credcache.StatusRecorderOptions{})
	customers := make([]string, 1000)
	for i := range customers {
		customers[i] = "customer-" + strconv.Itoa(i)
	}
	at := time.Now()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			rec.ObserveTask(customers[i%len(customers)], credcache.TaskOutcome{At: at, Completed: true})
			i++
		}
	})
}
