package vaultacl

import (
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The randomized differential test's size; CREDCHAIN_ACL_SEED reruns one seed,
// CREDCHAIN_ACL_SETS changes the number of policy sets.
const (
	randomPolicies = 300 // the pool the sets draw from, written to Vault once
	randomSets     = 1000
	randomPaths    = 12 // per set, asked in one sys/capabilities call
	randomWorkers  = 4
)

// TestRandomAgainstVault writes a pool of random policies to a real Vault (checking that Vault
// and Parse accept and refuse the same texts), then for each of randomSets random subsets of the
// pool creates a token holding exactly it and compares sys/capabilities with the evaluator on
// randomPaths paths, most of them made from the set's own rules so that rules compete. The
// generator's alphabet is small on purpose: rules share paths across policies (merges), overlap
// as exact, prefix and "+" rules (priority), and end in "/" (the LIST fall-backs).
func TestRandomAgainstVault(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("CREDCHAIN_ACL_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("CREDCHAIN_ACL_SEED=%q: %v", s, err)
		}
	}
	sets := randomSets
	if s := os.Getenv("CREDCHAIN_ACL_SETS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("CREDCHAIN_ACL_SETS=%q: want a positive number", s)
		}
		sets = n
	}
	t.Logf("seed %d (rerun with CREDCHAIN_ACL_SEED=%d)", seed, seed)
	g := &generator{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	v := startVault(t)

	// The pool: written once, in parallel. A policy both refuse stays out of the pool's Set, so
	// a set naming it holds a dangling name, as the token in Vault does.
	texts := make([]string, randomPolicies)
	names := make([]string, randomPolicies)
	for i := range texts {
		names[i], texts[i] = fmt.Sprintf("p%03d", i), g.policy()
	}
	set := Set{}
	var mu sync.Mutex
	var refused int
	parallel(t, randomPolicies, func(i int) error {
		p, perr := Parse(names[i], names[i]+".hcl", texts[i])
		verr := v.writePolicy(names[i], texts[i])
		mu.Lock()
		defer mu.Unlock()
		switch {
		case (perr == nil) != (verr == nil):
			return fmt.Errorf("seed %d, policy %s: Parse: %v; Vault: %v\n%s", seed, names[i], perr, verr, texts[i])
		case perr == nil:
			set[names[i]] = p
		default:
			refused++
		}
		return nil
	})

	type setCase struct {
		token []string
		paths []string
	}
	cases := make([]setCase, sets)
	for i := range cases {
		cases[i].token = g.tokenPolicies(names)
		var rules []Rule
		for _, n := range cases[i].token {
			if p := set[n]; p != nil {
				rules = append(rules, p.Rules...)
			}
		}
		for range randomPaths {
			cases[i].paths = append(cases[i].paths, g.path(rules))
		}
	}
	var compared, disagreements int
	var stats corpusStats
	parallel(t, sets, func(i int) error {
		c := cases[i]
		tok, err := v.token(c.token)
		if err != nil {
			return fmt.Errorf("set %d: %v", i, err)
		}
		got, err := v.capabilities(tok, c.paths)
		if err != nil {
			return fmt.Errorf("set %d %q: %v", i, c.paths, err)
		}
		acl := set.ACL(c.token...)
		var report strings.Builder
		for _, path := range c.paths {
			mine := acl.Capabilities(path).Strings()
			if slices.Equal(mine, got[path]) {
				continue
			}
			res := acl.Explain(path)
			fmt.Fprintf(&report, "  %q: evaluator %q (rule %+v), Vault %q\n", path, mine, res.Rule, got[path])
		}
		mu.Lock()
		defer mu.Unlock()
		compared += len(c.paths)
		for _, path := range c.paths {
			stats.add(acl, path)
		}
		if report.Len() == 0 {
			return nil
		}
		disagreements++
		if disagreements > 5 {
			return nil
		}
		var pols strings.Builder
		for _, n := range c.token {
			if i := slices.Index(names, n); i >= 0 {
				fmt.Fprintf(&pols, "--- %s\n%s\n", n, texts[i])
			}
		}
		t.Errorf("seed %d, set %d, token policies %q:\n%s%s", seed, i, c.token, report.String(), pols.String())
		return nil
	})
	if disagreements > 0 {
		t.Errorf("seed %d: %d of %d sets disagree", seed, disagreements, sets)
	}
	t.Logf("seed %d: %d policies (%d refused by both), %d sets, %d paths compared", seed, randomPolicies, refused, sets, compared)
	t.Logf("corpus: %s", stats)
}

// parallel runs f(0..n-1) on randomWorkers goroutines and fails the test on the first error.
func parallel(t *testing.T, n int, f func(int) error) {
	t.Helper()
	work := make(chan int)
	errs := make(chan error, randomWorkers)
	var wg sync.WaitGroup
	for range randomWorkers {
		wg.Go(func() {
			for i := range work {
				if err := f(i); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	var err error
feed:
	for i := range n {
		select {
		case work <- i:
		case err = <-errs:
			break feed
		}
	}
	close(work)
	wg.Wait()
	close(errs)
	if err == nil {
		err = <-errs
	}
	if err != nil {
		t.Fatal(err)
	}
}
