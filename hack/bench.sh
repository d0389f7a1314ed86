#!/usr/bin/env bash
# bench.sh runs credchain's performance benchmarks and prints the figures docs/benchmarks.md reports.
# Each benchmark carries its own same-process baseline (a no-op handler, a plain typed decode), so
# compare ratios, not absolute numbers, across these shared, noisy machines.
#
#   hack/bench.sh            # COUNT=5 repetitions
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT="${COUNT:-5}"
echo "# $(date -u +%FT%TZ) $(go version) $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg)"
go test ./webhook -run '^$' -bench 'BenchmarkDecide' -benchtime 20000x -count "$COUNT"
go test ./webhook -run '^$' -bench 'BenchmarkAdmissionHTTPS' -benchtime 1x -count "$COUNT"
go test ./auditguard -run '^$' -bench 'BenchmarkIngest|BenchmarkSocketStall' -benchtime 5x -count "$COUNT"
go test ./auditguard -run '^$' -bench BenchmarkRestoreWindow -benchtime 1x -count 3
go test ./auditguard -run '^$' -bench 'BenchmarkVaultAuditStall|BenchmarkFileTailWake' -benchtime 1x -count 3
go test ./internal/vaultacl -run '^$' -bench BenchmarkCapabilities -benchtime 4000x -count "$COUNT"
go test ./internal/check -run '^$' -bench 'BenchmarkCheck' -benchtime 10x -cpu 1 -count "$COUNT"
go test ./internal/events -run '^$' -bench BenchmarkNATSPublish -benchtime 2000x -count "$COUNT"
go test ./internal/inventory -run '^$' -bench BenchmarkInventoryImpact -count "$COUNT"
