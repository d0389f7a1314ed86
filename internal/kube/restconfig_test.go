package kube

import (
	"os"
	"path/filepath"
	"testing"
)

func TestNamespace(t *testing.T) {
	dir := t.TempDir()
	write := func(name, ns string) string {
		p := filepath.Join(dir, name)
		kc := `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:6443"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u` + ns + `}}]
current-context: x
`
		if err := os.WriteFile(p, []byte(kc), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for name, tc := range map[string]struct {
		kubeconfig, want string
	}{
		"the context's namespace":          {kubeconfig: write("team.yaml", ", namespace: team-a"), want: "team-a"},
		"a context without one is default": {kubeconfig: write("plain.yaml", ""), want: "default"},
		"an unreadable kubeconfig":         {kubeconfig: filepath.Join(dir, "absent"), want: "default"},
	} {
		t.Run(name, func(t *testing.T) {
			if got := Namespace(tc.kubeconfig); got != tc.want {
				t.Errorf("Namespace(%s) = %q, want %q", tc.kubeconfig, got, tc.want)
			}
		})
	}
}
