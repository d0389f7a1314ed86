package explaintest

import (
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
)

// Registry modes: how the fake registry's /v2/ authenticates.
const (
	// ModeBasic answers as distribution's htpasswd auth: 401 with a Basic challenge, 200 with the
	// account's basic auth.
	ModeBasic = "basic"
	// ModeBearer answers as a token-auth registry: 401 with a Bearer challenge naming its /token
	// realm, which issues a token for the account; /v2/ accepts only that token.
	ModeBearer = "bearer"
	// ModeOpen needs no credential.
	ModeOpen = "open"
)

// FakeRegistry is a registry's /v2/ (and, for ModeBearer, its token realm) with one account.
type FakeRegistry struct {
	*httptest.Server
	// User, Password and Token are the account and the token the realm issues for it.
	User, Password, Token string
	mode                  string
	mu                    sync.Mutex
	sawCredential         []string
}

// NewRegistry starts a fake registry, over TLS (a self-signed certificate: CAPEM) or plain HTTP,
// closed at cleanup.
func NewRegistry(t *testing.T, mode string, tlsOn bool) *FakeRegistry {
	t.Helper()
	r := &FakeRegistry{User: "puller", Password: "pa55-w0rd-secret", Token: "tok-3f9a-secret", mode: mode}
	h := http.HandlerFunc(r.serve)
	if tlsOn {
		r.Server = httptest.NewTLSServer(h)
	} else {
		r.Server = httptest.NewServer(h)
	}
	t.Cleanup(r.Close)
	return r
}

func (r *FakeRegistry) serve(w http.ResponseWriter, req *http.Request) {
	if req.Header.Get("Authorization") != "" {
		r.mu.Lock()
		r.sawCredential = append(r.sawCredential, req.URL.Path)
		r.mu.Unlock()
	}
	user, pass, basic := req.BasicAuth()
	good := basic && user == r.User && pass == r.Password
	switch {
	case req.URL.Path == "/token" && r.mode == ModeBearer:
		if !good || req.URL.Query().Get("service") != "fake-registry" {
			http.Error(w, `{"details":"incorrect username or password"}`, http.StatusUnauthorized)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"token": r.Token})
	case req.URL.Path != "/v2/":
		http.NotFound(w, req)
	case r.mode == ModeOpen, r.mode == ModeBasic && good, r.mode == ModeBearer && req.Header.Get("Authorization") == "Bearer "+r.Token:
		_, _ = w.Write([]byte("{}"))
	case r.mode == ModeBasic:
		w.Header().Set("WWW-Authenticate", `Basic realm="registry"`)
		http.Error(w, `{"errors":[{"code":"UNAUTHORIZED"}]}`, http.StatusUnauthorized)
	default:
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="%s/token",service="fake-registry"`, r.URL))
		http.Error(w, `{"errors":[{"code":"UNAUTHORIZED"}]}`, http.StatusUnauthorized)
	}
}

// Host is host:port, as a docker config's auths key names a registry.
func (r *FakeRegistry) Host() string {
	u, _ := url.Parse(r.URL)
	return u.Host
}

// CAPEM is the TLS server's certificate, for --registry-ca.
func (r *FakeRegistry) CAPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: r.Certificate().Raw})
}

// SawCredential are the paths of the requests that carried a credential.
func (r *FakeRegistry) SawCredential() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.sawCredential...)
}
