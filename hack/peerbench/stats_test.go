package main

import (
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	t.Parallel()
	ms := func(ns ...int) []time.Duration {
		out := make([]time.Duration, len(ns))
		for i, n := range ns {
			out[i] = time.Duration(n) * time.Millisecond
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = 100 - i // reversed: percentile sorts a copy
	}
	for name, tc := range map[string]struct {
		in   []time.Duration
		q    float64
		want time.Duration
	}{
		"empty":                 {nil, 0.5, 0},
		"one sample":            {ms(7), 0.99, 7 * time.Millisecond},
		"p50 of 1..100":         {ms(hundred...), 0.5, 50 * time.Millisecond},
		"p99 of 1..100":         {ms(hundred...), 0.99, 99 * time.Millisecond},
		"p100 is the max":       {ms(hundred...), 1, 100 * time.Millisecond},
		"p50 of four rounds up": {ms(4, 1, 3, 2), 0.5, 2 * time.Millisecond},
		"tiny q is the min":     {ms(3, 1, 2), 0.0001, time.Millisecond},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			in := append([]time.Duration(nil), tc.in...)
			if got := percentile(tc.in, tc.q); got != tc.want {
				t.Errorf("percentile(%v, %v) = %v, want %v", tc.in, tc.q, got, tc.want)
			}
			for i := range in {
				if in[i] != tc.in[i] {
					t.Fatalf("percentile modified its input: %v, was %v", tc.in, in)
				}
			}
		})
	}
}

func TestMedianAndRatio(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		in   []float64
		want float64
	}{
		"none": {nil, 0}, "odd": {[]float64{9, 1, 5}, 5}, "even": {[]float64{4, 1, 3, 2}, 2.5},
	} {
		if got := median(tc.in); got != tc.want {
			t.Errorf("%s: median(%v) = %v, want %v", name, tc.in, got, tc.want)
		}
	}
	if got := ratio(3, 0); got != 0 {
		t.Errorf("ratio(3, 0) = %v, want 0 (no baseline)", got)
	}
	if got := ratio(3, 2); got != 1.5 {
		t.Errorf("ratio(3, 2) = %v, want 1.5", got)
	}
}

func TestParseProc(t *testing.T) {
	t.Parallel()
	// A command name with spaces and parentheses, as /proc allows.
	stat := []byte("4242 (kyverno (x) y) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 75 0 0 20 0 12 0 100 200000000 5000 18446744073709551615\n")
	cpu, err := parseStatCPU(stat)
	if err != nil || cpu != 3250*time.Millisecond {
		t.Errorf("parseStatCPU = %v, %v; want 3.25s (325 ticks of 10ms)", cpu, err)
	}
	rss, err := parseStatusRSS([]byte("Name:\tkyverno\nVmPeak:\t 900 kB\nVmRSS:\t  123456 kB\nThreads:\t12\n"))
	if err != nil || rss != 123456*1024 {
		t.Errorf("parseStatusRSS = %d, %v; want %d", rss, err, 123456*1024)
	}
	if _, err := parseStatusRSS([]byte("Name:\tzombie\n")); err == nil {
		t.Error("parseStatusRSS without VmRSS: want an error")
	}
}

func TestBackgroundCalls(t *testing.T) {
	t.Parallel()
	c := calls{userKyverno: {"get externalsecrets": 3000, "update leases": 17, "get (non-resource)": 6,
		"update mutatingwebhookconfigurations": 3, "watch externalsecrets": 1, "list events": 2}}
	if got := c.reviewCalls(userKyverno); got != 3002 {
		t.Errorf("reviewCalls = %d, want 3002 (the GETs and LISTs a review makes, not upkeep)", got)
	}
	if got := c.reviewCalls(userCredchain); got != 0 {
		t.Errorf("reviewCalls of a user without calls = %d, want 0", got)
	}
	want := "get externalsecrets ×3000, update leases ×17, get (non-resource) ×6, update mutatingwebhookconfigurations ×3, list events ×2, watch externalsecrets ×1"
	if got := c.describe(userKyverno); got != want {
		t.Errorf("describe =\n%s\nwant\n%s", got, want)
	}
}
