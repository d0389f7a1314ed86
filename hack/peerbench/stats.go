package main

import (
	"math"
	"slices"
	"time"
)

// percentile is the nearest-rank q-quantile (0 < q ≤ 1) of ds: the smallest value with at least
// q of the samples at or below it. ds is not modified; zero for no samples.
func percentile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	// ceil, less an epsilon: 0.99*100 must be rank 99 even if the product rounds to 99.000…01
	rank := int(math.Ceil(q*float64(len(s)) - 1e-9))
	rank = max(1, min(rank, len(s)))
	return s[rank-1]
}

// median is the middle value of xs (the mean of the two middle values for an even count); zero
// for none. The table reports the median round of each configuration, not a mean that one
// descheduled round would drag.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}

// ratio is a/b, or 0 when b is 0 (no baseline: printed as "—").
func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}
