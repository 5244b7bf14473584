package localaws

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"strings"
)

// objectChecksum is the full-object checksum S3 keeps with an object that a
// single PutObject uploaded with one (x-amz-checksum-ALG as a header or an
// aws-chunked trailer): the header's name and its base64 value. S3 answers
// it on the PutObject itself and on GetObject and HeadObject that ask with
// x-amz-checksum-mode: ENABLED
// (https://docs.aws.amazon.com/AmazonS3/latest/userguide/checking-object-integrity.html,
// https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadObject.html).
// kumo keeps none, so the gate does.
type objectChecksum struct {
	header string // x-amz-checksum-sha256, …
	value  string
}

// checksum returns the checksum the body carried, once it was read whole
// and verified; ok is false when it carried none (Content-MD5 is not one S3
// stores).
func (bc *bodyCheck) checksum() (objectChecksum, bool) {
	if bc == nil {
		return objectChecksum{}, false
	}
	for _, s := range bc.sums {
		if strings.HasPrefix(s.header, "x-amz-checksum-") && s.want != "" {
			return objectChecksum{header: s.header, value: s.want}, true
		}
	}
	return objectChecksum{}, false
}

// checksumModeEnabled reports whether a read asks for the object's checksum.
func checksumModeEnabled(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("X-Amz-Checksum-Mode"), "ENABLED")
}

// spoolInMemory is the largest PutObject body spoolBody keeps in memory;
// larger ones go to a temporary file.
const spoolInMemory = 64 << 20

// spoolBody reads a PutObject body whole (through its checks) before kumo
// sees it. kumo reads a PutObject body under its one storage lock, which
// every other call to the stack waits for, a GetObject too: a body
// streamed from reads of the same stack (a copy whose source is read in
// ranges while its PUT is sent) would wait on itself, and any slow body
// would stall every other client. S3 has no such lock; spooled, kumo's
// share of a PUT is a copy from memory, and the stack serves calls while
// bodies arrive as S3 does. A body that fails a check is refused here,
// before kumo stores any of it.
func spoolBody(r *http.Request) *apiError {
	fail := func() *apiError {
		if bc, _ := r.Context().Value(bodyCheckKey{}).(*bodyCheck); bc != nil {
			if e := bc.Failure(); e != nil {
				return e
			}
		}
		return &apiError{Status: http.StatusBadRequest, Code: "IncompleteBody",
			Message: "You did not provide the number of bytes specified by the Content-Length HTTP header."}
	}
	n := r.ContentLength
	if n < 0 {
		return nil // refused elsewhere: S3 needs a length
	}
	if n <= spoolInMemory {
		buf := make([]byte, n)
		if _, err := io.ReadFull(r.Body, buf); err != nil {
			return fail()
		}
		if extra, _ := r.Body.Read(make([]byte, 1)); extra > 0 {
			return fail()
		}
		_ = r.Body.Close()
		r.Body = io.NopCloser(bytes.NewReader(buf))
		return nil
	}
	f, err := os.CreateTemp("", "localaws-put-*")
	if err != nil {
		return &apiError{Status: http.StatusInternalServerError, Code: "InternalError", Message: "localaws could not spool the body: " + err.Error()}
	}
	body := &spooledFile{f}
	if m, err := io.Copy(f, r.Body); err != nil || m != n {
		_ = body.Close()
		return fail()
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		_ = body.Close()
		return fail()
	}
	_ = r.Body.Close()
	r.Body = body
	return nil
}

// spooledFile is a spooled body that removes its file when closed.
type spooledFile struct{ *os.File }

func (s *spooledFile) Close() error {
	err := s.File.Close()
	_ = os.Remove(s.Name())
	return err
}
