package vaultacl

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// benchSet is n ESO-style policies, one per application: its KV v2 data and metadata (prefix
// rules), a shared "+" rule and a team "+" rule (segment rules), the token's own lookup (an exact
// rule every policy repeats, so it merges n times), and on every tenth a deny.
func benchSet(b testing.TB, n int) Set {
	set := Set{}
	for i := range n {
		var t strings.Builder
		fmt.Fprintf(&t, "path \"secret/data/app-%03d/*\" { capabilities = [\"read\"] }\n", i)
		fmt.Fprintf(&t, "path \"secret/metadata/app-%03d/*\" { capabilities = [\"read\", \"list\"] }\n", i)
		fmt.Fprintf(&t, "path \"secret/data/shared/+/app-%03d\" { capabilities = [\"read\"] }\n", i)
		fmt.Fprintf(&t, "path \"kv/+/team-%02d/app-%03d/*\" { capabilities = [\"read\"] }\n", i%20, i)
		t.WriteString("path \"auth/token/lookup-self\" { capabilities = [\"read\"] }\n")
		if i%10 == 0 {
			fmt.Fprintf(&t, "path \"secret/data/app-%03d/admin\" { capabilities = [\"deny\"] }\n", i)
		}
		name := fmt.Sprintf("eso-app-%03d", i)
		p, err := Parse(name, name+".hcl", t.String())
		if err != nil {
			b.Fatal(err)
		}
		set[name] = p
	}
	return set
}

var benchPaths = map[string]string{
	"prefix rule (ESO's data read)": "secret/data/app-250/db-password",
	"segment rule":                  "kv/data/team-10/app-250/config",
	"list with a trailing slash":    "secret/metadata/app-250/",
	"exact rule":                    "auth/token/lookup-self",
	"no rule":                       "pki/issue/web",
}

// BenchmarkCapabilities is one path's capabilities for a token holding all 500 policies (2,550
// rules), the ACL built once. Baseline, in the same loop: a map lookup of the path among the
// rules' paths, which is what an evaluator that knew only exact rules would cost. Reported:
// ns/op per path (allocs/op are per 512 paths), the baseline's and their ratio.
func BenchmarkCapabilities(b *testing.B) {
	set := benchSet(b, 500)
	acl := set.ACL(set.Names()...)
	baseline := map[string]Capabilities{}
	for _, p := range set {
		for _, r := range p.Rules {
			baseline[r.Path] |= r.Capabilities
		}
	}
	for _, name := range sortedKeys(benchPaths) {
		path := benchPaths[name]
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			var sink Capabilities
			var evalT, baseT time.Duration
			const chunk = 512
			n := 0
			for b.Loop() {
				// Interleave chunks of each so that load on this shared machine hits both alike.
				t0 := time.Now()
				for range chunk {
					sink |= acl.Capabilities(path)
				}
				t1 := time.Now()
				for range chunk {
					sink |= baseline[path]
				}
				t2 := time.Now()
				evalT, baseT = evalT+t1.Sub(t0), baseT+t2.Sub(t1)
				n++
			}
			_ = sink
			perPath := float64(evalT.Nanoseconds()) / float64(n*chunk)
			perBase := float64(baseT.Nanoseconds()) / float64(n*chunk)
			// ns/op is one path's Capabilities (each b.Loop iteration does chunk of each).
			b.ReportMetric(perPath, "ns/op")
			b.ReportMetric(perBase, "baseline-ns/op")
			b.ReportMetric(perPath/perBase, "ratio")
		})
	}
}

// BenchmarkVaultsWalk is Vault's own non-exact matching (every segment rule split and compared
// per request, then a sort; vaultWalk) on the same ACL, for scale: it is why the ACL indexes its
// rules in a trie.
func BenchmarkVaultsWalk(b *testing.B) {
	set := benchSet(b, 500)
	acl := set.ACL(set.Names()...)
	for _, name := range sortedKeys(benchPaths) {
		path := benchPaths[name]
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				vaultWalk(acl, path)
			}
		})
	}
}

// BenchmarkBuildACL is building that ACL (merging 2,550 rules, ranking and indexing them), which
// a check does once per token policy set.
func BenchmarkBuildACL(b *testing.B) {
	set := benchSet(b, 500)
	names := set.Names()
	b.ReportAllocs()
	for b.Loop() {
		set.ACL(names...)
	}
}
