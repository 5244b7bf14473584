package localaws

// The gate decodes aws-chunked request bodies and verifies every checksum
// and chunk signature a body carries before kumo, which understands none
// of it, sees the last byte. No maintained Go library decodes aws-chunked
// (the AWS SDKs and minio-go only encode it; servers such as minio keep
// their decoders inside the server), so the decoder is ours; the tests
// check it against the encoders of the Go SDK, minio-go and the aws CLI.
//
// Formats: https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-streaming.html
// (STREAMING-AWS4-HMAC-SHA256-PAYLOAD),
// https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-streaming-trailers.html
// (the -TRAILER variants), and checksums:
// https://docs.aws.amazon.com/AmazonS3/latest/userguide/checking-object-integrity.html

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/md5"  //nolint:gosec // Content-MD5 is MD5 by definition
	"crypto/sha1" //nolint:gosec // x-amz-checksum-sha1 is SHA-1 by definition
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/ferryworks/ferry/internal/localaws/sigv4"
)

// Payload hashes (x-amz-content-sha256) that stand for a body not hashed up
// front: unsigned, and the streaming variants.
const (
	unsignedPayload          = "UNSIGNED-PAYLOAD"
	streamingSigned          = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
	streamingSignedTrailer   = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
	streamingUnsignedTrailer = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
)

const (
	emptySHA256        = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	trailerSignatureHd = "x-amz-trailer-signature"
	// maxChunkLine bounds a chunk header or trailer line.
	maxChunkLine = 4 << 10
	// maxTrailerLines bounds the trailer section.
	maxTrailerLines = 16
)

// crc64NVME is the CRC-64/NVME polynomial in the reversed form hash/crc64
// takes (the SDK's checksum package uses the same constant).
const crc64NVME = 0x9a6c9329ac4bc9b5

var crc32cTable = crc32.MakeTable(crc32.Castagnoli)
var crc64NVMETable = crc64.MakeTable(crc64NVME)

// checksumAlgorithms maps the checksum headers S3 verifies to their
// algorithm names (as S3's error messages spell them) and hashes.
var checksumAlgorithms = map[string]struct {
	name string
	new  func() hash.Hash
}{
	"x-amz-checksum-crc32":     {"CRC32", func() hash.Hash { return crc32.NewIEEE() }},
	"x-amz-checksum-crc32c":    {"CRC32C", func() hash.Hash { return crc32.New(crc32cTable) }},
	"x-amz-checksum-crc64nvme": {"CRC64NVME", func() hash.Hash { return crc64.New(crc64NVMETable) }},
	"x-amz-checksum-sha1":      {"SHA1", sha1.New},
	"x-amz-checksum-sha256":    {"SHA256", sha256.New},
	"x-amz-checksum-sha512":    {"SHA512", sha512.New},
}

// isAWSChunked reports whether an S3 request's body is aws-chunked: its
// payload hash names a streaming variant or its Content-Encoding says so.
func isAWSChunked(r *http.Request, payloadHash string) bool {
	if strings.HasPrefix(payloadHash, "STREAMING-") {
		return true
	}
	for _, v := range r.Header.Values("Content-Encoding") {
		for enc := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(enc), "aws-chunked") {
				return true
			}
		}
	}
	return false
}

// bodyCheck is the body the gate forwards in place of the client's: the
// decoded payload, with every check done before its last byte is handed
// on. A body that fails a check therefore never reaches kumo whole, and
// kumo stores nothing from a body it could not read to its announced end.
type bodyCheck struct {
	src     io.ReadCloser
	br      *bufio.Reader // nil for a plain (not aws-chunked) body
	signed  bool
	trailer bool
	// want is the decoded length (x-amz-decoded-content-length, or the
	// Content-Length of a plain body); got counts decoded bytes.
	want, got int64

	// Checksums to verify: from a header (value known) or declared in
	// x-amz-trailer (value read from the trailer).
	sums []*bodySum

	// Chunk signatures: the chain starts at the request's own signature.
	key       []byte
	amzDate   string
	scope     string
	prevSig   string
	chunkSig  string    // the current chunk's claimed signature
	chunkHash hash.Hash // SHA-256 of the current chunk's data
	chunkLeft int64
	inChunk   bool

	held    byte
	hasHeld bool
	done    bool
	// failure is the answer to a body that failed a check. Set by
	// whoever reads the body (the proxy's transport), read by the gate
	// once the proxied call ended.
	failure atomic.Pointer[apiError]
}

type bodySum struct {
	header string // x-amz-checksum-crc32, content-md5, …
	name   string // CRC32, Content-MD5, … for messages
	h      hash.Hash
	want   string // base64; "" until the trailer gives it
}

// errBodyCheck is returned by bodyCheck.Read once a check failed; the
// gate answers the apiError recorded in failure.
var errBodyCheck = errors.New("request body failed the gate's checks")

// prepareBody replaces r.Body with a bodyCheck when the body is
// aws-chunked or carries a checksum (header or Content-MD5), and rewrites
// the headers kumo sees to those of the decoded body. A request that
// cannot be accepted as it stands gets the apiError S3 would answer.
func prepareBody(r *http.Request, si sigv4.Info, k *accessKey, payloadHash string) (*bodyCheck, *apiError) {
	chunked := isAWSChunked(r, payloadHash)
	bc := &bodyCheck{src: r.Body}
	var declared []string
	if chunked {
		switch payloadHash {
		case streamingSigned:
			bc.signed = true
		case streamingSignedTrailer:
			bc.signed, bc.trailer = true, true
		case streamingUnsignedTrailer:
			bc.trailer = true
		case unsignedPayload:
			// Content-Encoding: aws-chunked with an unsigned, trailerless
			// body: plain chunks.
		default:
			return nil, &apiError{Status: http.StatusBadRequest, Code: "InvalidArgument",
				Message: "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, STREAMING-AWS4-HMAC-SHA256-PAYLOAD or STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER for an aws-chunked body"}
		}
		dl := r.Header.Get("X-Amz-Decoded-Content-Length")
		if dl == "" {
			return nil, &apiError{Status: http.StatusLengthRequired, Code: "MissingContentLength",
				Message: "You must provide the Content-Length HTTP header."}
		}
		n, err := strconv.ParseInt(dl, 10, 64)
		if err != nil || n < 0 {
			return nil, &apiError{Status: http.StatusBadRequest, Code: "InvalidArgument",
				Message: "x-amz-decoded-content-length must be a non-negative integer"}
		}
		bc.want = n
		for _, v := range r.Header.Values("X-Amz-Trailer") {
			for name := range strings.SplitSeq(v, ",") {
				if name = strings.ToLower(strings.TrimSpace(name)); name != "" {
					declared = append(declared, name)
				}
			}
		}
		if bc.trailer && len(declared) == 0 {
			return nil, &apiError{Status: http.StatusBadRequest, Code: "InvalidRequest",
				Message: "x-amz-content-sha256 " + payloadHash + " needs an x-amz-trailer header"}
		}
		if !bc.trailer && len(declared) > 0 {
			return nil, &apiError{Status: http.StatusBadRequest, Code: "InvalidRequest",
				Message: "x-amz-trailer is only valid with a STREAMING-…-TRAILER x-amz-content-sha256"}
		}
		for _, name := range declared {
			alg, ok := checksumAlgorithms[name]
			if !ok {
				return nil, &apiError{Status: http.StatusBadRequest, Code: "InvalidRequest",
					Message: "The value specified in the x-amz-trailer header is not supported"}
			}
			bc.sums = append(bc.sums, &bodySum{header: name, name: alg.name, h: alg.new()})
		}
		bc.br = bufio.NewReaderSize(r.Body, 64<<10)
	} else {
		bc.want = r.ContentLength
	}
	for header, alg := range checksumAlgorithms {
		if v := r.Header.Get(header); v != "" {
			bc.sums = append(bc.sums, &bodySum{header: header, name: alg.name, h: alg.new(), want: v})
		}
	}
	if v := r.Header.Get("Content-Md5"); v != "" {
		if raw, err := base64.StdEncoding.DecodeString(v); err != nil || len(raw) != md5.Size {
			return nil, &apiError{Status: http.StatusBadRequest, Code: "InvalidDigest",
				Message: "The Content-MD5 you specified was invalid."}
		}
		bc.sums = append(bc.sums, &bodySum{header: "content-md5", name: "Content-MD5", h: md5.New(), want: v}) //nolint:gosec
	}
	if !chunked && len(bc.sums) == 0 {
		return nil, nil
	}
	if !chunked && bc.want < 0 {
		// A plain body of unknown length (Transfer-Encoding: chunked);
		// S3 refuses a PUT without Content-Length.
		return nil, &apiError{Status: http.StatusLengthRequired, Code: "MissingContentLength",
			Message: "You must provide the Content-Length HTTP header."}
	}
	if bc.signed {
		bc.key = signingKey(k.secret, si.Date, si.Region, si.Service)
		bc.amzDate = si.AmzDate.UTC().Format(sigv4.AmzDateFormat)
		bc.scope = si.Date + "/" + si.Region + "/" + si.Service + "/aws4_request"
		bc.prevSig = si.Signature
		bc.chunkHash = sha256.New()
	}
	if chunked {
		r.Header.Del("X-Amz-Decoded-Content-Length")
		r.Header.Del("X-Amz-Trailer")
		r.Header.Set("X-Amz-Content-Sha256", unsignedPayload)
		var encs []string
		for _, v := range r.Header.Values("Content-Encoding") {
			for enc := range strings.SplitSeq(v, ",") {
				if enc = strings.TrimSpace(enc); enc != "" && !strings.EqualFold(enc, "aws-chunked") {
					encs = append(encs, enc)
				}
			}
		}
		r.Header.Del("Content-Encoding")
		if len(encs) > 0 {
			r.Header.Set("Content-Encoding", strings.Join(encs, ","))
		}
		r.ContentLength = bc.want
		r.Header.Set("Content-Length", strconv.FormatInt(bc.want, 10))
		r.TransferEncoding = nil
	}
	r.Body = bc
	return bc, nil
}

// verifyEmpty runs every check of a body whose decoded length is zero:
// nothing reads such a body on its way to kumo.
func (bc *bodyCheck) verifyEmpty() *apiError {
	var buf [1]byte
	n, err := bc.Read(buf[:])
	if n > 0 {
		bc.fail(errTooLong())
	}
	if err != nil && err != io.EOF {
		bc.fail(apiError{Status: http.StatusBadRequest, Code: "IncompleteBody", Message: "could not read the request body"})
	}
	return bc.Failure()
}

// Read hands on decoded bytes but always keeps the last one back until
// the body has been read to its end and every check passed.
func (bc *bodyCheck) Read(p []byte) (int, error) {
	if bc.Failure() != nil {
		return 0, errBodyCheck
	}
	if bc.done {
		if bc.hasHeld {
			if len(p) == 0 {
				return 0, nil
			}
			p[0], bc.hasHeld = bc.held, false
			return 1, nil
		}
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	off := 0
	if bc.hasHeld {
		p[0], bc.hasHeld, off = bc.held, false, 1
	}
	n, err := bc.readData(p[off:])
	total := off + n
	switch {
	case err == io.EOF:
		bc.done = true
		return total, nil
	case err != nil:
		// Only the first failure counts: a truncated body is the answer
		// unless a check failed before.
		bc.fail(apiError{Status: http.StatusBadRequest, Code: "IncompleteBody",
			Message: "You did not provide the number of bytes specified by the Content-Length HTTP header."})
		return 0, errBodyCheck
	case total == 0:
		return 0, nil
	}
	bc.held, bc.hasHeld = p[total-1], true
	return total - 1, nil
}

func (bc *bodyCheck) Close() error { return bc.src.Close() }

func (bc *bodyCheck) fail(e apiError) { bc.failure.CompareAndSwap(nil, &e) }

// Failure is the answer to send when a check failed, else nil.
func (bc *bodyCheck) Failure() *apiError { return bc.failure.Load() }

func errTooLong() apiError {
	return apiError{Status: http.StatusBadRequest, Code: "IncompleteBody",
		Message: "The request body is longer than its x-amz-decoded-content-length."}
}

func errMalformedChunk(why string) apiError {
	return apiError{Status: http.StatusBadRequest, Code: "IncompleteBody",
		Message: "The aws-chunked request body is malformed: " + why + "."}
}

// readData returns at least one decoded byte, or io.EOF once the body
// ended and passed every check, or an error (Failure says which).
func (bc *bodyCheck) readData(p []byte) (int, error) {
	if bc.br == nil {
		return bc.readPlain(p)
	}
	for {
		if bc.chunkLeft > 0 {
			n, err := bc.br.Read(p[:min(int64(len(p)), bc.chunkLeft)])
			if n > 0 {
				bc.consume(p[:n])
				bc.chunkLeft -= int64(n)
				return n, nil
			}
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return 0, err
		}
		if bc.inChunk {
			if err := bc.endChunk(); err != nil {
				return 0, err
			}
		}
		size, err := bc.chunkHeader()
		if err != nil {
			return 0, err
		}
		if size == 0 {
			return 0, bc.finish()
		}
		if bc.got+size > bc.want {
			bc.fail(errTooLong())
			return 0, errBodyCheck
		}
		bc.chunkLeft, bc.inChunk = size, true
	}
}

func (bc *bodyCheck) readPlain(p []byte) (int, error) {
	left := bc.want - bc.got
	if left == 0 {
		return 0, bc.verifySums()
	}
	n, err := bc.src.Read(p[:min(int64(len(p)), left)])
	if n > 0 {
		bc.consume(p[:n])
		return n, nil
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return 0, err
}

func (bc *bodyCheck) consume(b []byte) {
	bc.got += int64(len(b))
	for _, s := range bc.sums {
		s.h.Write(b)
	}
	if bc.chunkHash != nil {
		bc.chunkHash.Write(b)
	}
}

// endChunk reads the CRLF after a chunk's data and checks its signature.
func (bc *bodyCheck) endChunk() error {
	line, err := bc.line()
	if err != nil {
		return err
	}
	if len(line) != 0 {
		bc.fail(errMalformedChunk("chunk data is longer than its size"))
		return errBodyCheck
	}
	bc.inChunk = false
	return bc.checkChunkSignature()
}

func (bc *bodyCheck) checkChunkSignature() error {
	if !bc.signed {
		return nil
	}
	sts := "AWS4-HMAC-SHA256-PAYLOAD\n" + bc.amzDate + "\n" + bc.scope + "\n" + bc.prevSig + "\n" +
		emptySHA256 + "\n" + hex.EncodeToString(bc.chunkHash.Sum(nil))
	bc.chunkHash.Reset()
	return bc.checkSignature(sts, bc.chunkSig)
}

func (bc *bodyCheck) checkSignature(stringToSign, claimed string) error {
	want := hex.EncodeToString(hmacSHA256(bc.key, stringToSign))
	if subtle.ConstantTimeCompare([]byte(want), []byte(claimed)) != 1 {
		bc.fail(errBadSignature())
		return errBodyCheck
	}
	bc.prevSig = want
	return nil
}

// chunkHeader reads "SIZE[;chunk-signature=SIG]".
func (bc *bodyCheck) chunkHeader() (int64, error) {
	line, err := bc.line()
	if err != nil {
		return 0, err
	}
	sizeHex, ext, hasExt := strings.Cut(string(line), ";")
	size, perr := strconv.ParseInt(sizeHex, 16, 64)
	if perr != nil || size < 0 {
		bc.fail(errMalformedChunk("a chunk size is not hexadecimal"))
		return 0, errBodyCheck
	}
	bc.chunkSig = ""
	if hasExt {
		name, sig, _ := strings.Cut(ext, "=")
		if name == "chunk-signature" {
			bc.chunkSig = sig
		}
	}
	if bc.signed && bc.chunkSig == "" {
		bc.fail(errMalformedChunk("a chunk has no chunk-signature"))
		return 0, errBodyCheck
	}
	return size, nil
}

// finish reads what follows the final zero-length chunk: its signature,
// the trailers and their signature, and runs the end-of-body checks.
func (bc *bodyCheck) finish() error {
	if err := bc.checkChunkSignature(); err != nil {
		return err
	}
	if bc.got != bc.want {
		bc.fail(apiError{Status: http.StatusBadRequest, Code: "IncompleteBody",
			Message: "You did not provide the number of bytes specified by the x-amz-decoded-content-length header."})
		return errBodyCheck
	}
	var canonical bytes.Buffer
	var trailerSig string
	need := 0
	for _, s := range bc.sums {
		if s.want == "" {
			need++
		}
	}
	// Encoders differ in the blank lines around trailers (minio-go ends a
	// trailer with "\n" followed by "\r\n"), so blank lines are skipped
	// until every declared trailer (and its signature) has been read.
	for i := 0; ; i++ {
		complete := need == 0 && (!bc.trailer || !bc.signed || trailerSig != "")
		line, err := bc.line()
		if err == io.ErrUnexpectedEOF && complete {
			break // the closing blank line is missing: nothing is lost
		}
		if err != nil {
			return err
		}
		if len(line) == 0 {
			if complete {
				break
			}
			continue
		}
		if i == maxTrailerLines || !bc.trailer {
			bc.fail(errMalformedChunk("unexpected data after the final chunk"))
			return errBodyCheck
		}
		name, value, ok := strings.Cut(string(line), ":")
		name = strings.ToLower(strings.TrimSpace(name))
		value = strings.TrimSpace(value)
		if !ok {
			bc.fail(errMalformedChunk("a trailer is not NAME:VALUE"))
			return errBodyCheck
		}
		if name == trailerSignatureHd {
			trailerSig = value
			continue
		}
		var s *bodySum
		for _, c := range bc.sums {
			if c.header == name && c.want == "" {
				s = c
			}
		}
		if s == nil {
			bc.fail(apiError{Status: http.StatusBadRequest, Code: "InvalidRequest",
				Message: "The trailer " + name + " was not declared in the x-amz-trailer header"})
			return errBodyCheck
		}
		s.want = value
		need--
		canonical.WriteString(name + ":" + value + "\n")
	}
	if bc.signed && bc.trailer {
		sts := "AWS4-HMAC-SHA256-TRAILER\n" + bc.amzDate + "\n" + bc.scope + "\n" + bc.prevSig + "\n" +
			hex.EncodeToString(sha256Sum(canonical.Bytes()))
		if err := bc.checkSignature(sts, trailerSig); err != nil {
			return err
		}
	}
	return bc.verifySums()
}

// verifySums compares every checksum with the bytes received; a mismatch
// is S3's 400 BadDigest (InvalidDigest for a value that is not base64 of
// the algorithm's size).
func (bc *bodyCheck) verifySums() error {
	for _, s := range bc.sums {
		got := s.h.Sum(nil)
		raw, err := base64.StdEncoding.DecodeString(s.want)
		if err != nil || len(raw) != len(got) {
			bc.fail(apiError{Status: http.StatusBadRequest, Code: "InvalidRequest",
				Message: "Value for " + s.header + " header is invalid."})
			return errBodyCheck
		}
		if subtle.ConstantTimeCompare(raw, got) != 1 {
			msg := "The " + s.name + " you specified did not match the calculated checksum."
			if s.header == "content-md5" {
				msg = "The Content-MD5 you specified did not match what we received."
			}
			bc.fail(apiError{Status: http.StatusBadRequest, Code: "BadDigest", Message: msg})
			return errBodyCheck
		}
	}
	return io.EOF
}

// line reads one line of the chunk framing without its CRLF (or LF).
func (bc *bodyCheck) line() ([]byte, error) {
	line, err := bc.br.ReadSlice('\n')
	switch {
	case err == bufio.ErrBufferFull || len(line) > maxChunkLine:
		bc.fail(errMalformedChunk("a chunk header or trailer line is too long"))
		return nil, errBodyCheck
	case err == io.EOF:
		return nil, io.ErrUnexpectedEOF
	case err != nil:
		return nil, err
	}
	line = bytes.TrimSuffix(line[:len(line)-1], []byte("\r"))
	return line, nil
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

func sha256Sum(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}

// signingKey derives SigV4's signing key; the SDK keeps its own derivation
// internal.
func signingKey(secret, date, region, service string) []byte {
	k := hmacSHA256([]byte("AWS4"+secret), date)
	k = hmacSHA256(k, region)
	k = hmacSHA256(k, service)
	return hmacSHA256(k, "aws4_request")
}
