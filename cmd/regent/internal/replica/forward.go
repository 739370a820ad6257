package replica

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"

	"github.com/regent-sched/regent/cmd/regent/internal/api"
	"github.com/regent-sched/regent/cmd/regent/internal/config"
)

// forwarder sends a standby's requests on to the leader.
type forwarder struct {
	proxy *httputil.ReverseProxy
	auth  *auth
	// client reads from the leader for a standby's status page.
	client *http.Client
}

type targetKey struct{}

func newForwarder(cfg *config.Config, a *auth) (*forwarder, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.PeerCAFile != "" {
		pool, err := config.ReadCAPool(cfg.PeerCAFile)
		if err != nil {
			return nil, err
		}
		tc.RootCAs = pool
	}
	if cfg.TLS() {
		// Replicas present their own certificate to each other: with
		// --tls-client-ca-file it authenticates forwarded writes.
		cert, err := tls.LoadX509KeyPair(cfg.TLSCertFile, cfg.TLSKeyFile)
		if err != nil {
			return nil, err
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	tr := &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
		TLSClientConfig:       tc,
		TLSHandshakeTimeout:   3 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		MaxIdleConnsPerHost:   8,
		IdleConnTimeout:       time.Minute,
	}
	f := &forwarder{auth: a, client: &http.Client{Transport: tr, Timeout: 3 * time.Second}}
	f.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			target := pr.In.Context().Value(targetKey{}).(*url.URL)
			pr.SetURL(target)
			pr.SetXForwarded()
			pr.Out.Host = target.Host
			// This replica's server already answered the client's
			// Expect: 100-continue; the leader's would reach it twice.
			pr.Out.Header.Del("Expect")
		},
		Transport: tr,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			leader, _ := r.Context().Value(leaderKey{}).(string)
			w.Header().Set("Retry-After", "1")
			writeError(w, http.StatusBadGateway, fmt.Sprintf("the leader %s did not answer: %v", leader, err))
		},
	}
	return f, nil
}

type leaderKey struct{}

// forward sends r to the leader at base and copies its answer to w.
func (f *forwarder) forward(w http.ResponseWriter, r *http.Request, self, leaderID, base string) {
	target, err := url.Parse(base)
	if err != nil || target.Host == "" {
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("the leader %s advertises an unusable address %q", leaderID, base))
		return
	}
	out := r.Clone(context.WithValue(context.WithValue(r.Context(), targetKey{}, target), leaderKey{}, leaderID))
	out.Header.Set(api.HeaderForwardedBy, self)
	if out.Header.Get("Authorization") == "" && r.Method != http.MethodGet && r.Method != http.MethodHead {
		// This replica authenticated the caller (by client certificate);
		// it vouches for it with its own credential.
		if tok := f.auth.peerToken(); tok != "" {
			out.Header.Set("Authorization", "Bearer "+tok)
		}
	}
	f.proxy.ServeHTTP(w, out)
}
