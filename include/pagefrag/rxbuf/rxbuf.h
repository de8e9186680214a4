// SPDX-License-Identifier: BSD-3-Clause
// pagefrag/rxbuf/rxbuf.h: the whole rxbuf layer in one include.
//
// RX buffer configuration: the RxBufPolicy concept, its request and answer
// types, the platform constants and every policy pagefrag ships.
#pragma once

#include "pagefrag/rxbuf/full_page_policy.h"
#include "pagefrag/rxbuf/kernel_policy.h"
#include "pagefrag/rxbuf/kind_policies.h"
#include "pagefrag/rxbuf/min_waste_policy.h"
#include "pagefrag/rxbuf/platform.h"
#include "pagefrag/rxbuf/rxbuf_cfg.h"
#include "pagefrag/rxbuf/rxbuf_policy.h"
