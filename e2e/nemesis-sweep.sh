#!/bin/sh
# Runs the nemesis (TestNemesis) for N seeds in a row, from NEMESIS_SEED
# (default: the time) up, and lists the seeds that failed with how to
# replay each. Exits 1 if any did. See docs/nemesis.md.
set -u
cd "$(dirname "$0")"
: "${GO:=go}" "${N:=20}" "${NEMESIS_DURATION:=10m}" "${NEMESIS_LOGS:=/tmp/votestream-nemesis}"
base=${NEMESIS_SEED:-$(date +%s)}
bin=$(mktemp -d)/e2e.test
trap 'rm -rf "$(dirname "$bin")"' EXIT
"$GO" test -race -c -o "$bin" . || exit 2
mkdir -p "$NEMESIS_LOGS"
failed=""
i=0
while [ "$i" -lt "$N" ]; do
	seed=$((base + i))
	log="$NEMESIS_LOGS/sweep-$seed.log"
	NEMESIS_SEED=$seed E2E_LOG_DIR="$NEMESIS_LOGS/$seed" \
		"$bin" -test.run '^TestNemesis$' -test.v -test.count=1 -test.timeout 90m >"$log" 2>&1
	rc=$?
	line=$(grep -o 'nemesis: seed=.*' "$log" | tail -n 1)
	echo "${line:-nemesis: seed=$seed (no summary line)} rc=$rc log=$log"
	# A run without its summary line (skipped: no root, no Kafka jars)
	# proves nothing: it fails the sweep too.
	if [ "$rc" -ne 0 ] || [ -z "$line" ]; then
		failed="$failed $seed"
	fi
	i=$((i + 1))
done
if [ -n "$failed" ]; then
	echo "nemesis-sweep: failed seeds:$failed"
	for s in $failed; do
		echo "  replay: make nemesis NEMESIS_SEED=$s NEMESIS_DURATION=$NEMESIS_DURATION"
	done
	exit 1
fi
echo "nemesis-sweep: all $N seeds from $base passed"
