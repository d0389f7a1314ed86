package auditguard

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/credchain/credchain/internal/chain"
	"github.com/credchain/credchain/internal/vaultacl"
)

// weakenedManifests: two ExternalSecrets on a ClusterSecretStore logging in with the role ESO
// (one reading with a dataFrom find), one on a SecretStore logging in with another role, one in
// Vault namespace team-a.
const weakenedManifests = `
apiVersion: external-secrets.io/v1
kind: ClusterSecretStore
metadata: {name: vault}
spec:
  provider:
    vault:
      server: http://vault:8200
      path: registry-creds
      version: v2
      auth: {kubernetes: {role: ESO, serviceAccountRef: {name: external-secrets, namespace: external-secrets}}}
---
apiVersion: external-secrets.io/v1
kind: SecretStore
metadata: {name: other, namespace: prod}
spec:
  provider:
    vault:
      server: http://vault:8200
      path: registry-creds
      auth: {kubernetes: {role: other, mountPath: k8s-other}}
---
apiVersion: external-secrets.io/v1
kind: SecretStore
metadata: {name: team, namespace: team-a}
spec:
  provider:
    vault:
      server: http://vault:8200
      path: registry-creds
      namespace: team-a/
      auth: {kubernetes: {role: team, mountPath: k8s-team}}
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: app, namespace: team-a}
spec:
  secretStoreRef: {kind: SecretStore, name: team}
  data:
  - {secretKey: config, remoteRef: {key: order-service}}
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: order-service, namespace: prod}
spec:
  secretStoreRef: {kind: ClusterSecretStore, name: vault}
  data:
  - {secretKey: config, remoteRef: {key: order-service}}
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: inventory, namespace: prod}
spec:
  secretStoreRef: {kind: ClusterSecretStore, name: vault}
  dataFrom:
  - find: {path: inventory, name: {regexp: ".*"}}
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: unrelated, namespace: prod}
spec:
  secretStoreRef: {kind: SecretStore, name: other}
  data:
  - {secretKey: config, remoteRef: {key: order-service}}
`

const (
	weakenedP = `path "registry-creds/data/order-service" { capabilities = ["read"] }
path "registry-creds/metadata/inventory*" { capabilities = ["list"] }
path "registry-creds/data/inventory/*" { capabilities = ["read"] }
`
	weakenedDefault = `path "auth/token/lookup-self" { capabilities = ["read"] }`
)

// TestLostAccess: the requests ESO makes that the role's policies allow with the old body of the
// written policy and not with the new one, and nothing for a write that keeps what ESO needs.
func TestLostAccess(t *testing.T) {
	t.Parallel()
	objs, err := chain.LoadManifests([]string{"-"}, strings.NewReader(weakenedManifests), "default")
	if err != nil {
		t.Fatal(err)
	}
	m := chain.NewModel(objs)
	// The roles referencing the written policy p, as the index has them: eso, which names q too.
	eso := chain.RoleRef{Mount: "kubernetes", Name: "eso"}
	roles := map[chain.RoleRef][]string{eso: {"p", "q"}}
	for name, tc := range map[string]struct {
		before, after string
		q             string // the other policy of the role
		roles         map[chain.RoleRef][]string
		ns            string
		want          []string
	}{
		"read taken away": {before: weakenedP, after: `path "registry-creds/metadata/inventory*" { capabilities = ["list"] }
path "registry-creds/data/inventory/*" { capabilities = ["read"] }`,
			want: []string{`prod/order-service kubernetes/eso read registry-creds/data/order-service (spec.data[0].remoteRef.key "order-service")`}},
		"policy emptied": {before: weakenedP, after: `# nothing`,
			want: []string{
				`prod/inventory kubernetes/eso list registry-creds/metadata/inventory/ (spec.dataFrom[0].find.path "inventory")`,
				`prod/order-service kubernetes/eso read registry-creds/data/order-service (spec.data[0].remoteRef.key "order-service")`}},
		"a deny on the path absorbs the read": {before: weakenedP, after: weakenedP + `path "registry-creds/data/order-service" { capabilities = ["deny"] }`,
			want: []string{`prod/order-service kubernetes/eso read registry-creds/data/order-service (spec.data[0].remoteRef.key "order-service")`}},
		"a deny by glob does not beat the exact rule": {before: weakenedP, after: weakenedP + `path "registry-creds/data/order-*" { capabilities = ["deny"] }`},
		"every role on the policy": {before: weakenedP, after: `# nothing`,
			roles: map[chain.RoleRef][]string{eso: {"p"}, {Mount: "k8s-other", Name: "other"}: {"p"}},
			want: []string{
				`prod/inventory kubernetes/eso list registry-creds/metadata/inventory/ (spec.dataFrom[0].find.path "inventory")`,
				`prod/order-service kubernetes/eso read registry-creds/data/order-service (spec.data[0].remoteRef.key "order-service")`,
				`prod/unrelated k8s-other/other read registry-creds/data/order-service (spec.data[0].remoteRef.key "order-service")`}},
		"written in another Vault namespace": {before: weakenedP, after: `# nothing`, ns: "team-a"},
		"a store in that namespace": {before: weakenedP, after: `# nothing`, ns: "team-a",
			roles: map[chain.RoleRef][]string{{Mount: "k8s-team", Name: "team"}: {"p"}},
			want:  []string{`team-a/app k8s-team/team read registry-creds/data/order-service (spec.data[0].remoteRef.key "order-service")`}},
		"the same body":           {before: weakenedP, after: weakenedP},
		"an unrelated rule added": {before: weakenedP, after: weakenedP + `path "secret/data/other" { capabilities = ["read"] }`},
		"an unrelated path narrowed": {before: weakenedP + `path "secret/*" { capabilities = ["read", "list"] }`,
			after: weakenedP + `path "secret/*" { capabilities = ["list"] }`},
		"another policy of the role still grants it": {before: weakenedP, after: `# nothing`,
			q: weakenedP},
		"the written policy did not grant it before either": {before: `# nothing`, after: `# still nothing`},
		"created with a deny over what another policy grants": {before: "", q: weakenedP,
			after: `path "registry-creds/data/order-service" { capabilities = ["deny"] }`,
			want:  []string{`prod/order-service kubernetes/eso read registry-creds/data/order-service (spec.data[0].remoteRef.key "order-service")`}},
		"created granting more": {before: "", after: weakenedP},
		"not a role the policy is on": {before: weakenedP, after: `# nothing`,
			roles: map[chain.RoleRef][]string{{Mount: "kubernetes", Name: "someone-else"}: {"p"}}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			set := func(p string) vaultacl.Set {
				s := vaultacl.Set{"default": mustParse(t, "default", weakenedDefault)}
				if p != "" {
					s["p"] = mustParse(t, "p", p)
				}
				if tc.q != "" {
					s["q"] = mustParse(t, "q", tc.q)
				}
				return s
			}
			r := roles
			if tc.roles != nil {
				r = tc.roles
			}
			var got []string
			for _, l := range lostAccess(m, tc.ns, r, set(tc.before), set(tc.after)) {
				a := l.access
				got = append(got, fmt.Sprintf("%s/%s %s/%s %s %s (%s)", a.ExternalSecret.Namespace, a.ExternalSecret.Name,
					a.Role.Mount, a.Role.Name, a.Capability, a.Path, a.Why))
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

func mustParse(t *testing.T, name, text string) *vaultacl.Policy {
	t.Helper()
	p, err := vaultacl.Parse(name, "test", text)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
