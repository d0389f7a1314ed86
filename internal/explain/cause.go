package explain

// cause is the broken link that explains the rest: the deepest one (a missing policy explains
// the denied read under it, which explains the ExternalSecret's Ready=False above it, which
// explains why the Secret is stale), the first of equally deep ones. nil when none is broken.
func cause(links []Link) *Cause {
	at := -1
	for i, l := range links {
		if l.State == Broken && (at < 0 || l.Depth > links[at].Depth) {
			at = i
		}
	}
	if at < 0 {
		return nil
	}
	l := links[at]
	return &Cause{Link: at, Message: l.Name + ": " + l.Evidence}
}
