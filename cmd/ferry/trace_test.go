package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/ferryworks/ferry/internal/testenv"
	"github.com/ferryworks/ferry/queue"
)

// otlpReceiver is an OTLP/HTTP trace receiver: it decodes the protobuf
// export requests ferry sends and keeps every span with its resource.
type otlpReceiver struct {
	mu    sync.Mutex
	spans []receivedSpan
	*httptest.Server
}

type receivedSpan struct {
	service string
	*tracepb.Span
}

func newOTLPReceiver(t *testing.T) *otlpReceiver {
	r := &otlpReceiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path != "/v1/traces" || req.Header.Get("Content-Type") != "application/x-protobuf" {
			http.Error(w, "want POST /v1/traces with application/x-protobuf", http.StatusUnsupportedMediaType)
			return
		}
		body, err := io.ReadAll(req.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var ex coltracepb.ExportTraceServiceRequest
		if err := proto.Unmarshal(body, &ex); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		for _, rs := range ex.GetResourceSpans() {
			svc := attr(rs.GetResource().GetAttributes(), "service.name")
			for _, ss := range rs.GetScopeSpans() {
				for _, sp := range ss.GetSpans() {
					r.spans = append(r.spans, receivedSpan{service: svc, Span: sp})
				}
			}
		}
		r.mu.Unlock()
		out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *otlpReceiver) all() []receivedSpan {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]receivedSpan(nil), r.spans...)
}

func attr(kvs []*commonpb.KeyValue, key string) string {
	for _, kv := range kvs {
		if kv.GetKey() == key {
			v := kv.GetValue()
			if s, ok := v.GetValue().(*commonpb.AnyValue_StringValue); ok {
				return s.StringValue
			}
			if i, ok := v.GetValue().(*commonpb.AnyValue_IntValue); ok {
				return fmt.Sprint(i.IntValue)
			}
		}
	}
	return ""
}

// One trace runs from `ferry enqueue` through the worker's task (its
// AssumeRole, each copy, the event's publication) to the event message,
// whose traceparent attribute carries it on; the real binary exports it over
// OTLP/HTTP configured by the standard variables only.
func TestTraceFromEnqueueToEvent(t *testing.T) {
	t.Parallel()
	w := testenv.SharedWorld(t)
	rcv := newOTLPReceiver(t)
	env := worldEnv(w,
		"OTEL_EXPORTER_OTLP_ENDPOINT="+rcv.URL,
		"OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf",
		"OTEL_SERVICE_NAME=ferry-trace-test",
		"OTEL_TRACES_SAMPLER=always_on",
		"OTEL_BSP_SCHEDULE_DELAY=200",
	)
	ferry(t, env, "enqueue", "--customer", "acme", "--task", "trace-1",
		"--uri", "s3://acme-data/img/1.jpg", "--uri", "s3://acme-data/docs/readme.txt").want(t, 0)

	stop, _ := startMetricsWorker(t, env)
	api := sqs.NewFromConfig(w.FleetConfig)
	var eventTP string
	var ev string
	deadline := time.Now().Add(90 * time.Second)
	for eventTP == "" {
		if time.Now().After(deadline) {
			t.Fatal("no event within 90s")
		}
		out, err := api.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(w.Manifest.Queues.Events), WaitTimeSeconds: 1, MessageAttributeNames: []string{"All"}})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range out.Messages {
			ev = aws.ToString(m.Body)
			if v, ok := m.MessageAttributes[queue.AttrTraceParent]; ok {
				eventTP = aws.ToString(v.StringValue)
			} else {
				t.Fatalf("event without a traceparent attribute: %s", ev)
			}
		}
	}
	if !strings.Contains(ev, `"type":"task.completed"`) {
		t.Fatalf("event: %s", ev)
	}
	if code := stop(); code != 0 {
		t.Fatalf("ferry work exited %d", code)
	}

	spans := rcv.all()
	var enq *receivedSpan
	for i, s := range spans {
		if s.GetKind() == tracepb.Span_SPAN_KIND_PRODUCER && attr(s.GetAttributes(), "ferry.task_id") == "trace-1" {
			enq = &spans[i]
		}
	}
	if enq == nil {
		t.Fatalf("no producer span for task trace-1 among %d spans", len(spans))
	}
	traceID := enq.GetTraceId()
	if len(enq.GetParentSpanId()) != 0 {
		t.Errorf("enqueue's span has a parent; ferry enqueue starts the trace")
	}
	var trace []receivedSpan
	byID := map[string]receivedSpan{}
	for _, s := range spans {
		if string(s.GetTraceId()) == string(traceID) {
			trace = append(trace, s)
			byID[string(s.GetSpanId())] = s
		}
	}
	sort.Slice(trace, func(i, j int) bool { return trace[i].GetStartTimeUnixNano() < trace[j].GetStartTimeUnixNano() })
	t.Logf("trace %s as the OTLP receiver saw it:\n%s", hex.EncodeToString(traceID), renderTrace(trace))

	// The event message carries the trace on: its traceparent is
	// 00-<trace id>-<the publish span's id>-01.
	parts := strings.Split(eventTP, "-")
	if len(parts) != 4 || parts[1] != hex.EncodeToString(traceID) {
		t.Fatalf("event traceparent %q, want trace id %x", eventTP, traceID)
	}
	publish, ok := byID[string(mustHex(t, parts[2]))]
	if !ok || publish.GetKind() != tracepb.Span_SPAN_KIND_PRODUCER || !strings.HasPrefix(publish.GetName(), "send ") {
		t.Fatalf("the event's parent span %s is not a publish span of the trace", parts[2])
	}

	process, ok := byID[string(publish.GetParentSpanId())]
	if !ok || process.GetKind() != tracepb.Span_SPAN_KIND_CONSUMER || string(process.GetParentSpanId()) != string(enq.GetSpanId()) {
		t.Fatalf("publish's parent is not the worker's process span, child of enqueue's span")
	}
	for _, s := range []receivedSpan{*enq, process, publish} {
		a := s.GetAttributes()
		if attr(a, "messaging.system") != "aws_sqs" || attr(a, "messaging.destination.name") == "" || attr(a, "messaging.message.id") == "" {
			t.Errorf("span %q lacks the SQS messaging attributes: %v", s.GetName(), a)
		}
	}
	if op := attr(enq.GetAttributes(), "messaging.operation.type"); op != "send" {
		t.Errorf("enqueue's messaging.operation.type = %q", op)
	}
	if op := attr(process.GetAttributes(), "messaging.operation.type"); op != "process" {
		t.Errorf("process's messaging.operation.type = %q", op)
	}
	if got := attr(process.GetAttributes(), "ferry.outcome"); got != "completed" {
		t.Errorf("process span outcome %q", got)
	}
	if !strings.HasSuffix(enq.GetName(), queueNameOf(w.Manifest.Queues.Tasks)) || !strings.HasSuffix(publish.GetName(), queueNameOf(w.Manifest.Queues.Events)) {
		t.Errorf("span names %q, %q do not name the tasks and events queues", enq.GetName(), publish.GetName())
	}

	copies := map[string]bool{}
	var assumed bool
	for _, s := range trace {
		switch s.GetName() {
		case "copy":
			if string(s.GetParentSpanId()) != string(process.GetSpanId()) {
				t.Errorf("copy span not a child of the process span")
			}
			copies[attr(s.GetAttributes(), "ferry.attachment.index")] = true
		case "assume_role":
			// Within one of the copies: the credentials are fetched for it.
			if p := byID[string(s.GetParentSpanId())]; p.Span == nil || p.GetName() != "copy" {
				t.Errorf("assume_role's parent is not a copy span")
			}
			assumed = true
		}
		if s.service != "ferry-trace-test" {
			t.Errorf("span %q from service %q, want OTEL_SERVICE_NAME", s.GetName(), s.service)
		}
	}
	if !copies["0"] || !copies["1"] || len(copies) != 2 {
		t.Errorf("copy spans for attachments %v, want 0 and 1", copies)
	}
	if !assumed {
		t.Error("no assume_role span in the trace")
	}
}

func mustHex(t *testing.T, s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return b
}

func queueNameOf(url string) string { return url[strings.LastIndex(url, "/")+1:] }

// renderTrace draws spans as a tree: name, kind and span id, indented under
// their parent.
func renderTrace(spans []receivedSpan) string {
	children := map[string][]receivedSpan{}
	ids := map[string]bool{}
	for _, s := range spans {
		ids[string(s.GetSpanId())] = true
	}
	var roots []receivedSpan
	for _, s := range spans {
		p := string(s.GetParentSpanId())
		if p == "" || !ids[p] {
			roots = append(roots, s)
			continue
		}
		children[p] = append(children[p], s)
	}
	var b strings.Builder
	var walk func(s receivedSpan, depth int)
	walk = func(s receivedSpan, depth int) {
		fmt.Fprintf(&b, "%s%s [%s] span=%x parent=%x\n", strings.Repeat("  ", depth), s.GetName(),
			strings.TrimPrefix(s.GetKind().String(), "SPAN_KIND_"), s.GetSpanId(), s.GetParentSpanId())
		for _, c := range children[string(s.GetSpanId())] {
			walk(c, depth+1)
		}
	}
	for _, r := range roots {
		walk(r, 0)
	}
	return b.String()
}
