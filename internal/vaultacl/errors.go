package vaultacl

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"

	hclparser "github.com/hashicorp/hcl/hcl/parser"
)

// ErrInvalidPolicy is what every PolicyError matches (errors.Is): Vault would refuse to write
// the policy, so no token can hold it as written.
var ErrInvalidPolicy = errors.New("invalid policy")

// PolicyError is one reason Vault would refuse a policy's text, with where it is.
type PolicyError struct {
	// File names the policy's source as given to Parse (may be empty).
	File string
	// Line is 1-based; 0 when the fault is the whole text (empty, or a JSON error HCL's JSON
	// parser reports without a position).
	Line int
	// Err says what is wrong, in Vault's terms where Vault has them.
	Err error
}

var _ error = (*PolicyError)(nil)

func (e *PolicyError) Error() string {
	switch {
	case e.File != "" && e.Line > 0:
		return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
	case e.File != "":
		return fmt.Sprintf("%s: %v", e.File, e.Err)
	case e.Line > 0:
		return fmt.Sprintf("line %d: %v", e.Line, e.Err)
	}
	return e.Err.Error()
}

func (e *PolicyError) Unwrap() error { return e.Err }

// Is makes every PolicyError match ErrInvalidPolicy.
func (e *PolicyError) Is(target error) bool { return target == ErrInvalidPolicy }

// hclPos matches the "line:column" HCL puts in the errors that are not a PosError: the
// duplicate-argument error of Vault's fork ("at 3:5 was already set") and the JSON parser's.
var hclPos = regexp.MustCompile(`(?:^|[^0-9:])(\d+):\d+\b`)

// lineOf digs the line out of an error from HCL's parser or decoder; 0 when it has none.
func lineOf(err error) int {
	if pe, ok := errors.AsType[*hclparser.PosError](err); ok && pe.Pos.Line > 0 {
		return pe.Pos.Line
	}
	if m := hclPos.FindStringSubmatch(err.Error()); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n
	}
	return 0
}
