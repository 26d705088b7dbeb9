/*
 * common.h — src/common: the PostgreSQL glue that every capability shares.
 *
 * Owns: the mapping of core failures to SQLSTATEs and the "not preloaded"
 * error (errors.h), SPI helpers (spi.h), lookups of phi_guard's relations
 * and "schema.table" names (catalog.h), setting-independent text forms —
 * UTC timestamps, hex (format.h), end-of-transaction clean-up (xact.h),
 * and the work counters behind phi_guard.stats (stats.h).
 *
 * May call: src/core and PostgreSQL only; no capability folder (audit,
 * context, keys, crypto, tokens, guard).
 *
 * Include the one header you need; this one gathers them for phi_guard.c.
 */
#ifndef PHI_GUARD_COMMON_H
#define PHI_GUARD_COMMON_H

#include "common/catalog.h"
#include "common/errors.h"
#include "common/format.h"
#include "common/spi.h"
#include "common/stats.h"
#include "common/xact.h"

#endif
