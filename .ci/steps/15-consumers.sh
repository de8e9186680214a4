#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# CI step: another Bazel workspace uses pagefrag through the one snippet of
# docs/building.md (local_repository + load("@pagefrag//:deps.bzl") +
# pagefrag_dependencies()), then `bazel run`s the porting guide's example
# program built against @pagefrag//:pagefrag, and `bazel test`s a test that
# runs it (tests need the remote_coverage_tools stand-in). The workspace
# declares rules_java itself, so the macro must skip that one. Its own Bazel
# server (--output_user_root in a temporary directory) never touches the main
# one. (The pkg-config and CMake consumers are //tests/install tests.)
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
work=$(mktemp -d /tmp/pagefrag-consumer.XXXXXX)
out_root=$(mktemp -d /tmp/pagefrag-consumer-bazel.XXXXXX)
bzl() { bazel --output_user_root="$out_root" --max_idle_secs=60 "$@"; }
cleanup() {
  (cd "$work" && bzl shutdown) >/dev/null 2>&1
  chmod -R u+w "$out_root" 2>/dev/null
  rm -rf "$work" "$out_root"
}
trap cleanup EXIT
fail() {
  [[ -f "$work/log" ]] && tail -n 30 "$work/log"
  echo "consumers: FAILED ($*)"
  exit 1
}

# The snippet, as docs/building.md shows it (the ```python block of its
# "Another Bazel workspace" section; README.md must show the same): the part
# before "# .bazelrc" is WORKSPACE, the rest .bazelrc.
snippet() {  # file, heading the block follows
  awk -v h="$2" 'index($0, h) == 1 { s = 1 } s && /^```python/ { b = 1; next }
    b && /^```/ { exit } b { print }' "$1"
}
snippet "$root/docs/building.md" "### Another Bazel workspace" >"$work/snippet"
[[ -s "$work/snippet" ]] || fail "no snippet in docs/building.md"
snippet "$root/README.md" "## Using pagefrag in another project" | cmp -s - "$work/snippet" ||
  fail "README.md's snippet differs from docs/building.md's"
{
  echo 'workspace(name = "consumer")'
  echo '# A workspace that already has its own rules_java: pagefrag_dependencies()'
  echo '# must leave it alone.'
  echo "local_repository(name = \"rules_java\", path = \"$root/third_party/bazel/rules_java\")"
  sed -n '/^# \.bazelrc/q; p' "$work/snippet" | sed "s|/path/to/pagefrag|$root|"
} >"$work/WORKSPACE"
sed -n '/^# \.bazelrc/,$p' "$work/snippet" >"$work/.bazelrc"
echo 'build --nosandbox_debug' >>"$work/.bazelrc"
grep -q "path = \"$root\"" "$work/WORKSPACE" || fail "the snippet has no path = \"/path/to/pagefrag\""
cp "$root/examples/porting/porting_example.cc" "$work/"
cat >"$work/BUILD" <<'BUILD'
cc_binary(
    name = "porting_example",
    srcs = ["porting_example.cc"],
    copts = ["-Wall", "-Wextra", "-Wpedantic", "-Werror"],
    deps = ["@pagefrag//:pagefrag"],
)

sh_test(
    name = "porting_example_test",
    srcs = ["run_example.sh"],
    data = [":porting_example"],
)
BUILD
cat >"$work/run_example.sh" <<'SH'
#!/usr/bin/env bash
out=$(./porting_example) || exit 1
[[ "$out" == "porting_example: "*" packets verified, "*"leaks: 0 pages, 0 blocks, 0 mappings" ]]
SH
chmod +x "$work/run_example.sh"

cd "$work" || fail "no work directory"
got=$(bzl run //:porting_example 2>"$work/log") || fail "bazel run //:porting_example in the outside workspace"
[[ "$got" == "porting_example: "*" packets verified, "*"leaks: 0 pages, 0 blocks, 0 mappings" ]] ||
  fail "porting_example printed [$got]"
bzl test //:porting_example_test >"$work/log" 2>&1 || fail "bazel test in the outside workspace"
# The workspace's own rules_java won; the macro declared the other three.
bzl query //external:rules_java --output=build >"$work/log" 2>&1 || fail "query rules_java"
grep -q 'local_repository' "$work/log" || fail "pagefrag_dependencies() replaced the workspace's rules_java"
bzl query //external:rules_cc --output=build >"$work/log" 2>&1 || fail "query rules_cc"
grep -q '_pagefrag_dir' "$work/log" || fail "rules_cc was not declared by pagefrag_dependencies()"
echo "consumers: an outside Bazel workspace built, ran and tested the porting example over @pagefrag: $got"
