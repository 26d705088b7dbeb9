/*
 * adopt.h — src/adopt: bringing existing columns under phi_guard (SPEC §9).
 *
 * Owns:
 *   spec.c     what a column migration is, checked against its table: the
 *              column and how its values are rendered, the tenant column,
 *              the aad expression (restricted, compiled); the value of the
 *              new phi_ciphertext column for a row, and the trigger that
 *              computes it for every write during the migration
 *   rewrap.c   the per-row functions of phi_rewrap_column's batches
 *   migrate.c  CALL phi_encrypt_column and phi_rewrap_column: the checks,
 *              the states of a migration (prepare, backfill, validate,
 *              swap, scrub; rewrap), resuming
 *   steps.c    their machinery (migration.h): the state row, steps in
 *              retried subtransactions, batches by primary-key range
 *              committed as they go, progress, the audit entry of a batch
 * May call: src/core, src/common, src/audit (one entry per batch, and the
 * quiet hook that spares an entry per row), src/keys, src/crypto.  Nothing
 * below calls it; src/guard above it has nothing to do with it (the
 * migration changes no policy and no audit trigger).
 *
 * This header is what the folder's files share.
 */
#ifndef PHI_GUARD_ADOPT_H
#define PHI_GUARD_ADOPT_H

#include "postgres.h"

#include "executor/tuptable.h"
#include "fmgr.h"
#include "nodes/execnodes.h"
#include "utils/relcache.h"

#include "crypto/crypto.h"
#include "keys/keys.h"

/* An aad expression compiled for the rows of one table (spec.c). */
typedef struct AdoptAad
{
	ExprState  *state;			/* NULL: no aad */
	ExprContext *econtext;		/* evaluates it, scanning slot */
	TupleTableSlot *slot;
} AdoptAad;

/*
 * A column migration's parameters, checked against its table and compiled
 * (spec.c).  Lives in the memory context it was built in.
 */
typedef struct AdoptSpec
{
	Oid			relid;
	AttrNumber	col;			/* the plaintext column */
	Oid			col_type;		/* its base type */
	AttrNumber	shadow;			/* the phi_ciphertext column it fills; 0: none yet */
	AttrNumber	tenant;			/* the tenant column; 0: none */
	FmgrInfo	tenant_out;		/* its output function */
	char		key[KEY_NAME_MAX + 1];
	AdoptAad	aad;
} AdoptSpec;

/*
 * spec.c: build s for the migration of column col of rel into column
 * shadow (NULL: not added yet) under key, with the optional tenant column
 * and aad expression (NULL: none).  Errors name what is wrong: 42703 a
 * missing column, 42804 a type that cannot be encrypted or rendered the
 * same in every session, 22023 an aad expression outside what is allowed.
 */
extern void adopt_spec_build(AdoptSpec *s, Relation rel, const char *col,
							 const char *shadow, const char *key,
							 const char *tenant_col, const char *aad);

/*
 * spec.c: the aad expression aad (SQL text over rel's columns) parsed,
 * checked and coerced to text, not compiled: 22023 unless it uses only
 * rel's columns (not forbid), constants, || and casts to text, of types
 * whose text form does not depend on session settings.
 */
extern Expr *adopt_aad_expr(Relation rel, const char *aad, AttrNumber forbid);

/*
 * spec.c: compile aad (NULL or "": none) for rows of rel (adopt_aad_expr's
 * rules, forbid the column it protects) into a, in the current memory
 * context; adopt_aad_eval gives its UTF-8 bytes for row tup (ptr NULL for
 * no aad or a NULL result, which is no aad as for phi_encrypt).
 */
extern void adopt_aad_compile(AdoptAad *a, Relation rel, const char *aad, AttrNumber forbid);
extern phic_bytes adopt_aad_eval(AdoptAad *a, HeapTuple tup);

/*
 * spec.c: whether values of type (a base type) can be encrypted by
 * phi_encrypt_column (text, varchar, char, int2/4/8, numeric, date, bytea).
 */
extern bool adopt_type_supported(Oid type);

/* spec.c: the OID of type phi_guard.phi_ciphertext. */
extern Oid	adopt_ciphertext_type(void);

/*
 * steps.c: true only while one of a migration's own batch statements
 * runs in this backend; rewrap.c's SQL functions refuse to run otherwise.
 * Set only by C code.
 */
extern bool adopt_in_batch;

/* steps.c: what rewrap.c did with the values of the current batch. */
extern int64 adopt_moves[CRYPTO_MOVE_NOT_AUTHENTIC + 1];

#endif
