#!/usr/bin/env bash
# Runs every fuzz target for a bounded time (FUZZ_SECONDS each, default 60), two at a time on
# the two cores CI has, starting from the committed seeds. Any crash fails the run and leaves the
# input in fuzz/artifacts/<target>/. Needs cargo-fuzz; installs it when missing.
set -euo pipefail
cd "$(dirname "$0")"

seconds="${FUZZ_SECONDS:-60}"
parallel="${FUZZ_JOBS:-2}"
export RUSTC_BOOTSTRAP=1 # the stable toolchain accepts the sanitizer flags cargo-fuzz passes

if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install --locked cargo-fuzz
fi

cargo fuzz build
targets=$(cargo fuzz list)

run_one() {
  local target="$1" seconds="$2"
  mkdir -p "corpus/$target" "artifacts/$target"
  local log="artifacts/$target.log"
  local start=$SECONDS
  if cargo fuzz run "$target" "corpus/$target" "seeds/$target" -- \
    -max_total_time="$seconds" -print_final_stats=1 >"$log" 2>&1; then
    local runs
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
    echo "fuzz $target: ok, $runs runs in $((SECONDS - start)) s"
  else
    echo "fuzz $target: FAILED after $((SECONDS - start)) s"
    tail -n 40 "$log"
    return 1
  fi
}
export -f run_one

# xargs runs the targets `parallel` at a time and exits non-zero if any of them failed.
printf '%s\n' $targets | xargs -P "$parallel" -I{} bash -c 'run_one "$@"' _ {} "$seconds"
