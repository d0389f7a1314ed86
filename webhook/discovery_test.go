package webhook

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"k8s.io/client-go/rest"
)

// Issue 12 item 5: discovery keeps its cause. An API server that cannot be reached, or that
// refuses the webhook's credentials, is not "ESO's CRDs are missing".
func TestDiscoverESOVersionKeepsCause(t *testing.T) {
	t.Parallel()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + closed.Addr().String()
	closed.Close()
	forbidden := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte(`{"kind":"Status","apiVersion":"v1","status":"Failure","message":"forbidden: User \"system:anonymous\" cannot get path \"/apis/external-secrets.io/v1\"","reason":"Forbidden","code":403}`))
	}))
	t.Cleanup(forbidden.Close)
	notServed := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(notServed.Close)
	for name, tc := range map[string]struct {
		host      string
		notServed bool
		want      string
	}{
		"unreachable": {host: refused, want: "connection refused"},
		"forbidden":   {host: forbidden.URL, want: "forbidden"},
		"not served":  {host: notServed.URL, notServed: true, want: "install External Secrets Operator's CRDs"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := DiscoverESOVersion(&rest.Config{Host: tc.host})
			if err == nil {
				t.Fatal("no error")
			}
			if errors.Is(err, ErrESONotServed) != tc.notServed {
				t.Errorf("errors.Is(err, ErrESONotServed) = %v, want %v: %v", !tc.notServed, tc.notServed, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
		})
	}
}
