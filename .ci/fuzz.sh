#!/usr/bin/env bash
# Fuzz smoke run: every cargo-fuzz target in fuzz/ for a fixed time, from a
# throw-away copy of the seed corpus (nothing new lands in the git tree).
# Fails on any crash, leak, timeout or OOM and names the artifact files.
#
#   bash .ci/fuzz.sh                       # 60 s per target
#   FUZZ_SECONDS=600 bash .ci/fuzz.sh      # longer
#   FUZZ_TARGETS="open envelope" bash .ci/fuzz.sh
#   FUZZ_ARGS="-max_len=8192" bash .ci/fuzz.sh  # extra libFuzzer flags (the last of a flag wins)
#
# See FUZZING.md.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

SECONDS_PER_TARGET="${FUZZ_SECONDS:-60}"
TARGETS="${FUZZ_TARGETS:-}"   # default: every target `cargo fuzz list` shows

die() {
  echo >&2
  echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!" >&2
  echo "!! fuzz.sh: $*" >&2
  echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!" >&2
  exit 1
}

case "$SECONDS_PER_TARGET" in
  '' | *[!0-9]*) die "FUZZ_SECONDS must be a whole number of seconds (got '$SECONDS_PER_TARGET')" ;;
esac

# cargo-fuzz needs a nightly toolchain (-Zsanitizer); never skip silently without one.
if ! rustup toolchain list | grep -q '^nightly'; then
  die "no nightly toolchain: the fuzz targets cannot be built or run. Install one with 'rustup toolchain install nightly' (rustup toolchain list shows: $(rustup toolchain list | tr '\n' ' '))"
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "cargo-fuzz is missing: installing it (cargo install cargo-fuzz --locked)"
  cargo install cargo-fuzz --locked
fi
echo "$(cargo fuzz --version), $(cargo +nightly --version)"
if [ -z "$TARGETS" ]; then
  TARGETS="$(cargo +nightly fuzz list | tr '\n' ' ')"
fi
[ -n "${TARGETS// /}" ] || die "no fuzz targets found (cargo fuzz list is empty)"

echo "building fuzz targets (release, debug assertions, AddressSanitizer)"
# Quiet on success; the whole log on failure.
build_log="$(mktemp)"
if ! cargo +nightly fuzz build >"$build_log" 2>&1; then
  cat "$build_log" >&2
  die "cargo +nightly fuzz build failed"
fi
rm -f "$build_log"

work="$(mktemp -d "${TMPDIR:-/tmp}/sealed-session-fuzz.XXXXXX")"
echo "scratch corpus and logs: $work"

failed=()
summary=()
total_runs=0

for target in $TARGETS; do
  [ -f "fuzz/fuzz_targets/$target.rs" ] || die "unknown target '$target' (no fuzz/fuzz_targets/$target.rs)"
  corpus="$work/corpus/$target"
  mkdir -p "$corpus" "fuzz/artifacts/$target"
  if [ -d "fuzz/corpus/$target" ]; then
    cp -R "fuzz/corpus/$target/." "$corpus/"
  else
    echo "warning: no seed corpus fuzz/corpus/$target: starting from nothing" >&2
  fi
  if [ -d "fuzz/regressions/$target" ]; then
    cp -R "fuzz/regressions/$target/." "$corpus/"
  fi
  # The envelope target must stay far below any real memory: its decompression
  # cap is 4 KiB, so any single allocation of 64 MiB or an RSS of 256 MiB is a bug.
  # (ASan's quarantine would count towards RSS; keep it small for that target.)
  limits=(-rss_limit_mb=2048)
  asan_options="${ASAN_OPTIONS:-}"
  if [ "$target" = envelope ]; then
    limits=(-rss_limit_mb=256 -malloc_limit_mb=64)
    asan_options="${asan_options:+$asan_options:}quarantine_size_mb=16"
  fi
  marker="$work/$target.start"
  touch "$marker"
  log="$work/$target.log"
  echo
  echo "==> fuzz $target for ${SECONDS_PER_TARGET}s ($(find "$corpus" -type f | wc -l) seed files; log $log)"
  status=0
  ASAN_OPTIONS="$asan_options" cargo +nightly fuzz run "$target" "$corpus" -- \
    -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -print_final_stats=1 \
    "${limits[@]}" ${FUZZ_ARGS:-} >"$log" 2>&1 || status=$?

  # (Every grep/sed here may match nothing: keep set -e / pipefail from ending the script.)
  runs="$(sed -n 's/^Done \([0-9][0-9]*\) runs in \([0-9][0-9]*\) second.*/\1 \2/p' "$log" | tail -n 1 || true)"
  peak="$(sed -n 's/^stat::peak_rss_mb: *\([0-9][0-9]*\).*/\1/p' "$log" | tail -n 1 || true)"
  artifacts="$(find "fuzz/artifacts/$target" -type f -newer "$marker" 2>/dev/null | sort || true)"
  if [ "$status" -ne 0 ] || [ -z "$runs" ] || [ -n "$artifacts" ]; then
    last="$( (grep -o '^#[0-9][0-9]*' "$log" || true) | tail -n 1 | tr -d '#')"
    echo "---- last 60 lines of $log ----" >&2
    tail -n 60 "$log" >&2
    echo "---- end of log ----" >&2
    echo "FAILED: $target (exit $status) after ~${last:-0} runs" >&2
    if [ -n "$artifacts" ]; then
      echo "artifacts:" >&2
      for a in $artifacts; do
        echo "  $a" >&2
        echo "    reproduce: cargo +nightly fuzz run $target $a" >&2
        echo "    minimize:  cargo +nightly fuzz tmin $target $a" >&2
      done
    fi
    failed+=("$target")
    summary+=("$(printf '%-14s FAILED after ~%s runs' "$target" "${last:-0}")")
    total_runs=$((total_runs + ${last:-0}))
    continue
  fi
  set -- $runs
  rate=$(( $1 / ($2 > 0 ? $2 : 1) ))
  summary+=("$(printf '%-14s %12s runs in %5s s (%s/s), peak RSS %s MB, corpus %s files' \
    "$target" "$1" "$2" "$rate" "${peak:-?}" "$(find "$corpus" -type f | wc -l)")")
  total_runs=$((total_runs + $1))
  echo "${summary[-1]}"
done

echo
echo "fuzz summary (${SECONDS_PER_TARGET}s per target):"
for line in "${summary[@]}"; do
  echo "  $line"
done
echo "  total          $(printf '%12s' "$total_runs") runs"

if [ "${#failed[@]}" -ne 0 ]; then
  die "fuzz targets failed: ${failed[*]} (artifacts under fuzz/artifacts/; see FUZZING.md to turn one into a regression test)"
fi
rm -rf "$work"
echo "fuzz: no crashes"
