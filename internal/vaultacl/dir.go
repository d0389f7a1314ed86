package vaultacl

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// MaxPolicyBytes bounds one policy file. Vault's own request limit is 32 MiB, but a policy is a
// few kilobytes; a file this large is not a policy, and reading it whole would be the cost.
const MaxPolicyBytes = 1 << 20

// reservedNames are policies Vault will not let anyone write (vault/policy_store.go's
// immutablePolicies): a file with one of these names cannot be what Vault holds.
var reservedNames = []string{"root", "response-wrapping", "control-group"}

// LoadDir parses every DIR/*.hcl and DIR/*.json (not subdirectories) as the policy named by the
// file name without its extension, sanitised as Vault sanitises a policy name. Both extensions
// go through the same parser, which tells JSON from HCL by a leading "{" as Vault does. It
// reports every bad file, each error a PolicyError with file and line, and refuses two files
// that name the same policy and files named after policies Vault reserves (root,
// response-wrapping, control-group).
func LoadDir(dir string) (Set, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("reading policy directory: %w", err)
	}
	set := Set{}
	from := map[string]string{}
	var errs []error
	for _, de := range entries {
		ext := filepath.Ext(de.Name())
		if de.IsDir() || (ext != ".hcl" && ext != ".json") {
			continue
		}
		file := filepath.Join(dir, de.Name())
		name := SanitizeName(strings.TrimSuffix(de.Name(), ext))
		switch {
		case name == "":
			errs = append(errs, &PolicyError{File: file, Err: errors.New("policy name must be provided")})
			continue
		case slices.Contains(reservedNames, name):
			errs = append(errs, &PolicyError{File: file, Err: fmt.Errorf("cannot update %q policy: Vault reserves the name", name)})
			continue
		case from[name] != "":
			errs = append(errs, &PolicyError{File: file, Err: fmt.Errorf("policy %q is also defined by %s", name, from[name])})
			continue
		}
		from[name] = file
		text, err := readBounded(file)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		p, err := Parse(name, file, text)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		set[name] = p
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return set, nil
}

// Names returns the set's policy names, sorted.
func (s Set) Names() []string {
	out := make([]string, 0, len(s))
	for n := range s {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func readBounded(file string) (string, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxPolicyBytes+1))
	if err != nil {
		return "", err
	}
	if len(b) > MaxPolicyBytes {
		return "", &PolicyError{File: file, Err: fmt.Errorf("larger than %d bytes", MaxPolicyBytes)}
	}
	return string(b), nil
}
