/*
 * spec.c — what a column migration is, checked against its table, and the
 * per-row work it defines (SPEC §9): the value of the new phi_ciphertext
 * column for a row, computed by the trigger phi_encrypt_column installs for
 * the time of the migration (phi_guard.column_migration_sync).
 *
 * Values are rendered without session settings, so that a value decrypts
 * to the same text whoever reads it: text, varchar and char (trailing
 * blanks dropped, as char::text does) as they are, encrypted as UTF-8;
 * int2, int4, int8 and numeric by their output functions (canonical text);
 * dates as ISO-8601 (YYYY-MM-DD, "BC" after the year before year 1,
 * infinity and -infinity); bytea as its bytes (decrypted with
 * phi_decrypt_bytea).  Domains over these types are rendered as their base
 * type.
 *
 * The aad is the text of an SQL expression over the row.  It is evaluated
 * by the writers' sessions (through the trigger) as well as by the
 * migration's own batches, and again by every reader who decrypts, so it
 * is restricted to what gives the same text everywhere and runs no code of
 * anyone's: the table's columns (not the one it protects) and constants of
 * types whose text form depends on no setting (integers, numeric, text,
 * varchar, char, name, uuid, boolean, oid), ||, and casts to text;
 * operators are resolved with search_path = pg_catalog, pg_temp.  A NULL
 * result means no aad, as for phi_encrypt.  The tenant column obeys the
 * same type rule; a NULL tenant uses the shared key.
 *
 * Key choice per row: the tenant's own key of the name when it has one,
 * otherwise the shared key (keyring_for_tenant); without a tenant column,
 * the shared key.  Per row: one render, one expression evaluation, two
 * hash probes for the key, one AES-GCM seal.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "parser/parse_coerce.h"
#include "parser/parse_collate.h"
#include "parser/parse_expr.h"
#include "parser/parse_relation.h"
#include "parser/parser.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "adopt/adopt.h"
#include "common/format.h"
#include "crypto/crypto.h"

/* The types whose values phi_encrypt_column encrypts. */
bool
adopt_type_supported(Oid type)
{
	switch (type)
	{
		case TEXTOID:
		case VARCHAROID:
		case BPCHAROID:
		case INT2OID:
		case INT4OID:
		case INT8OID:
		case NUMERICOID:
		case DATEOID:
		case BYTEAOID:
			return true;
		default:
			return false;
	}
}

/* Types (domains over them too) whose text form is the same in every session. */
static bool
text_form_is_stable(Oid type)
{
	Oid			base = getBaseType(type);

	return base == CHAROID || format_type_text_is_stable(base);
}

Oid
adopt_ciphertext_type(void)
{
	Oid			nsp = get_namespace_oid("phi_guard", false);

	return GetSysCacheOid2(TYPENAMENSP, Anum_pg_type_oid,
						   CStringGetDatum("phi_ciphertext"), ObjectIdGetDatum(nsp));
}

/* ---------------------------------------------------------------------
 * The aad expression
 * --------------------------------------------------------------------- */

typedef struct AadCheck
{
	AttrNumber	forbid;			/* the column the aad protects */
	const char *problem;		/* set when something is not allowed */
} AadCheck;

/* expression_tree_walker: true (stop) at the first node not allowed. */
static bool
aad_walker(Node *node, AadCheck *c)
{
	if (node == NULL)
		return false;
	switch (nodeTag(node))
	{
		case T_Var:
			{
				Var		   *v = (Var *) node;

				if (v->varlevelsup != 0 || v->varattno <= 0)
					c->problem = "It may use the table's own columns only.";
				else if (v->varattno == c->forbid)
					c->problem = "It must not use the column whose values it protects.";
				else if (!text_form_is_stable(v->vartype))
					c->problem = "It uses a column whose type's text form depends on session settings (a date, time, float, money, ...).";
				break;
			}
		case T_Const:
			if (!text_form_is_stable(((Const *) node)->consttype))
				c->problem = "It uses a constant whose type's text form depends on session settings.";
			break;
		case T_RelabelType:
		case T_CollateExpr:
			break;
		case T_CoerceViaIO:
			if (!text_form_is_stable(((CoerceViaIO *) node)->resulttype))
				c->problem = "It casts to a type other than text.";
			break;
		case T_FuncExpr:
		case T_OpExpr:
			{
				Oid			fn = IsA(node, FuncExpr) ? ((FuncExpr *) node)->funcid
					: ((OpExpr *) node)->opfuncid;

				if (fn != F_TEXTCAT && fn != F_TEXTANYCAT && fn != F_ANYTEXTCAT &&
					fn != F_TEXT_BPCHAR && fn != F_TEXT_NAME)
					c->problem = "Its only operator is || and its only functions are casts to text.";
				break;
			}
		default:
			c->problem = "It may use only columns, constants, || and casts to text.";
			break;
	}
	if (c->problem)
		return true;
	return expression_tree_walker(node, aad_walker, (void *) c);
}

/* 22023 for an aad expression that is not one plain expression. */
static void
not_one_expression(void) pg_attribute_noreturn();

static void
not_one_expression(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("the aad must be one SQL expression over the table's columns"),
			 errhint("For example $$'patients.ssn:' || id$$.")));
}

/*
 * Error context of parsing an aad expression: a position points into the
 * expression (shown as the internal query), not into the caller's CALL.
 */
static void
aad_error_position(void *arg)
{
	int			pos = geterrposition();

	if (pos > 0)
	{
		errposition(0);
		internalerrposition(pos);
		internalerrquery((const char *) arg);
	}
}

Expr *
adopt_aad_expr(Relation rel, const char *aad, AttrNumber forbid)
{
	char	   *query = psprintf("SELECT %s", aad);
	int			nestlevel = NewGUCNestLevel();
	List	   *raw;
	SelectStmt *sel;
	ResTarget  *target;
	ParseState *pstate;
	ParseNamespaceItem *nsitem;
	Node	   *expr;
	AadCheck	check = {forbid, NULL};
	ErrorContextCallback errcb;

	/* || and casts as pg_catalog defines them, for every session alike */
	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	errcb.callback = aad_error_position;
	errcb.arg = query;
	errcb.previous = error_context_stack;
	error_context_stack = &errcb;
	raw = raw_parser(query, RAW_PARSE_DEFAULT);
	if (list_length(raw) != 1 || !IsA(linitial_node(RawStmt, raw)->stmt, SelectStmt))
		not_one_expression();
	sel = (SelectStmt *) linitial_node(RawStmt, raw)->stmt;
	if (list_length(sel->targetList) != 1 || sel->fromClause || sel->whereClause ||
		sel->groupClause || sel->havingClause || sel->windowClause || sel->valuesLists ||
		sel->sortClause || sel->limitOffset || sel->limitCount || sel->lockingClause ||
		sel->withClause || sel->intoClause || sel->distinctClause || sel->op != SETOP_NONE)
		not_one_expression();
	target = linitial_node(ResTarget, sel->targetList);

	pstate = make_parsestate(NULL);
	pstate->p_sourcetext = query;
	nsitem = addRangeTableEntryForRelation(pstate, rel, AccessShareLock, NULL, false, true);
	addNSItemToQuery(pstate, nsitem, true, true, true);
	expr = transformExpr(pstate, target->val, EXPR_KIND_OTHER);
	expr = coerce_to_target_type(pstate, expr, exprType(expr), TEXTOID, -1,
								 COERCION_EXPLICIT, COERCE_EXPLICIT_CAST, -1);
	if (expr == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("the aad expression must give text")));
	assign_expr_collations(pstate, expr);
	free_parsestate(pstate);
	error_context_stack = errcb.previous;
	AtEOXact_GUC(true, nestlevel);

	if (aad_walker(expr, &check))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the aad expression is not allowed"),
				 errdetail_internal("%s", check.problem),
				 errhint("Use the table's columns (integers, numeric, text, uuid), text constants, || and casts to text, for example $$'patients.ssn:' || id$$.")));
	return (Expr *) expr;
}

void
adopt_aad_compile(AdoptAad *a, Relation rel, const char *aad, AttrNumber forbid)
{
	memset(a, 0, sizeof(*a));
	if (aad == NULL || aad[0] == '\0')
		return;
	a->state = ExecInitExpr(expression_planner(adopt_aad_expr(rel, aad, forbid)), NULL);
	a->econtext = CreateStandaloneExprContext();
	a->slot = MakeSingleTupleTableSlot(CreateTupleDescCopy(RelationGetDescr(rel)), &TTSOpsHeapTuple);
}

phic_bytes
adopt_aad_eval(AdoptAad *a, HeapTuple tup)
{
	phic_bytes	aad = {NULL, 0};
	bool		isnull;
	Datum		d;

	if (a->state == NULL)
		return aad;
	ResetExprContext(a->econtext);
	ExecStoreHeapTuple(tup, a->slot, false);
	a->econtext->ecxt_scantuple = a->slot;
	d = ExecEvalExprSwitchContext(a->state, a->econtext, &isnull);
	if (!isnull)
	{
		text	   *t = DatumGetTextPP(d);

		aad = crypto_utf8(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
	}
	ExecClearTuple(a->slot);
	return aad;
}

/* ---------------------------------------------------------------------
 * The migration's parameters
 * --------------------------------------------------------------------- */

/* The attribute number of user column name of rel; 42703 when missing. */
static AttrNumber
column_of(Relation rel, const char *name)
{
	AttrNumber	attno = get_attnum(RelationGetRelid(rel), name);

	if (attno <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of relation \"%s\" does not exist",
						name, RelationGetRelationName(rel))));
	return attno;
}

void
adopt_spec_build(AdoptSpec *s, Relation rel, const char *col, const char *shadow,
				 const char *key, const char *tenant_col, const char *aad)
{
	TupleDesc	desc = RelationGetDescr(rel);

	memset(s, 0, sizeof(*s));
	s->relid = RelationGetRelid(rel);
	s->col = column_of(rel, col);
	s->col_type = getBaseType(TupleDescAttr(desc, s->col - 1)->atttypid);
	if (!adopt_type_supported(s->col_type))
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("column \"%s\" of type %s cannot be encrypted by phi_encrypt_column",
						col, format_type_be(TupleDescAttr(desc, s->col - 1)->atttypid)),
				 errhint("Supported types are text, varchar, char, smallint, integer, bigint, numeric, date and bytea.")));
	if (shadow)
	{
		s->shadow = column_of(rel, shadow);
		if (TupleDescAttr(desc, s->shadow - 1)->atttypid != adopt_ciphertext_type())
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("column \"%s\" is not of type phi_ciphertext", shadow)));
	}
	if (tenant_col)
	{
		Oid			out;
		bool		varlena;

		s->tenant = column_of(rel, tenant_col);
		if (s->tenant == s->col)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("the tenant column cannot be the column to encrypt")));
		if (!text_form_is_stable(TupleDescAttr(desc, s->tenant - 1)->atttypid))
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("tenant column \"%s\" of type %s is not supported", tenant_col,
							format_type_be(TupleDescAttr(desc, s->tenant - 1)->atttypid)),
					 errhint("A tenant column is text, varchar, uuid or an integer.")));
		getTypeOutputInfo(TupleDescAttr(desc, s->tenant - 1)->atttypid, &out, &varlena);
		fmgr_info(out, &s->tenant_out);
	}
	if (key == NULL || strlen(key) < 1 || strlen(key) > KEY_NAME_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("key name must be 1 to %d bytes long", KEY_NAME_MAX)));
	strlcpy(s->key, key, sizeof(s->key));
	adopt_aad_compile(&s->aad, rel, aad, s->col);
}

/* ---------------------------------------------------------------------
 * One row
 * --------------------------------------------------------------------- */

/*
 * The bytes of value d of column type type that are encrypted (bytea:
 * *from_bytea); a transcoded text copy is wiped with the row's memory.
 */
static phic_bytes
render(Oid type, Datum d, bool *from_bytea)
{
	phic_bytes	b;
	char	   *str;

	*from_bytea = false;
	switch (type)
	{
		case TEXTOID:
		case VARCHAROID:
			{
				text	   *t = DatumGetTextPP(d);

				return crypto_utf8(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
			}
		case BPCHAROID:
			{
				BpChar	   *t = DatumGetBpCharPP(d);

				return crypto_utf8(VARDATA_ANY(t),
								   bpchartruelen(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t)));
			}
		case BYTEAOID:
			{
				bytea	   *t = DatumGetByteaPP(d);

				*from_bytea = true;
				b.ptr = (const uint8 *) VARDATA_ANY(t);
				b.len = VARSIZE_ANY_EXHDR(t);
				return b;
			}
		case DATEOID:
			{
				DateADT		date = DatumGetDateADT(d);
				struct pg_tm tm;

				str = crypto_alloc_wiped(MAXDATELEN + 1);
				if (DATE_NOT_FINITE(date))
					EncodeSpecialDate(date, str);
				else
				{
					memset(&tm, 0, sizeof(tm));
					j2date(date + POSTGRES_EPOCH_JDATE, &tm.tm_year, &tm.tm_mon, &tm.tm_mday);
					EncodeDateOnly(&tm, USE_ISO_DATES, str);
				}
				break;
			}
		case INT2OID:
			str = DatumGetCString(DirectFunctionCall1(int2out, d));
			break;
		case INT4OID:
			str = DatumGetCString(DirectFunctionCall1(int4out, d));
			break;
		case INT8OID:
			str = DatumGetCString(DirectFunctionCall1(int8out, d));
			break;
		case NUMERICOID:
			str = DatumGetCString(DirectFunctionCall1(numeric_out, d));
			break;
		default:
			elog(ERROR, "phi_guard: type %u cannot be rendered", type);
	}
	b.ptr = (const uint8 *) str;	/* ASCII: the same bytes in UTF-8 */
	b.len = strlen(str);
	return b;
}

/*
 * The phi_ciphertext of tup's column s->col (desc: the table's), or
 * *isnull for NULL.  Everything that may take a lock (detoasting, the
 * aad) comes before the key lookup, and the key is used at once.
 */
static Datum
encrypt_row(AdoptSpec *s, TupleDesc desc, HeapTuple tup, bool *isnull)
{
	Datum		d = heap_getattr(tup, s->col, desc, isnull);
	phic_bytes	pt;
	phic_bytes	aad;
	bool		from_bytea;
	char	   *tenant = NULL;
	KeyEntry   *key;

	if (*isnull)
		return (Datum) 0;
	pt = render(s->col_type, d, &from_bytea);
	if (s->tenant)
	{
		bool		tnull;
		Datum		t = heap_getattr(tup, s->tenant, desc, &tnull);

		if (!tnull)
			tenant = OutputFunctionCall(&s->tenant_out, t);
	}
	aad = adopt_aad_eval(&s->aad, tup);
	key = tenant ? keyring_for_tenant(tenant, s->key, (int) strlen(s->key))
		: keyring_active_of(NULL, s->key, (int) strlen(s->key));
	return PointerGetDatum(crypto_seal(key, from_bytea, aad, pt));
}

PG_FUNCTION_INFO_V1(phi_guard_column_migration_sync);

/*
 * BEFORE INSERT OR UPDATE FOR EACH ROW trigger that phi_encrypt_column
 * installs for the time of a migration, with arguments (column, new
 * column, key, tenant column or '', aad expression or ''): the new
 * phi_ciphertext column of every written row is the encryption of its
 * plaintext column, so concurrent writers need nothing but their usual
 * statements.  Its parameters are compiled once per statement (fn_extra).
 */
Datum
phi_guard_column_migration_sync(PG_FUNCTION_ARGS)
{
	TriggerData *trig = (TriggerData *) fcinfo->context;
	AdoptSpec  *s;
	HeapTuple	tup;
	Datum		value;
	bool		isnull;
	int			shadow;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BEFORE(trig->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trig->tg_event) || TRIGGER_FIRED_BY_DELETE(trig->tg_event) ||
		trig->tg_trigger->tgnargs != 5)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("phi_guard.column_migration_sync must be a BEFORE INSERT OR UPDATE ... FOR EACH ROW trigger of phi_encrypt_column")));
	s = (AdoptSpec *) fcinfo->flinfo->fn_extra;
	if (s == NULL)
	{
		char	  **a = trig->tg_trigger->tgargs;
		MemoryContext old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);

		s = palloc(sizeof(AdoptSpec));
		adopt_spec_build(s, trig->tg_relation, a[0], a[1], a[2],
						 a[3][0] ? a[3] : NULL, a[4][0] ? a[4] : NULL);
		MemoryContextSwitchTo(old);
		fcinfo->flinfo->fn_extra = s;
	}
	tup = TRIGGER_FIRED_BY_UPDATE(trig->tg_event) ? trig->tg_newtuple : trig->tg_trigtuple;
	value = encrypt_row(s, RelationGetDescr(trig->tg_relation), tup, &isnull);
	shadow = s->shadow;
	return PointerGetDatum(heap_modify_tuple_by_cols(tup, RelationGetDescr(trig->tg_relation),
													 1, &shadow, &value, &isnull));
}
