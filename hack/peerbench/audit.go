package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// auditReader reads the API server's audit log (one JSON entry per line, blocking mode: an
// entry is written before its response is sent) from where it last stopped. Owned by the
// benchmark's main goroutine.
type auditReader struct {
	path   string
	offset int64
}

// auditEntry is what the count needs of an audit.k8s.io/v1 Event.
type auditEntry struct {
	Stage string `json:"stage"`
	Verb  string `json:"verb"`
	User  struct {
		Username string `json:"username"`
	} `json:"user"`
	ObjectRef *struct {
		Resource    string `json:"resource"`
		Subresource string `json:"subresource"`
	} `json:"objectRef"`
}

// calls counts API requests by user and "verb resource".
type calls map[string]map[string]int

// next counts the entries written since the last call.
func (a *auditReader) next() (calls, error) {
	f, err := os.Open(a.path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if _, err := f.Seek(a.offset, io.SeekStart); err != nil {
		return nil, err
	}
	out := calls{}
	r := bufio.NewReaderSize(f, 1<<20)
	for {
		line, err := r.ReadBytes('\n')
		if err == io.EOF {
			break // a partial last line is read again next time
		}
		if err != nil {
			return nil, err
		}
		a.offset += int64(len(line))
		var e auditEntry
		if err := json.Unmarshal(line, &e); err != nil {
			return nil, fmt.Errorf("audit log %s: %w", a.path, err)
		}
		if e.Stage != "ResponseComplete" && e.Stage != "Panic" {
			continue
		}
		if out[e.User.Username] == nil {
			out[e.User.Username] = map[string]int{}
		}
		out[e.User.Username][callKey(e)]++
	}
	return out, nil
}

func callKey(e auditEntry) string {
	if e.ObjectRef == nil {
		return e.Verb + " (non-resource)"
	}
	res := e.ObjectRef.Resource
	if e.ObjectRef.Subresource != "" {
		res += "/" + e.ObjectRef.Subresource
	}
	return e.Verb + " " + res
}

// background reports whether a call is the process's upkeep rather than a review's work: leader
// election and Kyverno's health leases, Kyverno's webhook controller keeping its registrations
// (and the discovery it reads for them), and watches (long-running, counted when they end). Each
// round's raw line lists every call, these included.
func background(key string) bool {
	return strings.HasSuffix(key, " leases") || strings.HasSuffix(key, "webhookconfigurations") ||
		strings.HasSuffix(key, " (non-resource)") || strings.HasPrefix(key, "watch ")
}

// reviewCalls is the number of calls of user that are not background.
func (c calls) reviewCalls(user string) int {
	n := 0
	for k, v := range c[user] {
		if !background(k) {
			n += v
		}
	}
	return n
}

// describe lists user's calls, most frequent first: "get externalsecrets ×1800, ...".
func (c calls) describe(user string) string {
	keys := make([]string, 0, len(c[user]))
	for k := range c[user] {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if c[user][keys[i]] != c[user][keys[j]] {
			return c[user][keys[i]] > c[user][keys[j]]
		}
		return keys[i] < keys[j]
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s ×%d", k, c[user][k])
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}
