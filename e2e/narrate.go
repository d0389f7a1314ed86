package e2e

import (
	"fmt"
	"io"
	"strings"
)

// Narrator is told what the replay does, the way the runbook would say it: the step, the commands a
// person would type with what they printed, and what each component reported.
type Narrator interface {
	// Step announces what is done next.
	Step(format string, a ...any)
	// Command shows a command as typed and its output.
	Command(line, output string)
	// Say reports what a component said (an event, a denial, a status).
	Say(component, msg string)
}

// Console narrates for a person at a terminal.
type Console struct{ W io.Writer }

func (c Console) Step(format string, a ...any) {
	fmt.Fprintf(c.W, "\n\033[1m==> "+format+"\033[0m\n", a...)
}

func (c Console) Command(line, output string) {
	fmt.Fprintf(c.W, "$ %s\n%s", line, indent(output))
}

func (c Console) Say(component, msg string) {
	fmt.Fprintf(c.W, "  [%s] %s\n", component, strings.ReplaceAll(strings.TrimRight(msg, "\n"), "\n", "\n  "+strings.Repeat(" ", len(component)+3)))
}

// Logf narrates into a test log.
type Logf func(format string, a ...any)

func (l Logf) Step(format string, a ...any) { l("==> "+format, a...) }
func (l Logf) Command(line, output string)  { l("$ %s\n%s", line, indent(output)) }
func (l Logf) Say(component, msg string)    { l("[%s] %s", component, msg) }
