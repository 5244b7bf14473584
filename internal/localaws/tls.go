package localaws

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/rs/zerolog"
)

// certLifetime is how long the generated CA and server certificate are
// valid: longer than any devstack runs, short enough that a leaked dev CA
// is worthless soon.
const certLifetime = 30 * 24 * time.Hour

// tlsMaterial is what a stack started with Options.TLS serves and hands
// its clients: a CA generated at start (its private key never leaves this
// process) and a server certificate it signed.
type tlsMaterial struct {
	caPEM  []byte
	pool   *x509.CertPool
	server tls.Certificate
}

// newTLSMaterial generates a CA and a server certificate for the loopback
// names (127.0.0.1, ::1, localhost) and host, when host is a specific
// name or address rather than a wildcard listen address.
func newTLSMaterial(host string, now time.Time) (*tlsMaterial, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate CA key: %w", err)
	}
	notBefore := now.Add(-time.Hour) // tolerate clocks a little behind
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{Organization: []string{"ferry localaws"}, CommonName: "ferry localaws CA " + now.UTC().Format(time.RFC3339)},
		NotBefore:             notBefore,
		NotAfter:              now.Add(certLifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("create CA certificate: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, fmt.Errorf("parse CA certificate: %w", err)
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate server key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{Organization: []string{"ferry localaws"}, CommonName: "localhost"},
		NotBefore:    notBefore,
		NotAfter:     now.Add(certLifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		// *.localhost: the regional host names (s3-eu-west-1.localhost).
		DNSNames:    []string{"localhost", "*.localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	if ip := net.ParseIP(host); ip != nil {
		if !ip.IsUnspecified() && !ip.IsLoopback() {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		}
	} else if host != "" && host != "localhost" {
		tmpl.DNSNames = append(tmpl.DNSNames, host)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("create server certificate: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &tlsMaterial{
		caPEM:  pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		pool:   pool,
		server: tls.Certificate{Certificate: [][]byte{der, caDER}, PrivateKey: key},
	}, nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return n
}

// serverConfig is the TLS configuration of the gate. It offers HTTP/1.1
// only, as S3's endpoints do (clients negotiate it through ALPN), so the
// SDK's connection pooling and aws-chunked uploads behave as against AWS.
func (m *tlsMaterial) serverConfig() *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{m.server},
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"http/1.1"},
	}
}

// CAPEM is the PEM of the CA the stack's certificate is signed by (nil
// without Options.TLS). Clients trust the stack by trusting it: the SDKs
// and the aws CLI through AWS_CA_BUNDLE, rclone through --ca-cert.
func (s *Stack) CAPEM() []byte {
	if s.tls == nil {
		return nil
	}
	return append([]byte(nil), s.tls.caPEM...)
}

// CertPool holds the stack's CA (nil without Options.TLS).
func (s *Stack) CertPool() *x509.CertPool {
	if s.tls == nil {
		return nil
	}
	return s.tls.pool
}

// TLS reports whether the stack serves https.
func (s *Stack) TLS() bool { return s.tls != nil }

// clientTLS makes tr trust the stack's CA (and only it) when the stack
// serves https; it changes nothing otherwise.
func (s *Stack) clientTLS(tr *http.Transport) {
	if s.tls == nil {
		return
	}
	if tr.TLSClientConfig == nil {
		tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	tr.TLSClientConfig.RootCAs = s.tls.pool
}

// debugWriter logs each line net/http's server writes (TLS handshake
// failures, mostly) at debug level.
type debugWriter struct{ log zerolog.Logger }

func (d debugWriter) Write(p []byte) (int, error) {
	d.log.Debug().Str("source", "http.Server").Msg(strings.TrimSpace(string(p)))
	return len(p), nil
}

// HTTPClient is a plain HTTP client for the stack's admin endpoints
// (/_localaws/…) that trusts the stack's CA when it serves https. It is
// shared; Close closes its idle connections.
func (s *Stack) HTTPClient() *http.Client { return s.admin }
