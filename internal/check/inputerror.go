package check

import (
	"bytes"
	"fmt"
)

// InputError is bad input the person running `credchain check` can fix: a file that does not
// parse, a field of the wrong type, a plan in a format this does not read. It names the file and,
// when there is one, the line, and exits 2 (cmd/credchain/main.go's exitCode), so a CI job tells
// "the job is misconfigured" from "the change breaks something" (1).
//
// Loaders return one InputError or several joined (errors.Join), all of them at once rather than
// the first; errors.As finds one through the join, and so does main's ExitCode lookup.
type InputError struct {
	// File is the file as the user named it (or "-" for stdin); never empty.
	File string
	// Line is 1-based; 0 when the fault is the whole file (missing, too large, empty).
	Line int
	// Err says what is wrong and, where it helps, what would be right.
	Err error
}

var _ interface {
	error
	ExitCode() int
} = (*InputError)(nil)

func (e *InputError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.File, e.Err)
}

func (e *InputError) Unwrap() error { return e.Err }

// ExitCode is the process exit status for bad input: 2.
func (e *InputError) ExitCode() int { return 2 }

// lineAt is the 1-based line of byte offset off in b.
func lineAt(b []byte, off int64) int {
	if off > int64(len(b)) {
		off = int64(len(b))
	}
	return bytes.Count(b[:off], []byte("\n")) + 1
}
