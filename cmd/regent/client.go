package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/regent-sched/regent/cmd/regent/internal/api"
	"github.com/regent-sched/regent/cmd/regent/internal/config"
)

// clusterFlags are the flags of a command that talks to a running
// cluster's REST API (`regent status`, `regent drill` without --local):
// which replica to ask, how to verify it, and how to authenticate. Both
// commands register them here and build their client with client, so
// that they accept the same credentials in the same way.
type clusterFlags struct {
	addr, caFile, certFile, keyFile, tokenFile string
	// writes is set for a command that writes (a drill steps leaders
	// down): it also has --token-file.
	writes bool
}

// register defines the flags on f; scope ends every help text, naming
// the modes a flag applies to (empty for none).
func (c *clusterFlags) register(f *pflag.FlagSet, writes bool, scope string) {
	c.writes = writes
	if scope != "" {
		scope = " (" + scope + ")"
	}
	f.StringVar(&c.addr, "addr", "http://127.0.0.1:8080", "base URL of any replica"+scope)
	f.StringVar(&c.caFile, "ca-file", "", "PEM CA bundle to verify an https:// replica"+scope)
	cert := "PEM client certificate (with --key-file) to present to an https:// replica, or to a proxy in front of it that asks for one; regent's reads need none"
	if writes {
		cert = "PEM client certificate (with --key-file) to present to an https:// replica: signed by the cluster's --tls-client-ca-file, it authenticates the writes"
	}
	f.StringVar(&c.certFile, "cert-file", "", cert+scope)
	f.StringVar(&c.keyFile, "key-file", "", "PEM private key of --cert-file"+scope)
	if writes {
		f.StringVar(&c.tokenFile, "token-file", "", "file holding a bearer token for the cluster's writes (its first token is sent), for a cluster with --auth-token-file"+scope)
	}
}

// client is the REST client the flags describe; each request may take up
// to timeout.
func (c *clusterFlags) client(timeout time.Duration) (api.Client, error) {
	cl := api.Client{Base: c.addr, HTTP: &http.Client{Timeout: timeout}}
	https := strings.HasPrefix(strings.ToLower(c.addr), "https://")
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	custom := false
	if c.caFile != "" {
		pool, err := config.ReadCAPool(c.caFile)
		if err != nil {
			return cl, fmt.Errorf("--ca-file: %w", err)
		}
		tc.RootCAs, custom = pool, true
	}
	switch {
	case (c.certFile == "") != (c.keyFile == ""):
		return cl, errors.New("--cert-file and --key-file go together")
	case c.certFile != "" && !https:
		return cl, fmt.Errorf("--cert-file: a client certificate needs an https:// --addr, not %q", c.addr)
	case c.certFile != "":
		cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
		if err != nil {
			return cl, fmt.Errorf("--cert-file/--key-file: %w", err)
		}
		tc.Certificates, custom = []tls.Certificate{cert}, true
	}
	if custom {
		cl.HTTP.Transport = &http.Transport{TLSClientConfig: tc, Proxy: http.ProxyFromEnvironment}
	}
	if c.tokenFile != "" {
		tokens, err := config.ReadTokens(c.tokenFile)
		if err != nil {
			return cl, fmt.Errorf("--token-file: %w", err)
		}
		cl.Token = tokens[0]
	}
	return cl, nil
}

// credentialsHint explains a 401 from the cluster in terms of the flags.
func (c *clusterFlags) credentialsHint() string {
	given := c.tokenFile != "" || c.certFile != ""
	if given {
		return "the cluster refused the credentials given: check --token-file against its --auth-token-file, or that its --tls-client-ca-file signed --cert-file"
	}
	return "the cluster requires credentials for writes: give --token-file (a token from its --auth-token-file), or --cert-file and --key-file (a client certificate its --tls-client-ca-file signed)"
}
