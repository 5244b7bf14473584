package localaws

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"time"
)

// SQS answers a long poll as soon as a message is available, including one
// whose delivery delay or visibility timeout ends while the poll waits:
// https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-short-and-long-polling.html
// kumo wakes a waiting receive only when a call changes the queue (a send,
// a visibility change), so a requeued or delayed message could sit unseen
// for a whole 20 s poll. The gate therefore turns one long poll into a run
// of polls of at most a second each, answering with the first that finds
// messages, or the last when the wait is over.

// longPoll is a ReceiveMessage (JSON protocol) that asked to wait.
type longPoll struct {
	body map[string]json.RawMessage
	wait time.Duration
}

// parseLongPoll returns the long poll in body, or nil when the call does not
// wait more than a second (kumo answers those as SQS would).
func parseLongPoll(body []byte) *longPoll {
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) != nil {
		return nil
	}
	var secs int
	if raw, ok := m["WaitTimeSeconds"]; !ok || json.Unmarshal(raw, &secs) != nil || secs <= 1 {
		return nil
	}
	return &longPoll{body: m, wait: time.Duration(secs) * time.Second}
}

func (lp *longPoll) withWait(secs int) []byte {
	lp.body["WaitTimeSeconds"] = json.RawMessage(strconv.Itoa(secs))
	b, _ := json.Marshal(lp.body)
	return b
}

// longPollTransport sends a request whose gate state carries a longPoll as
// a run of short polls; everything else passes through.
type longPollTransport struct{ base http.RoundTripper }

func (t longPollTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	st, _ := req.Context().Value(gateStateKey{}).(*gateState)
	if st == nil || st.longPoll == nil {
		return t.base.RoundTrip(req)
	}
	lp := st.longPoll
	deadline := time.Now().Add(lp.wait)
	for {
		secs := 0
		if time.Until(deadline) >= time.Second {
			secs = 1
		}
		body := lp.withWait(secs)
		out := req.Clone(req.Context())
		out.Body = io.NopCloser(bytes.NewReader(body))
		out.ContentLength = int64(len(body))
		out.Header.Set("Content-Length", strconv.Itoa(len(body)))
		resp, err := t.base.RoundTrip(out)
		if err != nil || resp.StatusCode != http.StatusOK || secs == 0 {
			return resp, err
		}
		raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
		_ = resp.Body.Close()
		if err != nil {
			return nil, err
		}
		var got struct{ Messages []json.RawMessage }
		if json.Unmarshal(raw, &got) != nil || len(got.Messages) > 0 || !time.Now().Before(deadline) || req.Context().Err() != nil {
			resp.Body = io.NopCloser(bytes.NewReader(raw))
			resp.ContentLength = int64(len(raw))
			resp.Header.Set("Content-Length", strconv.Itoa(len(raw)))
			return resp, nil
		}
	}
}
