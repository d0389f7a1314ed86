package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDocsShowTheInstalledPolicy keeps docs/kyverno.md's copy of the policy equal to the one the
// benchmark installs: the page's claims are about that policy.
func TestDocsShowTheInstalledPolicy(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "kyverno.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), "```yaml\n"+string(kyvernoPolicy)+"```\n") {
		t.Error("docs/kyverno.md does not show hack/peerbench/policy.yaml verbatim in a ```yaml block; copy it again")
	}
	for _, c := range cases {
		if !strings.Contains(string(doc), "| "+c.name+" |") {
			t.Errorf("docs/kyverno.md has no row for case %q", c.name)
		}
	}
}
