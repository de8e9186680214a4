# SPDX-License-Identifier: BSD-3-Clause
"""What a Bazel workspace needs to build @pagefrag (and pagefrag's own WORKSPACE).

A workspace that uses pagefrag declares it and calls pagefrag_dependencies()
(docs/building.md, "Using pagefrag from another Bazel workspace"):

    local_repository(name = "pagefrag", path = "/path/to/pagefrag")
    load("@pagefrag//:deps.bzl", "pagefrag_dependencies")
    pagefrag_dependencies()

It declares, each only where the workspace has not declared that name already:
  - the three offline stand-ins Bazel 4.2.3 would otherwise download
    (rules_cc, rules_java, remote_coverage_tools; docs/building.md), from
    pagefrag's third_party/bazel/;
  - @pagefrag_system: Debian's Abseil, fmt, doctest, rapidcheck, Google
    Benchmark, DPDK and libxdp under /usr (third_party/system.BUILD).

The stand-ins live inside pagefrag's tree, but a local_repository path in a
macro is resolved against the *calling* workspace. So they are declared with
_pagefrag_dir, which finds its directory through a Label of this repository
(wherever pagefrag was put) and links its contents in.
"""

def _pagefrag_dir_impl(ctx):
    src = ctx.path(ctx.attr.build_file_in_dir).dirname
    for child in src.readdir():
        ctx.symlink(child, child.basename)

_pagefrag_dir = repository_rule(
    implementation = _pagefrag_dir_impl,
    attrs = {
        # Any file of the directory to expose; its BUILD file by convention.
        "build_file_in_dir": attr.label(allow_single_file = True, mandatory = True),
    },
    local = True,
)

_STAND_INS = ["rules_cc", "rules_java", "remote_coverage_tools"]

def pagefrag_dependencies():
    """Declares pagefrag's repositories the workspace has not declared yet."""
    for name in _STAND_INS:
        if not native.existing_rule(name):
            _pagefrag_dir(
                name = name,
                build_file_in_dir = Label("//third_party/bazel/%s:BUILD" % name),
            )
    if not native.existing_rule("pagefrag_system"):
        native.new_local_repository(
            name = "pagefrag_system",
            build_file = str(Label("//third_party:system.BUILD")),
            path = "/usr",
        )
