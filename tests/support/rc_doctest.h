// SPDX-License-Identifier: BSD-3-Clause
// tests/support/rc_doctest.h: rapidcheck properties as doctest checks.
//
// rapidcheck has no doctest adapter; rc::check returns whether the property
// held (printing the shrunk counterexample when not). PAGEFRAG_RC_CHECK wraps
// it in doctest's CHECK so a failing property fails the test case. The number
// of cases comes from RC_PARAMS (e.g. RC_PARAMS="max_success=1000").
#pragma once

#include <doctest/doctest.h>
#include <rapidcheck.h>

#define PAGEFRAG_RC_CHECK(description, ...) CHECK(rc::check(description, __VA_ARGS__))
