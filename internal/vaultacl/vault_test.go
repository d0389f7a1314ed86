package vaultacl

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/credchain/credchain/internal/testenv"
)

// devVault is a real `vault server -dev` (Vault 1.21, built by hack/testbin.sh) and a root client.
type devVault struct {
	c *api.Client
}

func startVault(t testing.TB) *devVault {
	t.Helper()
	v := testenv.StartVault(t)
	cfg := api.DefaultConfig()
	cfg.Address = v.Addr
	cfg.MaxRetries = 0
	c, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(v.RootToken)
	return &devVault{c: c}
}

// writePolicy is `vault policy write`: the error is Vault refusing the text.
func (v *devVault) writePolicy(name, text string) error {
	_, err := v.c.Logical().Write("sys/policies/acl/"+name, map[string]any{"policy": text})
	return err
}

func (v *devVault) deletePolicy(t testing.TB, name string) {
	t.Helper()
	if _, err := v.c.Logical().Delete("sys/policies/acl/" + name); err != nil {
		t.Fatal(err)
	}
}

// token creates a token holding exactly policies (no default policy). Batch tokens cost Vault
// no storage write; a root token must be a service token.
func (v *devVault) token(policies []string) (string, error) {
	typ := "batch"
	for _, p := range policies {
		if SanitizeName(p) == "root" {
			typ = "service"
		}
	}
	s, err := v.c.Logical().Write("auth/token/create", map[string]any{
		"policies": policies, "no_default_policy": true, "type": typ, "ttl": "1h",
	})
	if err != nil {
		return "", err
	}
	return s.Auth.ClientToken, nil
}

// capabilities is POST sys/capabilities for many paths at once: each path's list, as Vault
// sorted it. The body is read by hand: Vault also copies every path to the top level of its
// answer, beside "data", so a path named "data" or "auth" makes two keys of one name.
func (v *devVault) capabilities(token string, paths []string) (map[string][]string, error) {
	body, err := json.Marshal(map[string]any{"token": token, "paths": paths})
	if err != nil {
		return nil, err
	}
	resp, err := v.c.Logical().WriteRaw("sys/capabilities", body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	var data map[string][]string
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return nil, err
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, err
		}
		if key == "data" && len(raw) > 0 && raw[0] == '{' {
			if err := json.Unmarshal(raw, &data); err != nil {
				return nil, err
			}
		}
	}
	for _, p := range paths {
		if _, ok := data[p]; !ok {
			return nil, fmt.Errorf("sys/capabilities: no answer for %q in %v", p, data)
		}
	}
	return data, nil
}

// TestTrickyCasesAgainstVault holds Vault to the table TestTrickyCases holds the evaluator to,
// and checks that Vault refuses every policy Parse refuses. A case's policies are deleted before
// the next case, so names can repeat across cases.
func TestTrickyCasesAgainstVault(t *testing.T) {
	v := startVault(t)
	for _, name := range sortedKeys(trickyCases) {
		tc := trickyCases[name]
		t.Run(name, func(t *testing.T) {
			for pname, text := range tc.policies {
				if err := v.writePolicy(pname, text); err != nil {
					t.Fatalf("Vault refuses policy %s: %v", pname, err)
				}
				defer v.deletePolicy(t, pname)
			}
			tok, err := v.token(tc.token)
			if err != nil {
				t.Fatal(err)
			}
			paths := sortedKeys(tc.want)
			got, err := v.capabilities(tok, paths)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range paths {
				if g := strings.Join(got[p], ", "); g != tc.want[p] {
					t.Errorf("%q: Vault says %s, the table says %s", p, g, tc.want[p])
				}
			}
		})
	}
	for _, name := range sortedKeys(badPolicies) {
		t.Run("refused: "+name, func(t *testing.T) {
			if err := v.writePolicy("bad", badPolicies[name].text); err == nil {
				v.deletePolicy(t, "bad")
				t.Errorf("Vault accepts what Parse refuses with %q", badPolicies[name].err)
			}
		})
	}
}

// TestParseAcceptsWhatVaultAccepts: texts at the edge of the HCL and JSON parsers that Vault
// takes, so Parse must too, with the same capabilities.
func TestParseAcceptsWhatVaultAccepts(t *testing.T) {
	texts := map[string]string{
		"JSON without its closing brace":     `{"path": {"a": {"capabilities": ["read"]}}`,
		"JSON with a trailing comma":         `{"path": {"a": {"capabilities": ["read",]}}}`,
		"JSON cut off after path":            `{"path": `,
		"two attributes on one line":         `path "a" { policy = "read" capabilities = ["update"] }`,
		"an unknown capability after deny":   `path "a" { capabilities = ["deny", "bogus"] }`,
		"comment of any type":                `path "a" { comment = ["x", 1] capabilities = ["read"] }`,
		"the same path twice in JSON":        `{"path": {"a": {"capabilities": ["read"]}, "a": {"capabilities": ["list"]}}}`,
		"a number where a string is":         `path "a" { capabilities = ["read"] min_wrapping_ttl = 60 }`,
		"a time template":                    `path "secret/{{time.now}}" { capabilities = ["read"] }`,
		"path as a list of blocks in JSON":   `{"path": [{"a": {"capabilities": ["read"]}}, {"b": {"capabilities": ["list"]}}]}`,
		"nothing but whitespace":             "  \n",
		"name only":                          `name = "whatever"`,
		"a policy key and a deny capability": `path "a" { policy = "write" capabilities = ["deny"] }`,
	}
	v := startVault(t)
	for _, name := range sortedKeys(texts) {
		t.Run(name, func(t *testing.T) {
			text := texts[name]
			p, perr := Parse("edge", "edge.hcl", text)
			verr := v.writePolicy("edge", text)
			if (perr == nil) != (verr == nil) {
				t.Fatalf("Parse: %v; Vault: %v", perr, verr)
			}
			if verr != nil {
				return
			}
			defer v.deletePolicy(t, "edge")
			var paths []string
			for _, r := range p.Rules {
				if !r.Templated && r.Path != "" {
					paths = append(paths, strings.TrimSuffix(r.Written, "*")+"x")
				}
			}
			paths = append(paths, "a", "b", "zzz")
			tok, err := v.token([]string{"edge"})
			if err != nil {
				t.Fatal(err)
			}
			got, err := v.capabilities(tok, paths)
			if err != nil {
				t.Fatal(err)
			}
			acl := Set{"edge": p}.ACL("edge")
			for _, path := range paths {
				if mine := acl.Capabilities(path).Strings(); !slices.Equal(mine, got[path]) {
					t.Errorf("%q: evaluator %q, Vault %q", path, mine, got[path])
				}
			}
		})
	}
}
