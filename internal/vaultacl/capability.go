package vaultacl

import (
	"fmt"
	"math/bits"
	"sort"
)

// Capabilities is a set of Vault capabilities: the bitmap Vault keeps per path rule, plus Root
// for a token holding the root policy, which Vault answers before it looks at any rule.
type Capabilities uint16

// The bits follow Vault's own order (vault/policy.go), so a set prints the way Vault would build it.
const (
	Deny Capabilities = 1 << iota
	Create
	Read
	Update
	Delete
	List
	Sudo
	Patch
	Subscribe
	Recover
	// Root is not a rule capability: no policy can grant it, only the root policy is it.
	Root
)

// capabilityNames are the names a policy may write, in bit order.
var capabilityNames = [...]string{"deny", "create", "read", "update", "delete", "list", "sudo", "patch", "subscribe", "recover", "root"}

// parseCapability returns the bit for a name a policy's capabilities list may hold; "root" is
// not one of them.
func parseCapability(name string) (Capabilities, bool) {
	for i, n := range capabilityNames[:len(capabilityNames)-1] {
		if n == name {
			return 1 << i, true
		}
	}
	return 0, false
}

// Has reports whether every capability in want is in c. A set holding Deny or Root answers
// as Vault does: Deny grants nothing, Root grants everything.
func (c Capabilities) Has(want Capabilities) bool {
	switch {
	case c&Root != 0:
		return true
	case c&Deny != 0:
		return false
	}
	return want != 0 && c&want == want
}

// Strings returns the set as Vault's sys/capabilities returns it: ["root"] for the root policy,
// ["deny"] when the rule denies or grants nothing (an empty capabilities list, or no rule at
// all), else the names sorted as strings.
func (c Capabilities) Strings() []string {
	switch {
	case c&Root != 0:
		return []string{"root"}
	case c&Deny != 0 || c == 0:
		return []string{"deny"}
	}
	out := make([]string, 0, bits.OnesCount16(uint16(c)))
	for i, n := range capabilityNames {
		if c&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// String is Strings joined as `vault token capabilities` prints them ("list, read").
func (c Capabilities) String() string {
	s := c.Strings()
	out := s[0]
	for _, n := range s[1:] {
		out += ", " + n
	}
	return out
}

// GoString makes test failures readable.
func (c Capabilities) GoString() string { return fmt.Sprintf("Capabilities(%s)", c) }
