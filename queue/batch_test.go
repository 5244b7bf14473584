package queue

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

func TestChunkBySize(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		sizes    []int
		entries  int
		maxBytes int
		want     [][]int
	}{
		{"empty", nil, 10, 100, nil},
		{"by count", []int{1, 1, 1, 1, 1}, 2, 100, [][]int{{0, 1}, {2, 3}, {4}}},
		{"by bytes", []int{40, 40, 40, 10}, 10, 100, [][]int{{0, 1}, {2, 3}}},
		{"exact fit", []int{50, 50, 50}, 10, 100, [][]int{{0, 1}, {2}}},
		{"oversized alone", []int{10, 150, 10}, 10, 100, [][]int{{0}, {1}, {2}}},
		{"twelve", make([]int, 12), 10, 100, [][]int{{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, {10, 11}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := chunkBySize(tc.sizes, tc.entries, tc.maxBytes); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("chunkBySize = %v, want %v", got, tc.want)
			}
		})
	}
}

func failEntry(id, code string, senderFault bool) types.BatchResultErrorEntry {
	return types.BatchResultErrorEntry{Id: aws.String(id), Code: aws.String(code), Message: aws.String(code), SenderFault: senderFault}
}

// TestRunBatch drives runBatch with a scripted batch call (pure logic: no
// SQS involved) and checks which entries are retried and what surfaces.
func TestRunBatch(t *testing.T) {
	t.Parallel()
	apiErr := errors.New("connection reset")
	cases := []struct {
		name      string
		n         int
		responses []func(idx []int) (batchOutcome, error)
		wantCalls [][]int
		wantErr   []string // "" = nil, "lost", "entry", "api"
	}{
		{
			name: "all ok",
			n:    3,
			responses: []func([]int) (batchOutcome, error){
				func(idx []int) (batchOutcome, error) { return outcomeOf([]string{"0", "1", "2"}, nil), nil },
			},
			wantCalls: [][]int{{0, 1, 2}},
			wantErr:   []string{"", "", ""},
		},
		{
			name: "sender fault surfaces at once, transient retried",
			n:    3,
			responses: []func([]int) (batchOutcome, error){
				func(idx []int) (batchOutcome, error) {
					return outcomeOf([]string{"0"}, []types.BatchResultErrorEntry{
						failEntry("1", "ReceiptHandleIsInvalid", true), failEntry("2", "InternalError", false)}), nil
				},
				func(idx []int) (batchOutcome, error) { return outcomeOf([]string{"2"}, nil), nil },
			},
			wantCalls: [][]int{{0, 1, 2}, {2}},
			wantErr:   []string{"", "lost", ""},
		},
		{
			name: "transient entry gives up after the attempts",
			n:    1,
			responses: []func([]int) (batchOutcome, error){
				func(idx []int) (batchOutcome, error) {
					return outcomeOf(nil, []types.BatchResultErrorEntry{failEntry("0", "InternalError", false)}), nil
				},
			},
			wantCalls: [][]int{{0}, {0}, {0}, {0}},
			wantErr:   []string{"entry"},
		},
		{
			name: "api error retried then ok",
			n:    2,
			responses: []func([]int) (batchOutcome, error){
				func(idx []int) (batchOutcome, error) { return batchOutcome{}, apiErr },
				func(idx []int) (batchOutcome, error) { return outcomeOf([]string{"0", "1"}, nil), nil },
			},
			wantCalls: [][]int{{0, 1}, {0, 1}},
			wantErr:   []string{"", ""},
		},
		{
			name: "api error until the end",
			n:    1,
			responses: []func([]int) (batchOutcome, error){
				func(idx []int) (batchOutcome, error) { return batchOutcome{}, apiErr },
			},
			wantCalls: [][]int{{0}, {0}, {0}, {0}},
			wantErr:   []string{"api"},
		},
		{
			name: "entry missing from the response is retried",
			n:    2,
			responses: []func([]int) (batchOutcome, error){
				func(idx []int) (batchOutcome, error) { return outcomeOf([]string{"0"}, nil), nil },
				func(idx []int) (batchOutcome, error) { return outcomeOf([]string{"1"}, nil), nil },
			},
			wantCalls: [][]int{{0, 1}, {1}},
			wantErr:   []string{"", ""},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var calls [][]int
			errs := runBatch(context.Background(), "DeleteMessageBatch", tc.n, nil, func(_ context.Context, idx []int) (batchOutcome, error) {
				calls = append(calls, append([]int(nil), idx...))
				r := tc.responses[min(len(calls), len(tc.responses))-1]
				return r(idx)
			})
			if !reflect.DeepEqual(calls, tc.wantCalls) {
				t.Errorf("calls = %v, want %v", calls, tc.wantCalls)
			}
			for i, want := range tc.wantErr {
				err := errs[i]
				var be *BatchEntryError
				switch want {
				case "":
					if err != nil {
						t.Errorf("item %d: err = %v, want nil", i, err)
					}
				case "lost":
					if !errors.Is(err, ErrLeaseLost) {
						t.Errorf("item %d: err = %v, want ErrLeaseLost", i, err)
					}
				case "entry":
					if !errors.As(err, &be) || be.SenderFault || errors.Is(err, ErrLeaseLost) {
						t.Errorf("item %d: err = %v, want transient *BatchEntryError", i, err)
					}
				case "api":
					if !errors.Is(err, apiErr) {
						t.Errorf("item %d: err = %v, want the API error", i, err)
					}
				}
			}
		})
	}
}

func TestLeaseLostCode(t *testing.T) {
	t.Parallel()
	cases := []struct {
		code, msg string
		want      bool
	}{
		{"ReceiptHandleIsInvalid", "", true},
		{"AWS.SimpleQueueService.ReceiptHandleIsInvalid", "", true},
		{"MessageNotInflight", "", true},
		{"InvalidParameterValue", "Value x for parameter ReceiptHandle is invalid. Reason: The receipt handle has expired.", true},
		{"InvalidParameterValue", "Message does not exist or is not available for visibility timeout change.", true},
		{"InvalidParameterValue", "Value 50000 for parameter VisibilityTimeout is invalid.", false},
		{"InternalError", "", false},
	}
	for _, tc := range cases {
		if got := leaseLostCode(tc.code, tc.msg); got != tc.want {
			t.Errorf("leaseLostCode(%q, %q) = %v, want %v", tc.code, tc.msg, got, tc.want)
		}
	}
}

func TestDeduplicationID(t *testing.T) {
	t.Parallel()
	short := "t-1/s-1"
	if got := DeduplicationID(short); got != short {
		t.Errorf("DeduplicationID(%q) = %q", short, got)
	}
	long := make([]byte, 200)
	for i := range long {
		long[i] = 'a'
	}
	got := DeduplicationID(string(long))
	if len(got) != 64 || got == DeduplicationID(string(long[:199])) {
		t.Errorf("DeduplicationID(long) = %q: want a 64-char hash that differs per key", got)
	}
}
