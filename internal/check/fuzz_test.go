package check

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoadPlan: a plan is untrusted input (a pipe in CI); whatever it holds, LoadPlan returns a
// plan or InputErrors, never panics, and Apply on what it returns does not panic either.
func FuzzLoadPlan(f *testing.F) {
	files, _ := filepath.Glob("testdata/plans/*.json")
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"format_version": "1.0", "resource_changes": [{"type": "vault_policy", "change": {"actions": ["update"], "before": {"name": 1}}}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := LoadPlan(bytes.NewReader(b), "plan.json")
		if err != nil {
			if !allInputErrors(err) {
				t.Fatalf("%v: not InputErrors", err)
			}
			return
		}
		p.Apply(&Vault{})
		p.Changes()
	})
}

// FuzzDecodeRoles: the roles file decodes or fails with InputErrors, never panics.
func FuzzDecodeRoles(f *testing.F) {
	for _, file := range []string{"testdata/files/roles.yaml", "testdata/files/roles.json"} {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("roles:\n  - &a {name: x}\n  - *a\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		roles, err := decodeRoles(b, "roles.yaml")
		if err != nil {
			if !allInputErrors(err) {
				t.Fatalf("%v: not InputErrors", err)
			}
			return
		}
		for _, r := range roles {
			if r.Name == "" || r.Mount == "" {
				t.Fatalf("role without a name or mount: %+v", *r)
			}
		}
	})
}

// allInputErrors is whether err is InputErrors all through.
func allInputErrors(err error) bool {
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range joined.Unwrap() {
			if !allInputErrors(e) {
				return false
			}
		}
		return true
	}
	_, ok := err.(*InputError)
	return ok
}
