package events

import "strings"

// maxExplain is how many explain commands an event carries: enough for the person on call to start
// with, short enough that a blast radius of hundreds does not make a wall of commands.
const maxExplain = 3

// ExplainCommand is the command that walks one workload's chain link by link, Vault included.
func ExplainCommand(w ObjectRef) string {
	return "credchain explain " + strings.ToLower(w.Kind) + "/" + w.Name + " -n " + w.Namespace
}

// withExplain fills e.Explain from the workloads it is about: its Workload, else the first of its
// blast radius. It runs after Cap, so the names in the commands are capped already.
func withExplain(e Event) Event {
	var ws []ObjectRef
	switch {
	case e.Workload != nil:
		ws = []ObjectRef{*e.Workload}
	case e.BlastRadius != nil:
		ws = e.BlastRadius.Workloads
	}
	if len(ws) > maxExplain {
		ws = ws[:maxExplain]
	}
	e.Explain = nil
	for _, w := range ws {
		e.Explain = append(e.Explain, ExplainCommand(w))
	}
	return e
}
