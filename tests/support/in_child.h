// SPDX-License-Identifier: BSD-3-Clause
// tests/support/in_child.h: run a piece of a test in a forked child, for
// death tests (an invariant check must abort) and for fork semantics.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>

namespace pagefrag::testing {

// Runs `body` in a forked child with default signal dispositions (doctest's
// crash handlers would report the child's abort as a test failure) and its
// stderr discarded; returns the child's wait status.
template <class F>
int in_child(F body) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    std::signal(SIGABRT, SIG_DFL);
    std::signal(SIGSEGV, SIG_DFL);
    if (std::FILE* null = std::freopen("/dev/null", "w", stderr); null == nullptr) ::_exit(2);
    body();
    ::_exit(0);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return status;
}

// True when the child died of SIGABRT (PAGEFRAG_CHECK's end).
inline bool aborted(int status) { return WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT; }

}  // namespace pagefrag::testing
