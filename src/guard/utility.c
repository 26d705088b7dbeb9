/*
 * utility.c — the ProcessUtility hook: what the guard checks and does
 * around each utility statement.
 *
 * Before the statement: DROP EXTENSION phi_guard while tables are
 * registered; TRUNCATE or DROP TABLE of one shard of a guarded Citus table
 * by hand (citus.enable_manual_changes_to_shards); CREATE OR REPLACE TRIGGER naming an audit trigger of an
 * audited table (it would swap the trigger's function in place, and any
 * role with the TRIGGER privilege may run it); COPY ... FROM and TRUNCATE
 * of an audited table in replica mode or by a role that may set it
 * (replica.c decides).
 * After the statement, while it can still be refused (an ERROR here rolls
 * it back with everything it did):
 * - ALTER TABLE ... DISABLE ROW LEVEL SECURITY / NO FORCE ROW LEVEL
 *   SECURITY left a protected table without row security or FORCE: ERROR.
 * - ALTER TABLE ... RENAME COLUMN on a protected table: the registry
 *   follows the tenant column's new name (phi_guard.guard_column_renamed).
 * - The work objects.c deferred to the end of the statement: a restrictive
 *   policy or an audit trigger dropped while its table stays is an ERROR
 *   (dropping the table, with DROP TABLE, DROP SCHEMA, DROP OWNED, is
 *   fine: the data goes too); a new inheritance link is handed to
 *   phi_guard.guard_inherit, which protects and audits the child like its
 *   parent, or refuses a guarded child under an unguarded parent.
 * Statements run through SPI here come back through this hook, nested.
 *
 * State: the deferred work, an array in TopMemoryContext used as a stack:
 * each statement handles the entries added since it began and leaves the
 * array as it found it, also when it fails (entries of a failed statement
 * are dropped with it).  Backend-local; no locks.
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

#include "common/catalog.h"
#include "common/citus.h"
#include "guard/internal.h"

typedef struct Deferred
{
	DeferredKind kind;
	Oid			objid;
	Oid			relid;
	NameData	name;
} Deferred;

static Deferred *deferred = NULL;
static int	ndeferred = 0;
static int	maxdeferred = 0;

static ProcessUtility_hook_type prev_utility = NULL;

void
utility_defer(DeferredKind kind, Oid objid, Oid relid, const char *name)
{
	Deferred   *d;

	if (ndeferred == maxdeferred)
	{
		maxdeferred = Max(16, maxdeferred * 2);
		deferred = deferred == NULL
			? MemoryContextAlloc(TopMemoryContext, maxdeferred * sizeof(Deferred))
			: repalloc(deferred, maxdeferred * sizeof(Deferred));
	}
	d = &deferred[ndeferred++];
	d->kind = kind;
	d->objid = objid;
	d->relid = relid;
	namestrcpy(&d->name, name ? name : "");
}

static bool
is_protected(Oid relid)
{
	return OidIsValid(relid) && lookup_registered("protected_tables", relid);
}

static bool
is_guarded(Oid relid)
{
	return is_protected(relid) || lookup_registered("audited_tables", relid);
}

/* Whether an ALTER TABLE switches row security or FORCE off. */
static bool
turns_row_security_off(AlterTableStmt *stmt)
{
	ListCell   *lc;

	foreach(lc, stmt->cmds)
	{
		AlterTableCmd *cmd = lfirst_node(AlterTableCmd, lc);

		if (cmd->subtype == AT_DisableRowSecurity || cmd->subtype == AT_NoForceRowSecurity)
			return true;
	}
	return false;
}

/* ERROR when a protected table lost row security or FORCE. */
static void
check_row_security(Oid relid)
{
	HeapTuple	tup;
	Form_pg_class cls;

	if (!is_protected(relid))
		return;
	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tup))
		return;
	cls = (Form_pg_class) GETSTRUCT(tup);
	if (!cls->relrowsecurity || !cls->relforcerowsecurity)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("cannot switch off row level security or FORCE ROW LEVEL SECURITY of protected table %s",
						catalog_qualified_name(relid)),
				 errdetail("A table protected by phi_protect_table keeps row level security enabled and forced."),
				 errhint("Only phi_unprotect_table, run by a phi_key_admin, removes the protection.")));
	ReleaseSysCache(tup);
}

/* A name as a Datum of type name (NameData, not a C string). */
static Datum
name_datum(const char *s)
{
	Name		n = palloc(sizeof(NameData));

	namestrcpy(n, s);
	return NameGetDatum(n);
}

/* The registry keeps a renamed tenant column's new name. */
static void
column_renamed(RenameStmt *stmt)
{
	Oid			relid = RangeVarGetRelid(stmt->relation, NoLock, true);
	Oid			types[3] = {REGCLASSOID, NAMEOID, NAMEOID};
	Datum		values[3];

	if (!is_protected(relid))
		return;
	values[0] = ObjectIdGetDatum(relid);
	values[1] = name_datum(stmt->subname);
	values[2] = name_datum(stmt->newname);
	protect_call_as_owner("SELECT phi_guard.guard_column_renamed($1, $2, $3)", 3, types, values);
}

static void
refuse_drop(const Deferred *d)
{
	if (d->kind == DEFERRED_POLICY_DROPPED)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("cannot drop restrictive policy \"%s\" of protected table %s",
						NameStr(d->name), catalog_qualified_name(d->relid)),
				 errdetail("The restrictive policies of a table protected by phi_protect_table keep its tenants apart; they go only with the table."),
				 errhint("Only phi_unprotect_table, run by a phi_key_admin, removes the protection.")));
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("cannot drop audit trigger \"%s\" of audited table %s",
					NameStr(d->name), catalog_qualified_name(d->relid)),
			 errdetail("The audit triggers of a table audited by phi_audit_enable go only with the table."),
			 errhint("Only phi_audit_disable, run by a phi_audit_admin, ends the auditing of a table.")));
}

/* A new link child -> parent: guard_inherit extends or refuses. */
static void
inheritance_added(Oid child, Oid parent)
{
	Oid			types[2] = {REGCLASSOID, REGCLASSOID};
	Datum		values[2] = {ObjectIdGetDatum(child), ObjectIdGetDatum(parent)};

	if (!is_guarded(parent) && !is_guarded(child))
		return;
	protect_call_as_owner("SELECT phi_guard.guard_inherit($1, $2)", 2, types, values);
}

/* Handle the entries from base on, which the statement that ends added. */
static void
run_deferred(int base)
{
	int			n = ndeferred - base;
	Deferred   *mine;

	if (n == 0)
		return;
	/* a copy: statements run below add entries of their own above base */
	mine = palloc(n * sizeof(Deferred));
	memcpy(mine, &deferred[base], n * sizeof(Deferred));
	ndeferred = base;
	for (int i = 0; i < n; i++)
	{
		Deferred   *d = &mine[i];

		switch (d->kind)
		{
			case DEFERRED_POLICY_DROPPED:
			case DEFERRED_TRIGGER_DROPPED:
				/* gone with its table: allowed */
				if (SearchSysCacheExists1(RELOID, ObjectIdGetDatum(d->relid)))
					refuse_drop(d);
				break;
			case DEFERRED_INHERITANCE:
				inheritance_added(d->objid, d->relid);
				break;
		}
	}
	pfree(mine);
}

/*
 * DROP EXTENSION phi_guard while tables are registered: ERROR.  CASCADE
 * would drop the walls (they call phi_guard's functions) and leave those
 * tables under their permissive policies alone.
 */
static void
check_drop_extension(DropStmt *stmt)
{
	ListCell   *lc;

	foreach(lc, stmt->objects)
	{
		if (strcmp(strVal(lfirst(lc)), "phi_guard") == 0 && lookup_any_registered())
			ereport(ERROR,
					(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
					 errmsg("cannot drop extension phi_guard while tables are protected or audited"),
					 errdetail("phi_guard.protected_tables and phi_guard.audited_tables list them."),
					 errhint("Run phi_unprotect_table and phi_audit_disable on them first.")));
	}
}

/*
 * CREATE OR REPLACE TRIGGER whose name is that of an audit trigger of an
 * audited table: ERROR.  (The trigger is known by its function; the name
 * only says which one the statement would replace.)
 */
static void
check_trigger_replace(CreateTrigStmt *stmt)
{
	Oid			relid = RangeVarGetRelid(stmt->relation, NoLock, true);
	Oid			fn = lookup_audit_function();

	if (!OidIsValid(relid) || !OidIsValid(fn) ||
		lookup_trigger_function(relid, stmt->trigname) != fn ||
		!lookup_registered("audited_tables", relid))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("cannot replace audit trigger \"%s\" of audited table %s",
					stmt->trigname, catalog_qualified_name(relid)),
			 errdetail("The audit triggers of a table audited by phi_audit_enable keep their function, events and mode."),
			 errhint("Only phi_audit_disable, run by a phi_audit_admin, ends the auditing of a table.")));
}

/*
 * TRUNCATE or DROP TABLE (what) of relid, a shard of a protected or
 * audited Citus table, with citus.enable_manual_changes_to_shards on: ERROR.
 * A shard truncated or dropped on its own would lose rows with no entry
 * (the audit's TRUNCATE trigger is the table's, on the coordinator);
 * Citus's own TRUNCATE and DROP of shards need no such setting.
 */
static void
check_manual_shard_change(Oid relid, const char *what)
{
	const char *manual = GetConfigOption("citus.enable_manual_changes_to_shards", true, false);

	if (!OidIsValid(relid) || manual == NULL || strcmp(manual, "on") != 0 ||
		citus_shard_table(relid) == relid ||
		!(lookup_registered("audited_tables", relid) || lookup_registered("protected_tables", relid)))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("cannot %s shard \"%s\" of guarded table %s by hand", what,
					get_rel_name(relid), catalog_qualified_name(relid)),
			 errdetail("Its rows would go without an audit entry."),
			 errhint("%s the table itself, on the coordinator.", strcmp(what, "truncate") == 0 ? "Truncate" : "Drop")));
}

static void
before_statement(Node *parsetree)
{
	if (IsA(parsetree, DropStmt) && ((DropStmt *) parsetree)->removeType == OBJECT_EXTENSION)
		check_drop_extension((DropStmt *) parsetree);
	else if (IsA(parsetree, CreateTrigStmt) && ((CreateTrigStmt *) parsetree)->replace)
		check_trigger_replace((CreateTrigStmt *) parsetree);
	else if (IsA(parsetree, CopyStmt))
	{
		CopyStmt   *stmt = (CopyStmt *) parsetree;

		if (stmt->is_from && stmt->relation != NULL)
			replica_refuse_write(RangeVarGetRelid(stmt->relation, NoLock, true));
	}
	else if (IsA(parsetree, TruncateStmt))
	{
		ListCell   *lc;

		foreach(lc, ((TruncateStmt *) parsetree)->relations)
		{
			Oid			relid = RangeVarGetRelid(lfirst_node(RangeVar, lc), NoLock, true);

			replica_refuse_write(relid);
			check_manual_shard_change(relid, "truncate");
		}
	}
	else if (IsA(parsetree, DropStmt) && ((DropStmt *) parsetree)->removeType == OBJECT_TABLE)
	{
		ListCell   *lc;

		foreach(lc, ((DropStmt *) parsetree)->objects)
			check_manual_shard_change(RangeVarGetRelid(makeRangeVarFromNameList((List *) lfirst(lc)),
													   NoLock, true), "drop");
	}
}

static void
after_statement(Node *parsetree)
{
	if (IsA(parsetree, AlterTableStmt))
	{
		AlterTableStmt *stmt = (AlterTableStmt *) parsetree;

		if (turns_row_security_off(stmt))
			check_row_security(RangeVarGetRelid(stmt->relation, NoLock, true));
	}
	else if (IsA(parsetree, RenameStmt) &&
			 ((RenameStmt *) parsetree)->renameType == OBJECT_COLUMN)
		column_renamed((RenameStmt *) parsetree);
}

static void
utility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
		ProcessUtilityContext context, ParamListInfo params,
		QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *parsetree = pstmt->utilityStmt;
	int			base = ndeferred;

	if (!IsBinaryUpgrade)
		before_statement(parsetree);
	PG_TRY();
	{
		if (prev_utility)
			prev_utility(pstmt, queryString, readOnlyTree, context, params,
						 queryEnv, dest, qc);
		else
			standard_ProcessUtility(pstmt, queryString, readOnlyTree, context,
									params, queryEnv, dest, qc);
	}
	PG_CATCH();
	{
		ndeferred = base;
		PG_RE_THROW();
	}
	PG_END_TRY();
	if (!IsBinaryUpgrade)
		after_statement(parsetree);
	run_deferred(base);
}

void
utility_init(void)
{
	prev_utility = ProcessUtility_hook;
	ProcessUtility_hook = utility;
}
