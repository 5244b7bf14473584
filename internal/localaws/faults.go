package localaws

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
)

// Fault is an injected failure for one operation ("s3:GetObject",
// "sqs:ReceiveMessage", "sts:AssumeRole", …; "*" matches every operation).
// A fault applies Count times (0 = until cleared), each time with
// Probability (0 = always). Status/Code answer with an AWS error; LatencyMS
// delays the call before it proceeds; Drop closes the connection unanswered.
type Fault struct {
	Operation   string  `json:"operation"`
	Status      int     `json:"status,omitempty"`
	Code        string  `json:"code,omitempty"`
	Message     string  `json:"message,omitempty"`
	Count       int     `json:"count,omitempty"`
	Probability float64 `json:"probability,omitempty"`
	LatencyMS   int     `json:"latency_ms,omitempty"`
	Drop        bool    `json:"drop,omitempty"`
	// SessionSeconds (sts:AssumeRole only) makes the credentials AssumeRole
	// hands out expire after this many seconds, whatever DurationSeconds asked for:
	// a session that runs out in the middle of a long copy.
	SessionSeconds int `json:"session_seconds,omitempty"`
}

// ErrInvalidFault is returned (wrapped) by InjectFault for a fault that
// would do nothing or cannot be answered.
var ErrInvalidFault = errors.New("invalid fault")

func (f Fault) validate() error {
	switch {
	case f.Operation == "":
		return fmt.Errorf("%w: operation is required", ErrInvalidFault)
	case f.SessionSeconds != 0 && f.Operation != "sts:AssumeRole":
		return fmt.Errorf("%w: %s: session_seconds applies to sts:AssumeRole only", ErrInvalidFault, f.Operation)
	case f.SessionSeconds < 0:
		return fmt.Errorf("%w: %s: negative session_seconds", ErrInvalidFault, f.Operation)
	case f.Status == 0 && f.Code == "" && f.LatencyMS == 0 && !f.Drop && f.SessionSeconds == 0:
		return fmt.Errorf("%w: %s: needs status/code, latency_ms, drop or session_seconds", ErrInvalidFault, f.Operation)
	case f.Status != 0 && (f.Status < 400 || f.Status > 599):
		return fmt.Errorf("%w: %s: status %d is not an error status", ErrInvalidFault, f.Operation, f.Status)
	case f.Count < 0, f.LatencyMS < 0, f.Probability < 0, f.Probability > 1:
		return fmt.Errorf("%w: %s: negative count/latency or probability outside [0,1]", ErrInvalidFault, f.Operation)
	}
	return nil
}

type activeFault struct {
	Fault
	left int // remaining applications when Count > 0
}

// faultSet holds the injected faults; active lets the hot path skip the lock
// when none are set.
type faultSet struct {
	mu     sync.Mutex
	list   []*activeFault
	active atomic.Bool
}

// InjectFault adds a fault; it applies from the next matching call on.
// A fault with a Code and no Status answers 503 for the SDK's throttling
// codes (SlowDown, Throttling, RequestLimitExceeded…) and 500 otherwise; a Status
// without a Code uses the status's usual AWS code.
func (s *Stack) InjectFault(f Fault) error {
	if err := f.validate(); err != nil {
		return err
	}
	if f.Code != "" && f.Status == 0 {
		f.Status = http.StatusInternalServerError
		if _, ok := retry.DefaultThrottleErrorCodes[f.Code]; ok {
			f.Status = http.StatusServiceUnavailable
		}
	}
	if f.Status != 0 && f.Code == "" {
		f.Code = defaultCodeForStatus(f.Status)
	}
	if f.Status != 0 && f.Message == "" {
		f.Message = "injected fault: " + f.Code
	}
	s.faults.mu.Lock()
	s.faults.list = append(s.faults.list, &activeFault{Fault: f, left: f.Count})
	s.faults.active.Store(true)
	s.faults.mu.Unlock()
	return nil
}

// ClearFaults removes every fault.
func (s *Stack) ClearFaults() {
	s.faults.mu.Lock()
	s.faults.list = nil
	s.faults.active.Store(false)
	s.faults.mu.Unlock()
}

// Faults lists the faults still in force, with Count showing the remaining
// applications of counted faults.
func (s *Stack) Faults() []Fault {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	out := make([]Fault, 0, len(s.faults.list))
	for _, af := range s.faults.list {
		f := af.Fault
		if f.Count > 0 {
			f.Count = af.left
		}
		out = append(out, f)
	}
	return out
}

// take returns the first fault matching op that fires this time, consuming
// one of its applications.
func (fs *faultSet) take(op string) (Fault, bool) {
	if !fs.active.Load() {
		return Fault{}, false
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for i, af := range fs.list {
		if af.Operation != "*" && af.Operation != op {
			continue
		}
		if af.Probability > 0 && rand.Float64() >= af.Probability {
			continue
		}
		if af.Count > 0 {
			af.left--
			if af.left <= 0 {
				fs.list = append(fs.list[:i:i], fs.list[i+1:]...)
				fs.active.Store(len(fs.list) > 0)
			}
		}
		return af.Fault, true
	}
	return Fault{}, false
}

func defaultCodeForStatus(status int) string {
	switch status {
	case http.StatusServiceUnavailable:
		return "ServiceUnavailable"
	case http.StatusForbidden:
		return "AccessDenied"
	case http.StatusNotFound:
		return "NotFound"
	case http.StatusTooManyRequests:
		return "Throttling"
	case http.StatusBadRequest:
		return "InvalidRequest"
	default:
		return "InternalError"
	}
}

// applyFault performs the fault's effects. It reports whether the request
// was answered (error or dropped connection) and must not proceed, and the
// fault that fired (zero when none), whose effects on the answer itself
// (SessionSeconds) are the operation's to apply.
func (s *Stack) applyFault(w http.ResponseWriter, r *http.Request, svc, op string) (bool, Fault) {
	f, ok := s.faults.take(op)
	if !ok {
		return false, Fault{}
	}
	s.log.Debug().Str("op", op).Int("status", f.Status).Str("code", f.Code).Int("latency_ms", f.LatencyMS).
		Bool("drop", f.Drop).Msg("injected fault")
	if f.LatencyMS > 0 {
		t := time.NewTimer(time.Duration(f.LatencyMS) * time.Millisecond)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			s.stats.add(op, outcomeFault)
			return true, f
		}
	}
	switch {
	case f.Drop:
		s.stats.add(op, outcomeFault)
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			_ = conn.Close()
		} else {
			panic(http.ErrAbortHandler) // HTTP/2 or a wrapped writer: abort the stream instead
		}
		return true, f
	case f.Status != 0:
		s.stats.add(op, outcomeFault)
		writeError(w, r, svc, apiError{Status: f.Status, Code: f.Code, Message: f.Message})
		return true, f
	}
	return false, f
}
