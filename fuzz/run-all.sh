#!/usr/bin/env bash
# Runs every cargo-fuzz target of fuzz/ for FUZZ_SECONDS each (default 30),
# one after the other, each from a fresh corpus seeded with fuzz/seeds/TARGET.
# Fails if any target finds a crash, a leak, an input slower than
# FUZZ_TIMEOUT seconds (default 10) or one that takes over 2 GiB; the
# offending input is kept in fuzz/artifacts/TARGET/ and printed in hex.
# Prints each target's executions and, last, the total.
#
# Needs the nightly toolchain (`cargo +nightly`); installs cargo-fuzz (pinned)
# when it is missing. Run from anywhere: `fuzz/run-all.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_FUZZ_VERSION=0.13.2
FUZZ_SECONDS=${FUZZ_SECONDS:-30}
FUZZ_TIMEOUT=${FUZZ_TIMEOUT:-10}
# Larger inputs are printed only in part: the file is what to reproduce from.
MAX_HEX_BYTES=4096

if [[ "$(cargo fuzz --version 2>/dev/null || true)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]]; then
    cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked --force
fi
cargo fuzz --version
# The fuzz crate is its own workspace: its lockfile must be current.
cargo +nightly fetch --locked --manifest-path fuzz/Cargo.toml

mapfile -t targets < <(cargo +nightly fuzz list)
echo "fuzz: building ${#targets[@]} targets: ${targets[*]}"
cargo +nightly fuzz build

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

total=0
failed=()
for target in "${targets[@]}"; do
    corpus="$work/corpus/$target"
    artifacts="$work/artifacts/$target"
    log="$work/$target.log"
    mkdir -p "$corpus" "$artifacts"
    seeds=()
    if [[ -d "fuzz/seeds/$target" ]]; then
        seeds=("fuzz/seeds/$target")
    fi
    status=0
    cargo +nightly fuzz run "$target" "$corpus" "${seeds[@]}" -- \
        -max_total_time="$FUZZ_SECONDS" \
        -timeout="$FUZZ_TIMEOUT" \
        -rss_limit_mb=2048 \
        -artifact_prefix="$artifacts/" \
        -print_final_stats=1 \
        >"$log" 2>&1 || status=$?

    runs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\)$/\1/p' "$log" | tail -n 1)
    last=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)
    echo "fuzz: $target: ${runs:-?} executions in ${FUZZ_SECONDS} s (${last:-no status line})"
    total=$((total + ${runs:-0}))

    if [[ $status -ne 0 ]]; then
        failed+=("$target")
        echo "fuzz: $target FAILED (exit $status); the end of its log:"
        tail -n 60 "$log"
        mkdir -p "fuzz/artifacts/$target"
        for input in "$artifacts"/*; do
            [[ -f "$input" ]] || continue
            kept="fuzz/artifacts/$target/$(basename "$input")"
            cp "$input" "$kept"
            size=$(wc -c <"$kept")
            echo "fuzz: $target: failing input $kept ($size bytes), hex:"
            head -c "$MAX_HEX_BYTES" "$kept" | od -An -v -tx1 | tr -d ' \n'
            echo
            if ((size > MAX_HEX_BYTES)); then
                echo "fuzz: (only its first $MAX_HEX_BYTES bytes shown)"
            fi
            echo "fuzz: reproduce with: cargo +nightly fuzz run $target $kept"
        done
    fi
done

echo "fuzz: ${total} executions in total, ${#targets[@]} targets × ${FUZZ_SECONDS} s"
if ((${#failed[@]} > 0)); then
    echo "fuzz: failed: ${failed[*]}"
    exit 1
fi
