package worker_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/redis/go-redis/v9"

	"github.com/ferryworks/ferry/internal/testenv"
	"github.com/ferryworks/ferry/queue"
	"github.com/ferryworks/ferry/task"
)

// BenchmarkPipeline measures the whole fleet path on the demo world —
// enqueue, receive, assume role (delegated) or not (cross-account), copy,
// publish, record, ack — with tasks alternating between a delegated and a
// cross-account customer. It reports tasks/s, attachment MiB/s and the STS
// AssumeRole calls per delegated customer over the run (the cache's promise
// is 1), and the Redis commands and round trips per task the worker's
// client sent (a hook on the client: a pipeline or a script is one round
// trip; the commands a script runs inside Redis are not counted here, INFO
// commandstats in ferrybench counts those).
//
//	go test -run '^$' -bench BenchmarkPipeline -benchtime 2000x ./worker
func BenchmarkPipeline(b *testing.B) {
	for _, bc := range []struct {
		name  string
		size  int
		slots int
	}{
		{"1KiB/c1", 1 << 10, 1},
		{"1KiB/c8", 1 << 10, 8},
		{"1KiB/c64", 1 << 10, 64},
		{"8MiB/c8", 8 << 20, 8},
	} {
		b.Run(bc.name, func(b *testing.B) {
			w := testenv.NewWorld(b)
			rc := &redisCounter{}
			w.Redis.AddHook(rc)
			acme, globex := w.Customer(b, "acme"), w.Customer(b, "globex")
			ctx := context.Background()
			body := bytes.Repeat([]byte{'x'}, bc.size)
			for _, bucket := range []string{acme.Bucket, globex.Bucket} {
				if err := w.Stack.PutObject(ctx, bucket, "bench/object.bin", bytes.NewReader(body), int64(len(body)), "application/octet-stream"); err != nil {
					b.Fatal(err)
				}
			}
			f := newFleet(b, w)
			tasks := make([]task.Task, b.N)
			for i := range tasks {
				c := acme
				if i%2 == 1 {
					c = globex
				}
				tasks[i] = newTask(fmt.Sprintf("b-%d", i), c.ID, s3uri(c, "bench/object.bin"))
			}
			p := queue.NewProducer(f.sqs, f.queueURL, task.Limits{})
			if err := queue.SendErrors(p.Send(ctx, tasks)); err != nil {
				b.Fatal(err)
			}
			w.Stack.ResetStats()
			rc.reset()
			b.ResetTimer()
			start := time.Now()
			stop, _ := f.start(b, fleetOptions{slots: bc.slots, quietLog: true})
			for got := 0; got < b.N; {
				out, err := f.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(f.events), MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
				if err != nil {
					b.Fatal(err)
				}
				for _, m := range out.Messages {
					got++
					_, _ = f.sqs.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(f.events), ReceiptHandle: m.ReceiptHandle})
				}
			}
			elapsed := time.Since(start)
			b.StopTimer()
			stop()
			cmds, trips := rc.cmds.Load(), rc.trips.Load()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "tasks/s")
			b.ReportMetric(float64(b.N)*float64(bc.size)/(1<<20)/elapsed.Seconds(), "MiB/s")
			b.ReportMetric(float64(w.Stack.Stats()["sts:AssumeRole"]["ok"]), "assume_role/customer")
			b.ReportMetric(float64(cmds)/float64(b.N), "redis-cmds/task")
			b.ReportMetric(float64(trips)/float64(b.N), "redis-round-trips/task")
		})
	}
}

// redisCounter counts the commands a client sends and the round trips they
// take.
type redisCounter struct{ cmds, trips atomic.Int64 }

func (c *redisCounter) reset() { c.cmds.Store(0); c.trips.Store(0) }

func (c *redisCounter) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) { return next(ctx, network, addr) }
}

func (c *redisCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.cmds.Add(1)
		c.trips.Add(1)
		return next(ctx, cmd)
	}
}

func (c *redisCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.cmds.Add(int64(len(cmds)))
		c.trips.Add(1)
		return next(ctx, cmds)
	}
}
