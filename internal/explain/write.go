package explain

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/credchain/credchain/internal/check"
)

// Output formats.
const (
	FormatText = "text"
	FormatJSON = "json"
)

// Formats are the -o values Write takes.
var Formats = []string{FormatText, FormatJSON}

// Write prints r in format.
func Write(w io.Writer, r *Report, format string) error {
	switch format {
	case FormatJSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	case FormatText:
		return WriteText(w, r)
	}
	return fmt.Errorf("internal error: output format %q", format)
}

// WriteText prints the chain one line per link, top-down and indented by depth, then the
// verdict and the fix. The fix is printed unindented, as a shell script: it can be run as printed.
// Text from the cluster and Vault has its control characters escaped; the fix's commands are
// built quoted.
func WriteText(w io.Writer, r *Report) error {
	var b strings.Builder
	fmt.Fprintf(&b, "credchain explain %s/%s -n %s\n\n", strings.ToLower(r.Target.Kind), r.Target.Name, r.Target.Namespace)
	for _, l := range r.Links {
		fmt.Fprintf(&b, "%-8s%s%s: %s\n", l.State, strings.Repeat("  ", l.Depth), check.Printable(l.Name), check.Printable(l.Evidence))
	}
	if !r.Vault.Checked {
		fmt.Fprintf(&b, "\nVault not checked: %s\n", check.Printable(r.Vault.NotChecked))
	}
	switch {
	case r.Cause != nil:
		fmt.Fprintf(&b, "\nverdict: broken at %s\n", check.Printable(r.Cause.Message))
	case r.State == Unknown:
		b.WriteString("\nverdict: no link is broken, but not every link could be checked (unknown above)\n")
	default:
		b.WriteString("\nverdict: ok, every link holds\n")
	}
	if len(r.Fix) > 0 {
		b.WriteString("\nfix (run as printed):\n")
		for _, s := range r.Fix {
			fmt.Fprintf(&b, "# %s\n", check.Printable(s.Why))
			if s.Command != "" {
				b.WriteString(s.Command + "\n")
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
