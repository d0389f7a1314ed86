package explain

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// fakeRegistry is a registry's /v2/ with one account: "basic" answers as distribution's
// htpasswd auth does, "bearer" as a token-auth registry (a realm issuing a token for the
// account, /v2/ accepting only that token), "open" needs no credential.
type fakeRegistry struct {
	*httptest.Server
	user, pass, token string
	mode              string
	// sawCredential records every request that carried a credential, by path.
	sawCredential []string
}

func newFakeRegistry(t *testing.T, mode string, tlsOn bool) *fakeRegistry {
	t.Helper()
	r := &fakeRegistry{user: "puller", pass: "pa55-w0rd-secret", token: "tok-3f9a-secret", mode: mode}
	h := http.HandlerFunc(r.serve)
	if tlsOn {
		r.Server = httptest.NewTLSServer(h)
	} else {
		r.Server = httptest.NewServer(h)
	}
	t.Cleanup(r.Close)
	return r
}

func (r *fakeRegistry) serve(w http.ResponseWriter, req *http.Request) {
	if req.Header.Get("Authorization") != "" {
		r.sawCredential = append(r.sawCredential, req.URL.Path)
	}
	user, pass, basic := req.BasicAuth()
	switch {
	case req.URL.Path == "/token" && r.mode == "bearer":
		if !basic || user != r.user || pass != r.pass || req.URL.Query().Get("service") != "fake-registry" {
			http.Error(w, `{"details":"incorrect username or password"}`, http.StatusUnauthorized)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"token": r.token})
	case req.URL.Path != "/v2/":
		http.NotFound(w, req)
	case r.mode == "open":
		_, _ = w.Write([]byte("{}"))
	case r.mode == "basic" && basic && user == r.user && pass == r.pass:
		_, _ = w.Write([]byte("{}"))
	case r.mode == "bearer" && req.Header.Get("Authorization") == "Bearer "+r.token:
		_, _ = w.Write([]byte("{}"))
	case r.mode == "basic":
		w.Header().Set("WWW-Authenticate", `Basic realm="registry"`)
		http.Error(w, `{"errors":[{"code":"UNAUTHORIZED"}]}`, http.StatusUnauthorized)
	default:
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="%s/token",service="fake-registry"`, r.URL))
		http.Error(w, `{"errors":[{"code":"UNAUTHORIZED"}]}`, http.StatusUnauthorized)
	}
}

func (r *fakeRegistry) host() string { u, _ := url.Parse(r.URL); return u.Host }

func (r *fakeRegistry) caPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: r.Certificate().Raw})
}

func dockerSecret(key, user, pass string, useAuthField bool) *corev1.Secret {
	entry := map[string]string{"username": user, "password": pass}
	if useAuthField {
		entry = map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))}
	}
	b, _ := json.Marshal(map[string]any{"auths": map[string]any{key: entry}})
	return &corev1.Secret{Type: corev1.SecretTypeDockerConfigJson, Data: map[string][]byte{corev1.DockerConfigJsonKey: b}}
}

// TestRegistryCheck tries credentials at registries that authenticate each way: ok with the right
// one, broken with a wrong one, the auths key's scheme honoured, TLS verified against
// --registry-ca or skipped with --registry-insecure (which also falls back to plain HTTP), and
// the credential never in what is reported nor sent where it was not asked for.
func TestRegistryCheck(t *testing.T) {
	t.Parallel()
	type want struct {
		auth   string
		status int
		err    string
	}
	tests := map[string]struct {
		mode      string
		tls       bool
		key       func(r *fakeRegistry) string // the auths key
		wrong     bool                         // the Secret's password is wrong
		authField bool                         // the credential is in auths.*.auth
		ca        bool                         // trust the registry's certificate (--registry-ca)
		insecure  bool
		want      want
	}{
		"basic over TLS, the CA given": {mode: "basic", tls: true, ca: true, key: (*fakeRegistry).host, want: want{auth: "basic", status: 200}},
		"basic, a wrong password":      {mode: "basic", tls: true, ca: true, key: (*fakeRegistry).host, wrong: true, want: want{auth: "basic", status: 401}},
		"basic, the credential in auth": {mode: "basic", tls: true, ca: true, key: (*fakeRegistry).host, authField: true,
			want: want{auth: "basic", status: 200}},
		"bearer token flow":                          {mode: "bearer", tls: true, ca: true, key: (*fakeRegistry).host, want: want{auth: "bearer", status: 200}},
		"bearer, a wrong password":                   {mode: "bearer", tls: true, ca: true, key: (*fakeRegistry).host, wrong: true, want: want{auth: "bearer", status: 401}},
		"no credential asked":                        {mode: "open", tls: true, ca: true, key: (*fakeRegistry).host, want: want{auth: "none", status: 200}},
		"an unknown CA":                              {mode: "basic", tls: true, key: (*fakeRegistry).host, want: want{err: "certificate"}},
		"--registry-insecure, TLS":                   {mode: "basic", tls: true, insecure: true, key: (*fakeRegistry).host, want: want{auth: "basic", status: 200}},
		"plain HTTP, no scheme":                      {mode: "basic", key: (*fakeRegistry).host, want: want{err: "http: server gave HTTP response to HTTPS client"}},
		"plain HTTP, --registry-insecure falls back": {mode: "basic", insecure: true, key: (*fakeRegistry).host, want: want{auth: "basic", status: 200}},
		"plain HTTP, the key says http://": {mode: "bearer", key: func(r *fakeRegistry) string { return "http://" + r.host() },
			want: want{auth: "bearer", status: 200}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			reg := newFakeRegistry(t, tc.mode, tc.tls)
			var ca []byte
			if tc.ca {
				ca = reg.caPEM()
			}
			rc, err := NewRegistryChecker(ca, tc.insecure)
			if err != nil {
				t.Fatal(err)
			}
			pass := reg.pass
			if tc.wrong {
				pass = "not-the-" + reg.pass
			}
			got := rc.CheckSecret(context.Background(), dockerSecret(tc.key(reg), reg.user, pass, tc.authField))
			if len(got) != 1 {
				t.Fatalf("results %+v", got)
			}
			res := got[0]
			switch {
			case tc.want.err != "":
				if res.Err == nil || !strings.Contains(res.Err.Error(), tc.want.err) {
					t.Errorf("err %v, want one containing %q", res.Err, tc.want.err)
				}
			case res.Err != nil || res.Auth != tc.want.auth || res.Status != tc.want.status:
				t.Errorf("got auth %q status %d err %v, want %q %d", res.Auth, res.Status, res.Err, tc.want.auth, tc.want.status)
			}
			// Nothing reported holds the credential, and it went only where it was asked for.
			link := Judge(&Facts{Target: Target{Kind: KindExternalSecret, Namespace: "prod", Name: "x"},
				ExternalSecrets: map[string]*ExternalSecretFacts{"x": {}},
				Secrets:         []*SecretFacts{{Name: "s", Registries: got}}})
			b, _ := json.Marshal(link)
			printed := text(t, link) + string(b) + fmt.Sprintf("%+v", got)
			for _, secret := range []string{reg.pass, pass, reg.token, base64.StdEncoding.EncodeToString([]byte(reg.user + ":" + pass))} {
				if strings.Contains(printed, secret) {
					t.Errorf("the report holds the credential %q:\n%s", secret, printed)
				}
			}
			for _, p := range reg.sawCredential {
				if (tc.mode == "open" || tc.mode == "basic") && p != "/v2/" || tc.mode == "bearer" && p != "/token" && p != "/v2/" {
					t.Errorf("a credential was sent to %s", p)
				}
			}
			if tc.mode == "open" && len(reg.sawCredential) > 0 {
				t.Errorf("a credential was sent to a registry that asked for none")
			}
		})
	}
}
