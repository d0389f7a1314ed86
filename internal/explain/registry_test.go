package explain

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/credchain/credchain/internal/explain/explaintest"
)

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
		key       func(r *explaintest.FakeRegistry) string // the auths key
		wrong     bool                                     // the Secret's password is wrong
		authField bool                                     // the credential is in auths.*.auth
		ca        bool                                     // trust the registry's certificate (--registry-ca)
		insecure  bool
		want      want
	}{
		"basic over TLS, the CA given": {mode: "basic", tls: true, ca: true, key: (*explaintest.FakeRegistry).Host, want: want{auth: "basic", status: 200}},
		"basic, a wrong password":      {mode: "basic", tls: true, ca: true, key: (*explaintest.FakeRegistry).Host, wrong: true, want: want{auth: "basic", status: 401}},
		"basic, the credential in auth": {mode: "basic", tls: true, ca: true, key: (*explaintest.FakeRegistry).Host, authField: true,
			want: want{auth: "basic", status: 200}},
		"bearer token flow":                          {mode: "bearer", tls: true, ca: true, key: (*explaintest.FakeRegistry).Host, want: want{auth: "bearer", status: 200}},
		"bearer, a wrong password":                   {mode: "bearer", tls: true, ca: true, key: (*explaintest.FakeRegistry).Host, wrong: true, want: want{auth: "bearer", status: 401}},
		"no credential asked":                        {mode: "open", tls: true, ca: true, key: (*explaintest.FakeRegistry).Host, want: want{auth: "none", status: 200}},
		"an unknown CA":                              {mode: "basic", tls: true, key: (*explaintest.FakeRegistry).Host, want: want{err: "certificate"}},
		"--registry-insecure, TLS":                   {mode: "basic", tls: true, insecure: true, key: (*explaintest.FakeRegistry).Host, want: want{auth: "basic", status: 200}},
		"plain HTTP, no scheme":                      {mode: "basic", key: (*explaintest.FakeRegistry).Host, want: want{err: "http: server gave HTTP response to HTTPS client"}},
		"plain HTTP, --registry-insecure falls back": {mode: "basic", insecure: true, key: (*explaintest.FakeRegistry).Host, want: want{auth: "basic", status: 200}},
		"plain HTTP, the key says http://": {mode: "bearer", key: func(r *explaintest.FakeRegistry) string { return "http://" + r.Host() },
			want: want{auth: "bearer", status: 200}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			reg := explaintest.NewRegistry(t, tc.mode, tc.tls)
			var ca []byte
			if tc.ca {
				ca = reg.CAPEM()
			}
			rc, err := NewRegistryChecker(ca, tc.insecure)
			if err != nil {
				t.Fatal(err)
			}
			pass := reg.Password
			if tc.wrong {
				pass = "not-the-" + reg.Password
			}
			got := rc.CheckSecret(context.Background(), dockerSecret(tc.key(reg), reg.User, pass, tc.authField))
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
			for _, secret := range []string{reg.Password, pass, reg.Token, base64.StdEncoding.EncodeToString([]byte(reg.User + ":" + pass))} {
				if strings.Contains(printed, secret) {
					t.Errorf("the report holds the credential %q:\n%s", secret, printed)
				}
			}
			for _, p := range reg.SawCredential() {
				if (tc.mode == "open" || tc.mode == "basic") && p != "/v2/" || tc.mode == "bearer" && p != "/token" && p != "/v2/" {
					t.Errorf("a credential was sent to %s", p)
				}
			}
			if tc.mode == "open" && len(reg.SawCredential()) > 0 {
				t.Errorf("a credential was sent to a registry that asked for none")
			}
		})
	}
}
