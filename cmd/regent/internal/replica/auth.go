package replica

import (
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"strings"

	"github.com/regent-sched/regent/cmd/regent/internal/config"
)

// auth decides who may write. With neither a token file nor a client CA
// configured every write is allowed (a development setup); with either,
// a write needs a listed bearer token or a client certificate the CA
// signed. Reads are open: they show nothing secret.
type auth struct {
	tokens   [][]byte
	clientCA *x509.CertPool
}

func newAuth(cfg *config.Config) (*auth, error) {
	a := &auth{}
	if cfg.AuthTokenFile != "" {
		tokens, err := config.ReadTokens(cfg.AuthTokenFile)
		if err != nil {
			return nil, err
		}
		for _, t := range tokens {
			a.tokens = append(a.tokens, []byte(t))
		}
	}
	if cfg.TLSClientCAFile != "" {
		pool, err := config.ReadCAPool(cfg.TLSClientCAFile)
		if err != nil {
			return nil, err
		}
		a.clientCA = pool
	}
	return a, nil
}

// required reports whether writes need credentials.
func (a *auth) required() bool { return len(a.tokens) > 0 || a.clientCA != nil }

// allowed reports whether r carries acceptable credentials, and if not why.
func (a *auth) allowed(r *http.Request) (bool, string) {
	if !a.required() {
		return true, ""
	}
	if a.clientCA != nil && r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
		return true, ""
	}
	h := r.Header.Get("Authorization")
	if h == "" {
		return false, "this endpoint needs a bearer token or a client certificate"
	}
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false, "the Authorization header must be \"Bearer <token>\""
	}
	given := []byte(strings.TrimSpace(tok))
	match := 0
	for _, t := range a.tokens {
		match |= subtle.ConstantTimeCompare(given, t)
	}
	if match == 1 {
		return true, ""
	}
	return false, "the bearer token is not valid"
}

// peerToken is what a standby presents when it forwards a write it has
// authenticated (by client certificate) to the leader.
func (a *auth) peerToken() string {
	if len(a.tokens) == 0 {
		return ""
	}
	return string(a.tokens[0])
}

// serverTLS is the listener's TLS configuration.
func (a *auth) serverTLS(cfg *config.Config) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(cfg.TLSCertFile, cfg.TLSKeyFile)
	if err != nil {
		return nil, err
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	if a.clientCA != nil {
		// Reads stay open to clients without a certificate; writes check
		// VerifiedChains.
		tc.ClientCAs = a.clientCA
		tc.ClientAuth = tls.VerifyClientCertIfGiven
	}
	return tc, nil
}
