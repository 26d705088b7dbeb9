/*
 * protect.c — phi_protect_table's entry point, and the one way the guard
 * runs phi_guard's SQL with the extension owner's rights.
 *
 * phi_protect_table(tbl, tenant_column) is for the table's owner, but what
 * it does needs more than the owner's rights: it writes the registry
 * phi_guard.protected_tables and an audit entry, protects every partition
 * and inheritance child (whoever owns them), and repairs a wall that was
 * tampered with (which, while the table is registered, only phi_guard's own
 * code may touch).  So this C function checks that the caller owns the
 * table, then runs phi_guard.protect_apply, which is granted to no one, as
 * the extension's owner — exactly what a SECURITY DEFINER function does,
 * with the ownership check that such a function could not make (inside it
 * the caller is no longer known).  The statement-end work of utility.c
 * (guard_inherit, guard_column_renamed) runs the same way.
 *
 * Invariants: only fixed SQL calling phi_guard's own functions runs here,
 * with values as parameters.  The user and security context are restored
 * on the way out, also on error.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/skey.h"
#include "access/table.h"
#include "catalog/objectaddress.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"

#include "common/spi.h"
#include "guard/internal.h"

/* The owner of extension phi_guard in this database; ERROR (55000) if none. */
static Oid
extension_owner(void)
{
	Relation	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	Oid			owner = InvalidOid;

	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber, F_NAMEEQ,
				CStringGetDatum("phi_guard"));
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	if (HeapTupleIsValid(tup = systable_getnext(scan)))
		owner = ((Form_pg_extension) GETSTRUCT(tup))->extowner;
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	if (!OidIsValid(owner))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("phi_guard is not installed in this database"),
				 errhint("Run CREATE EXTENSION phi_guard.")));
	return owner;
}

void
protect_call_as_owner(const char *sql, int nargs, Oid *types, Datum *values)
{
	Oid			owner = extension_owner();
	Oid			save_user;
	int			save_sec;

	GetUserIdAndSecContext(&save_user, &save_sec);
	SetUserIdAndSecContext(owner, save_sec | SECURITY_LOCAL_USERID_CHANGE);
	PG_TRY();
	{
		SPI_connect();
		spi_run(sql, nargs, types, values, NULL, false);
		SPI_finish();
	}
	PG_FINALLY();
	{
		SetUserIdAndSecContext(save_user, save_sec);
	}
	PG_END_TRY();
}

PG_FUNCTION_INFO_V1(phi_guard_protect_table);

/*
 * phi_protect_table(tbl regclass, tenant_column name): for the owner of tbl
 * (42501 otherwise); the work is phi_guard.protect_apply's.
 */
Datum
phi_guard_protect_table(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	Oid			types[2] = {REGCLASSOID, NAMEOID};
	Datum		values[2] = {ObjectIdGetDatum(relid), PG_GETARG_DATUM(1)};

	if (!pg_class_ownercheck(relid, GetUserId()))
		aclcheck_error(ACLCHECK_NOT_OWNER, get_relkind_objtype(get_rel_relkind(relid)),
					   get_rel_name(relid));
	protect_call_as_owner("SELECT phi_guard.protect_apply($1, $2)", 2, types, values);
	PG_RETURN_VOID();
}
