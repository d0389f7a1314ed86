package check

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"unicode"
)

// Output formats of `credchain check -o`.
const (
	FormatTable = "table"
	FormatJSON  = "json"
	FormatJUnit = "junit"
)

// Formats are the accepted -o values, the default first.
var Formats = []string{FormatTable, FormatJSON, FormatJUnit}

// Write writes r in format (one of Formats).
func Write(w io.Writer, r *Report, format string) error {
	switch format {
	case FormatTable:
		return WriteTable(w, r)
	case FormatJSON:
		return WriteJSON(w, r)
	case FormatJUnit:
		return WriteJUnit(w, r)
	}
	return fmt.Errorf("internal error: output format %q", format)
}

// WriteJSON writes r as one indented JSON document (the shape docs/check.md documents).
func WriteJSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // "<Vault's built-in default policy>" stays readable
	return enc.Encode(r)
}

// WriteTable writes r for people: one line per ExternalSecret (verdict, name, store, role, the
// first reason), then the blast radius of what fails, the undefined policies, and the counts.
// Every value from the inputs is cleaned of control characters: a manifest must not be able to
// drive the reader's terminal.
func WriteTable(w io.Writer, r *Report) error {
	ew := &errWriter{w: w}
	if r.IsChange() {
		ew.printf("Vault before: %s\nVault after:  %s\n", Printable(r.Before), Printable(r.Vault))
		for _, c := range r.PlanChanges {
			ew.printf("  %s\n", Printable(c))
		}
	} else {
		ew.printf("Vault: %s\n", Printable(r.Vault))
	}
	ew.printf("\n")
	tw := tabwriter.NewWriter(ew, 0, 4, 2, ' ', 0)
	header := "VERDICT\tEXTERNALSECRET\tSTORE\tROLE\tREASON"
	if r.IsChange() {
		header = "VERDICT\tCHANGE\tEXTERNALSECRET\tSTORE\tROLE\tREASON"
	}
	fmt.Fprintln(tw, header)
	for _, res := range r.ExternalSecrets {
		cells := []string{string(res.Verdict), res.ExternalSecret.String(), res.Store.String(), roleCell(res.Role), firstReason(res)}
		if r.IsChange() {
			cells = append([]string{cells[0], changeCell(res)}, cells[1:]...)
		}
		for i := range cells {
			cells[i] = Printable(cells[i])
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	writeBlastRadius(ew, r)
	writeUndefined(ew, r)
	writeSummary(ew, r)
	return ew.err
}

func roleCell(r *RoleRef) string {
	if r == nil {
		return "-"
	}
	return r.String()
}

func changeCell(res Result) string {
	switch {
	case res.Change == "" && res.Before == res.Verdict:
		return "-"
	case res.Change == "":
		return string(res.Before) + " → " + string(res.Verdict)
	}
	return string(res.Change)
}

func firstReason(res Result) string {
	if len(res.Reasons) == 0 {
		return "-"
	}
	s := res.Reasons[0].Message
	if n := len(res.Reasons) - 1; n > 0 {
		s += fmt.Sprintf(" (+%d more)", n)
	}
	return s
}

// writeBlastRadius lists, for each failing ExternalSecret, the Secret and workloads it takes
// down: what the person deciding on the change needs to know first.
func writeBlastRadius(ew *errWriter, r *Report) {
	failing := r.Failing()
	if len(failing) == 0 {
		return
	}
	ew.printf("\nBlast radius:\n")
	for _, res := range failing {
		line := "ExternalSecret " + res.ExternalSecret.String()
		if res.Secret != nil {
			line += " → Secret " + res.Secret.String()
			for _, w := range res.Workloads {
				line += " → " + w.Kind + " " + w.String()
			}
			if len(res.Workloads) == 0 {
				line += " (no workload pulls with it)"
			}
		}
		ew.printf("  %s\n", Printable(line))
		for _, reason := range res.Reasons {
			ew.printf("    %s: %s\n", reason.Verdict, Printable(reason.Message))
		}
	}
}

func writeUndefined(ew *errWriter, r *Report) {
	if len(r.UndefinedPolicies) == 0 {
		return
	}
	ew.printf("\nPolicies roles name that %s does not define:\n", Printable(r.Vault))
	for _, u := range r.UndefinedPolicies {
		var roles []string
		for _, ro := range u.Roles {
			s := "role " + ro.String()
			if ro.Source != "" {
				s += " (" + ro.Source + ")"
			}
			roles = append(roles, s)
		}
		note := ""
		if u.Unknown {
			note = " (may exist outside this input)"
		}
		ew.printf("  %s%s: named by %s\n", Printable(u.Policy), note, Printable(strings.Join(roles, ", ")))
	}
}

func writeSummary(ew *errWriter, r *Report) {
	s := r.Summary
	ew.printf("\n%d ExternalSecrets: %d ok, %d broken, %d unknown, %d not checked", s.ExternalSecrets, s.OK, s.Broken, s.Unknown, s.NotChecked)
	if r.IsChange() {
		ew.printf("; the change breaks %d, fixes %d; %d already broken before it", s.Breaks, s.Fixes, s.StillBroken)
	}
	ew.printf("\n")
}

// Printable replaces control characters (a terminal escape, a newline inside a value) with Go
// escapes: names and messages come from the cluster and Vault, and must not drive the terminal
// of the person reading a report (check's and explain's).
func Printable(s string) string {
	if strings.IndexFunc(s, unicode.IsControl) < 0 {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if unicode.IsControl(r) {
			q := fmt.Sprintf("%q", string(r))
			b.WriteString(q[1 : len(q)-1])
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// errWriter keeps the first write error, so the table's sections need not check each print.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}

func (e *errWriter) printf(format string, args ...any) { fmt.Fprintf(e, format, args...) }

// JUnit XML, the shape CI systems read (Jenkins, GitLab, GitHub's test reporters): one testsuite,
// one testcase per ExternalSecret.
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name      string      `xml:"name,attr"`
	Tests     int         `xml:"tests,attr"`
	Failures  int         `xml:"failures,attr"`
	Errors    int         `xml:"errors,attr"`
	Skipped   int         `xml:"skipped,attr"`
	TestCases []junitCase `xml:"testcase"`
}

type junitCase struct {
	ClassName string        `xml:"classname,attr"`
	Name      string        `xml:"name,attr"`
	Failure   *junitMessage `xml:"failure,omitempty"`
	Skipped   *junitMessage `xml:"skipped,omitempty"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr,omitempty"`
	Text    string `xml:",chardata"`
}

// WriteJUnit writes r as JUnit XML: a failure for each result that fails the check (Failing:
// in a change report what the change breaks), skipped for unknown, not checked and what was
// broken before the change; the failure's text holds every reason and the blast radius.
func WriteJUnit(w io.Writer, r *Report) error {
	suite := junitSuite{Name: "credchain check: " + r.Vault}
	failing := map[Object]bool{}
	for _, res := range r.Failing() {
		failing[res.ExternalSecret] = true
	}
	for _, res := range r.ExternalSecrets {
		tc := junitCase{ClassName: "credchain.check." + res.ExternalSecret.Namespace, Name: "ExternalSecret " + res.ExternalSecret.String()}
		switch {
		case failing[res.ExternalSecret]:
			tc.Failure = &junitMessage{Message: firstReason(res), Type: string(res.Verdict), Text: detail(res)}
			suite.Failures++
		case res.Verdict == Broken:
			tc.Skipped = &junitMessage{Message: "broken before the change too: " + firstReason(res)}
			suite.Skipped++
		case res.Verdict != OK:
			tc.Skipped = &junitMessage{Message: string(res.Verdict) + ": " + firstReason(res)}
			suite.Skipped++
		}
		suite.TestCases = append(suite.TestCases, tc)
	}
	suite.Tests = len(suite.TestCases)
	doc := junitSuites{Name: "credchain check", Tests: suite.Tests, Failures: suite.Failures, Skipped: suite.Skipped, Suites: []junitSuite{suite}}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

// detail is a failing result for a CI log: the reasons, then what it takes down.
func detail(res Result) string {
	var b strings.Builder
	for _, r := range res.Reasons {
		fmt.Fprintf(&b, "%s: %s\n", r.Verdict, r.Message)
	}
	if res.Secret != nil {
		fmt.Fprintf(&b, "writes Secret %s", res.Secret)
		for _, w := range res.Workloads {
			fmt.Fprintf(&b, "; pulled by %s %s", w.Kind, w)
		}
		b.WriteString("\n")
	}
	return b.String()
}
