package queue

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferryworks/ferry/internal/localaws"
	"github.com/ferryworks/ferry/internal/testenv"

	"github.com/ferryworks/ferry/task"
)

// BenchmarkConsumerThroughput sends b.N tasks, then receives and acks them
// all through localaws with 8 receivers, and reports messages per second of
// the receive+ack phase.
func BenchmarkConsumerThroughput(b *testing.B) {
	e := testenv.NewSQS(b)
	url := e.Queue(b, localaws.Queue{Name: "bench", VisibilityTimeout: 30 * time.Second})
	ctx := context.Background()
	p := NewProducer(e.Client, url, task.Limits{})
	tasks := make([]task.Task, 0, 500)
	for i := 0; i < b.N; i += len(tasks) {
		tasks = tasks[:0]
		for j := i; j < min(i+500, b.N); j++ {
			tasks = append(tasks, newTask(fmt.Sprintf("t-%d", j), "acme"))
		}
		mustSend(b, p, tasks...)
	}
	c := consumer(b, e, nil, ConsumerOptions{QueueURL: url, WaitTime: time.Second, VisibilityTimeout: 30 * time.Second,
		AckBatchWindow: 20 * time.Millisecond})

	b.ResetTimer()
	start := time.Now()
	var elapsed time.Duration
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	var done atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for rctx.Err() == nil {
				leases, err := c.Receive(rctx, 10)
				if err != nil {
					if rctx.Err() == nil {
						b.Error(err)
					}
					return
				}
				var acks sync.WaitGroup
				for _, l := range leases {
					acks.Go(func() {
						if err := l.Ack(ctx); err != nil {
							b.Error(err)
						}
						if done.Add(1) == int64(b.N) {
							// The other receivers are parked in long polls;
							// stop the clock now and release them.
							elapsed = time.Since(start)
							stop()
						}
					})
				}
				acks.Wait()
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
}
