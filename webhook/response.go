package webhook

import (
	"strconv"
	"unicode/utf8"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// deniedWithCauses is admission.Denied with one status cause per denial, so clients that read
// status.details.causes (and the API server's own rendering) get the field and message of each.
func deniedWithCauses(msg string, denials field.ErrorList) admission.Response {
	resp := admission.Denied(msg)
	causes := make([]metav1.StatusCause, len(denials))
	for i, d := range denials {
		causes[i] = metav1.StatusCause{Type: metav1.CauseType(d.Type), Message: d.ErrorBody(), Field: d.Field}
	}
	resp.Result.Details = &metav1.StatusDetails{Causes: causes}
	return resp
}

// Warning budget. The API server keeps a response's warnings whole while they total at most 4096
// runes, and beyond that cuts every one of them to 256 (k8s.io/apiserver's warning recorder), which
// drops the fix at the end of each. fitWarnings keeps the total under the budget instead, shortening
// in the middle (the secret and ExternalSecret are named at the start, the fix is at the end).
const (
	warningBudget   = 4000 // runes in all, under the API server's 4096
	minWarningRunes = 320  // a shortened warning still names the secret, its ExternalSecret and the fix
)

// fitWarnings returns warnings that total at most warningBudget runes: as they are when they fit,
// else each shortened in its middle, and, when even that cannot fit them all, the first ones
// followed by a count of the rest.
func fitWarnings(ws []string) []string {
	total := 0
	for _, w := range ws {
		total += utf8.RuneCountInString(w)
	}
	if total <= warningBudget {
		return ws
	}
	const moreNote = 60 // "and N more problems: ..." below
	keep := len(ws)
	if keep*minWarningRunes > warningBudget {
		keep = (warningBudget - moreNote) / minWarningRunes
	}
	budget := warningBudget
	if keep < len(ws) {
		budget -= moreNote
	}
	per := budget / keep
	out := make([]string, 0, keep+1)
	for _, w := range ws[:keep] {
		out = append(out, shortenMiddle(w, per))
	}
	if keep < len(ws) {
		out = append(out, "and "+strconv.Itoa(len(ws)-keep)+" more problems not shown here; see the credchain webhook's events")
	}
	return out
}

// shortenMiddle cuts s to at most max runes, replacing its middle with "…".
func shortenMiddle(s string, max int) string {
	r := []rune(s)
	if len(r) <= max {
		return s
	}
	head := (max - 1) * 11 / 20 // the secret and its ExternalSecret come first, the fix last
	tail := max - 1 - head
	return string(r[:head]) + "…" + string(r[len(r)-tail:])
}
