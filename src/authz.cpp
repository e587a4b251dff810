/*
 * authz.cpp — authorization changes, recorded in the transaction that makes
 * them.
 *
 * A ProcessUtility hook (chained, as pgaudit chains it) sees every GRANT and
 * REVOKE of a privilege, ALTER DEFAULT PRIVILEGES, CREATE / ALTER / DROP
 * ROLE, GRANT and REVOKE of role membership and SECURITY LABEL, whether sent
 * by a client or run inside a function.  After the command has succeeded it
 * queues entries with sa_record_setup_values(), so they enter a chain when
 * the transaction commits and vanish with it (or with a savepoint) when it
 * rolls back, exactly as captured changes do.
 *
 * Changes of ownership are recorded too, as ALTER OWNER entries: an owner
 * holds every privilege on its object and may grant them, so giving a table
 * to another role is as much a grant as GRANT ALL.  They are seen by the
 * object access hook rather than by command: every path that gives an
 * object a new owner (ALTER ... OWNER TO of any kind of object, REASSIGN
 * OWNED, the sequences a table owns that follow it) runs the post-alter
 * hook, which compares the owner before and after and records only what
 * really changed, one entry per object, once the log has begun (a restore
 * gives objects their owners before it loads the log).
 *
 * Where things go: the object in table_schema / table_name / column_name
 * (a function's name carries its argument types), the rest as JSON text in
 * new_value; an ALTER OWNER entry has the owner it replaced in old_value.
 * A role attribute is named, never its value when that is a secret: a
 * password is "set", "changed" or "removed", never shown, not even hashed;
 * the statement's text is never recorded.
 *
 * Roles belong to the whole cluster, but an entry belongs to one database's
 * log: a role change is recorded in the database where the command ran, if
 * the extension is installed there.  Commands in a database without the
 * extension, and the extension's own install and update scripts, record
 * nothing.  The hooks are installed whenever the library is loaded; preload
 * it (shared_preload_libraries) so that every session has them.
 */
#include "sensitive_audit.hpp"

extern "C" {
#include "catalog/objectaccess.h"
#include "catalog/pg_largeobject.h"
#include "catalog/pg_largeobject_metadata.h"
#include "commands/dbcommands.h"
#include "commands/defrem.h"
#include "parser/parse_type.h"
}

namespace {

ProcessUtility_hook_type prev_utility_hook = nullptr;
object_access_hook_type prev_object_access_hook = nullptr;

/* Inside REASSIGN OWNED: its ALTER OWNER entries say so. */
int			reassigning = 0;

/* Is the extension installed in this database (and are we not its script)? */
bool
recording(void)
{
	if (!IsTransactionState() || sa_in_own_setup())
		return false;
	return OidIsValid(get_extension_oid("sensitive_audit", true))
		&& OidIsValid(sa_audit_relid(SA_ENTRIES));
}

/* ------------------------------------------------------------------------
 * JSON text, built in a fixed key order.
 */
struct Json
{
	StringInfoData buf;
	bool		first;
};

void
json_begin(Json *j)
{
	initStringInfo(&j->buf);
	appendStringInfoChar(&j->buf, '{');
	j->first = true;
}

void
json_key(Json *j, const char *key)
{
	if (!j->first)
		appendStringInfoString(&j->buf, ", ");
	j->first = false;
	escape_json(&j->buf, key);
	appendStringInfoString(&j->buf, ": ");
}

void
json_str(Json *j, const char *key, const char *value)
{
	json_key(j, key);
	if (value == nullptr)
		appendStringInfoString(&j->buf, "null");
	else
		escape_json(&j->buf, value);
}

void
json_bool(Json *j, const char *key, bool value)
{
	json_key(j, key);
	appendStringInfoString(&j->buf, value ? "true" : "false");
}

void
json_int(Json *j, const char *key, long value)
{
	json_key(j, key);
	appendStringInfo(&j->buf, "%ld", value);
}

/* A list of C strings as a JSON array. */
void
json_strs(Json *j, const char *key, List *values)
{
	ListCell   *lc;
	bool		first = true;

	json_key(j, key);
	appendStringInfoChar(&j->buf, '[');
	foreach(lc, values)
	{
		if (!first)
			appendStringInfoString(&j->buf, ", ");
		first = false;
		escape_json(&j->buf, (const char *) lfirst(lc));
	}
	appendStringInfoChar(&j->buf, ']');
}

char *
json_end(Json *j)
{
	appendStringInfoChar(&j->buf, '}');
	return j->buf.data;
}

/* ------------------------------------------------------------------------
 * Names.
 */

/* A role as written in a command: PUBLIC, or the name it resolves to. */
const char *
role_name(const RoleSpec *r)
{
	if (r == nullptr)
		return nullptr;
	if (r->roletype == ROLESPEC_PUBLIC)
		return "PUBLIC";
	if (r->roletype == ROLESPEC_CSTRING)
		return r->rolename;
	return get_rolespec_name(r);
}

List *
role_names(List *specs)
{
	List	   *out = NIL;
	ListCell   *lc;

	foreach(lc, specs)
		out = lappend(out, (void *) role_name(lfirst_node(RoleSpec, lc)));
	return out;
}

const char *
upper(const char *s)
{
	char	   *u = pstrdup(s);

	for (char *p = u; *p; p++)
		*p = (char) pg_toupper((unsigned char) *p);
	return u;
}

/* The privileges of a GRANT that apply to column (NULL: to the whole object). */
List *
privileges_for(List *privileges, const char *column)
{
	List	   *out = NIL;
	ListCell   *lc;

	if (privileges == NIL)
		return list_make1((void *) "ALL");
	foreach(lc, privileges)
	{
		AccessPriv *p = lfirst_node(AccessPriv, lc);
		bool		applies = false;

		if (column == nullptr)
			applies = p->cols == NIL;
		else
		{
			ListCell   *c;

			foreach(c, p->cols)
				applies |= strcmp(strVal(lfirst(c)), column) == 0;
		}
		if (applies)
			out = lappend(out, (void *) upper(p->priv_name ? p->priv_name : "ALL"));
	}
	return out;
}

const char *
object_type_word(ObjectType t)
{
	switch (t)
	{
		case OBJECT_TABLE:
			return "table";
		case OBJECT_SEQUENCE:
			return "sequence";
		case OBJECT_DATABASE:
			return "database";
		case OBJECT_DOMAIN:
			return "domain";
		case OBJECT_FDW:
			return "foreign-data wrapper";
		case OBJECT_FOREIGN_SERVER:
			return "foreign server";
		case OBJECT_FUNCTION:
			return "function";
		case OBJECT_PROCEDURE:
			return "procedure";
		case OBJECT_ROUTINE:
			return "routine";
		case OBJECT_LANGUAGE:
			return "language";
		case OBJECT_LARGEOBJECT:
			return "large object";
		case OBJECT_SCHEMA:
			return "schema";
		case OBJECT_TABLESPACE:
			return "tablespace";
		case OBJECT_TYPE:
			return "type";
		case OBJECT_PARAMETER_ACL:
			return "parameter";
		default:
			return "object";
	}
}

/* Where an object is named in an entry. */
struct ObjectName
{
	const char *schema;
	const char *name;
};

/* A function's name and argument types: "f(integer, text)". */
ObjectName
routine_name(Oid funcid)
{
	ObjectName	out = {nullptr, nullptr};
	HeapTuple	tuple = SearchSysCache1(PROCOID, ObjectIdGetDatum(funcid));
	StringInfoData buf;

	if (!HeapTupleIsValid(tuple))
		return out;

	Form_pg_proc p = (Form_pg_proc) GETSTRUCT(tuple);

	initStringInfo(&buf);
	appendStringInfo(&buf, "%s(", NameStr(p->proname));
	for (int i = 0; i < p->pronargs; i++)
		appendStringInfo(&buf, "%s%s", i ? ", " : "", format_type_be(p->proargtypes.values[i]));
	appendStringInfoChar(&buf, ')');
	out.schema = get_namespace_name(p->pronamespace);
	out.name = buf.data;
	ReleaseSysCache(tuple);
	return out;
}

/* The object one element of GrantStmt.objects names, after the command ran. */
ObjectName
grant_object(const GrantStmt *stmt, Node *obj)
{
	ObjectName	out = {nullptr, nullptr};

	if (stmt->targtype == ACL_TARGET_ALL_IN_SCHEMA)
	{
		out.schema = strVal(obj);
		return out;
	}
	switch (stmt->objtype)
	{
		case OBJECT_TABLE:
		case OBJECT_SEQUENCE:
			{
				RangeVar   *rv = (RangeVar *) obj;
				Oid			relid = RangeVarGetRelid(rv, NoLock, true);

				if (OidIsValid(relid))
				{
					out.schema = get_namespace_name(get_rel_namespace(relid));
					out.name = get_rel_name(relid);
				}
				else
				{
					out.schema = rv->schemaname;
					out.name = rv->relname;
				}
				break;
			}
		case OBJECT_FUNCTION:
		case OBJECT_PROCEDURE:
		case OBJECT_ROUTINE:
			{
				Oid			funcid = LookupFuncWithArgs(stmt->objtype, (ObjectWithArgs *) obj, true);

				if (OidIsValid(funcid))
					out = routine_name(funcid);
				else
					out.name = NameListToString(((ObjectWithArgs *) obj)->objname);
				break;
			}
		case OBJECT_TYPE:
		case OBJECT_DOMAIN:
			{
				TypeName   *tn = makeTypeNameFromNameList((List *) obj);
				Oid			typid = LookupTypeNameOid(nullptr, tn, true);

				HeapTuple	tuple = OidIsValid(typid)
					? SearchSysCache1(TYPEOID, ObjectIdGetDatum(typid)) : nullptr;

				if (HeapTupleIsValid(tuple))
				{
					Form_pg_type t = (Form_pg_type) GETSTRUCT(tuple);

					out.schema = get_namespace_name(t->typnamespace);
					out.name = pstrdup(NameStr(t->typname));
					ReleaseSysCache(tuple);
				}
				else
					out.name = NameListToString((List *) obj);
				break;
			}
		case OBJECT_SCHEMA:
			out.schema = strVal(obj);
			break;
		case OBJECT_LARGEOBJECT:
			if (IsA(obj, Integer))
				out.name = psprintf("%d", intVal(obj));
			else
				out.name = pstrdup(castNode(Float, obj)->fval);
			break;
		default:
			/* database, tablespace, language, foreign-data wrapper, server, parameter */
			out.name = strVal(obj);
			break;
	}
	return out;
}

/* ------------------------------------------------------------------------
 * What each command records.
 */

void
record_grant(const GrantStmt *stmt)
{
	const char *op = stmt->is_grant ? "GRANT" : "REVOKE";
	List	   *grantees = role_names(stmt->grantees);
	List	   *columns = NIL;
	ListCell   *lc;

	/* the columns named, in the order first named */
	foreach(lc, stmt->privileges)
	{
		ListCell   *c;

		foreach(c, lfirst_node(AccessPriv, lc)->cols)
		{
			const char *col = strVal(lfirst(c));
			bool		seen = false;
			ListCell   *s;

			foreach(s, columns)
				seen |= strcmp((const char *) lfirst(s), col) == 0;
			if (!seen)
				columns = lappend(columns, (void *) col);
		}
	}

	foreach(lc, stmt->objects)
	{
		ObjectName	obj = grant_object(stmt, (Node *) lfirst(lc));
		int			nparts = list_length(columns) + 1;

		for (int part = 0; part < nparts; part++)
		{
			const char *column = part == 0 ? nullptr : (const char *) list_nth(columns, part - 1);
			List	   *privs = privileges_for(stmt->privileges, column);
			Json		j;

			if (privs == NIL)
				continue;		/* only column privileges: no whole-object entry */
			json_begin(&j);
			json_str(&j, "object_type", column ? "column" : object_type_word(stmt->objtype));
			if (stmt->targtype == ACL_TARGET_ALL_IN_SCHEMA)
				json_bool(&j, "all_in_schema", true);
			json_strs(&j, "privileges", privs);
			json_strs(&j, "grantees", grantees);
			json_bool(&j, "grant_option", stmt->grant_option);
			if (stmt->grantor)
				json_str(&j, "granted_by", role_name(stmt->grantor));
			if (!stmt->is_grant)
				json_bool(&j, "cascade", stmt->behavior == DROP_CASCADE);
			sa_record_setup_values(op, obj.schema, obj.name, column, nullptr, nullptr, json_end(&j));
		}
	}
}

void
record_default_privileges(const AlterDefaultPrivilegesStmt *stmt)
{
	const GrantStmt *action = stmt->action;
	List	   *schemas = NIL;
	List	   *for_roles = NIL;
	ListCell   *lc;

	foreach(lc, stmt->options)
	{
		DefElem    *d = lfirst_node(DefElem, lc);
		ListCell   *c;

		if (strcmp(d->defname, "schemas") == 0)
			foreach(c, (List *) d->arg)
				schemas = lappend(schemas, strVal(lfirst(c)));
		else if (strcmp(d->defname, "roles") == 0)
			for_roles = role_names((List *) d->arg);
	}
	if (for_roles == NIL)
		for_roles = list_make1(GetUserNameFromId(GetUserId(), false));

	int			n = Max(list_length(schemas), 1);

	for (int i = 0; i < n; i++)
	{
		Json		j;

		json_begin(&j);
		json_str(&j, "action", action->is_grant ? "GRANT" : "REVOKE");
		json_str(&j, "object_type", object_type_word(action->objtype));
		json_strs(&j, "privileges", privileges_for(action->privileges, nullptr));
		json_strs(&j, "grantees", role_names(action->grantees));
		json_bool(&j, "grant_option", action->grant_option);
		json_strs(&j, "for_roles", for_roles);
		sa_record_setup_values("ALTER DEFAULT PRIVILEGES",
							   schemas ? (const char *) list_nth(schemas, i) : nullptr,
							   nullptr, nullptr, nullptr, nullptr, json_end(&j));
	}
}

/*
 * A role's options as JSON members: attributes by name, a password only as
 * "set"/"changed"/"removed".
 */
void
role_options(Json *j, List *options, bool creating)
{
	ListCell   *lc;

	foreach(lc, options)
	{
		DefElem    *d = lfirst_node(DefElem, lc);
		const char *n = d->defname;

		if (strcmp(n, "password") == 0)
			json_str(j, "password", d->arg == nullptr ? "removed" : (creating ? "set" : "changed"));
		else if (strcmp(n, "canlogin") == 0)
			json_bool(j, "login", defGetBoolean(d));
		else if (strcmp(n, "isreplication") == 0)
			json_bool(j, "replication", defGetBoolean(d));
		else if (strcmp(n, "superuser") == 0 || strcmp(n, "createdb") == 0
				 || strcmp(n, "createrole") == 0 || strcmp(n, "inherit") == 0
				 || strcmp(n, "bypassrls") == 0)
			json_bool(j, n, defGetBoolean(d));
		else if (strcmp(n, "connectionlimit") == 0)
			json_int(j, "connection_limit", (long) intVal(d->arg));
		else if (strcmp(n, "validUntil") == 0)
			json_str(j, "valid_until", strVal(d->arg));
		else if (strcmp(n, "addroleto") == 0)
			json_strs(j, "in_roles", role_names((List *) d->arg));
		else if (strcmp(n, "rolemembers") == 0)
			json_strs(j, "members", role_names((List *) d->arg));
		else if (strcmp(n, "adminmembers") == 0)
			json_strs(j, "admin_members", role_names((List *) d->arg));
		else if (strcmp(n, "sysid") == 0)
			continue;
		else
			json_bool(j, n, true);
	}
}

void
record_role_membership(bool grant, const char *role, const char *member, bool admin,
					   const char *grantor)
{
	Json		j;

	json_begin(&j);
	json_str(&j, "role", role);
	json_str(&j, "member", member);
	json_bool(&j, "admin_option", admin);
	if (grantor)
		json_str(&j, "granted_by", grantor);
	sa_record_setup_values(grant ? "GRANT ROLE" : "REVOKE ROLE", nullptr, nullptr, nullptr,
						   nullptr, nullptr, json_end(&j));
}

void
record_create_role(const CreateRoleStmt *stmt)
{
	Json		j;

	json_begin(&j);
	json_str(&j, "role", stmt->role);
	role_options(&j, stmt->options, true);
	sa_record_setup_values("CREATE ROLE", nullptr, nullptr, nullptr, nullptr, nullptr, json_end(&j));
}

void
record_alter_role(const AlterRoleStmt *stmt)
{
	const char *role = role_name(stmt->role);

	/* ALTER GROUP g ADD|DROP USER u: a change of membership */
	if (list_length(stmt->options) == 1
		&& strcmp(linitial_node(DefElem, stmt->options)->defname, "rolemembers") == 0
		&& stmt->action != 0)
	{
		ListCell   *lc;

		foreach(lc, (List *) linitial_node(DefElem, stmt->options)->arg)
			record_role_membership(stmt->action > 0, role, role_name(lfirst_node(RoleSpec, lc)),
								   false, nullptr);
		return;
	}

	Json		j;

	json_begin(&j);
	json_str(&j, "role", role);
	role_options(&j, stmt->options, false);
	sa_record_setup_values("ALTER ROLE", nullptr, nullptr, nullptr, nullptr, nullptr, json_end(&j));
}

void
record_alter_role_set(const AlterRoleSetStmt *stmt)
{
	Json		j;

	json_begin(&j);
	json_str(&j, "role", stmt->role ? role_name(stmt->role) : "ALL");
	if (stmt->database)
		json_str(&j, "database", stmt->database);
	if (stmt->setstmt->kind == VAR_RESET_ALL)
		json_str(&j, "reset", "ALL");
	else if (stmt->setstmt->kind == VAR_RESET)
		json_str(&j, "reset", stmt->setstmt->name);
	else
		json_str(&j, "set", stmt->setstmt->name);
	sa_record_setup_values("ALTER ROLE", nullptr, nullptr, nullptr, nullptr, nullptr, json_end(&j));
}

void
record_rename_role(const RenameStmt *stmt)
{
	Json		j;

	json_begin(&j);
	json_str(&j, "role", stmt->newname);
	json_str(&j, "renamed_from", stmt->subname);
	sa_record_setup_values("ALTER ROLE", nullptr, nullptr, nullptr, nullptr, nullptr, json_end(&j));
}

void
record_drop_roles(List *dropped)
{
	ListCell   *lc;

	foreach(lc, dropped)
	{
		Json		j;

		json_begin(&j);
		json_str(&j, "role", (const char *) lfirst(lc));
		sa_record_setup_values("DROP ROLE", nullptr, nullptr, nullptr, nullptr, nullptr, json_end(&j));
	}
}

void
record_grant_role(const GrantRoleStmt *stmt)
{
	ListCell   *g;
	ListCell   *m;
	const char *grantor = stmt->grantor ? role_name(stmt->grantor) : nullptr;

	foreach(g, stmt->granted_roles)
		foreach(m, stmt->grantee_roles)
			record_role_membership(stmt->is_grant, lfirst_node(AccessPriv, g)->priv_name,
								   role_name(lfirst_node(RoleSpec, m)), stmt->admin_opt, grantor);
}

void
record_security_label(const SecLabelStmt *stmt)
{
	Relation	rel = nullptr;
	ObjectAddress addr = get_object_address(stmt->objtype, stmt->object, &rel, AccessShareLock, true);
	const char *schema = nullptr;
	const char *name = nullptr;
	const char *column = nullptr;
	const char *type = nullptr;

	if (rel != nullptr)
		relation_close(rel, NoLock);
	if (OidIsValid(addr.objectId))
	{
		List	   *names = NIL;
		List	   *args = NIL;

		type = getObjectTypeDescription(&addr, true);
		(void) getObjectIdentityParts(&addr, &names, &args, true);
		if (stmt->objtype == OBJECT_FUNCTION || stmt->objtype == OBJECT_PROCEDURE
			|| stmt->objtype == OBJECT_ROUTINE || stmt->objtype == OBJECT_AGGREGATE)
		{
			ObjectName	r = routine_name(addr.objectId);

			schema = r.schema;
			name = r.name;
		}
		else if (stmt->objtype == OBJECT_SCHEMA)
			schema = names ? (const char *) linitial(names) : nullptr;
		else if (list_length(names) == 3)
		{
			schema = (const char *) linitial(names);
			name = (const char *) lsecond(names);
			column = (const char *) lthird(names);
		}
		else if (list_length(names) == 2)
		{
			schema = (const char *) linitial(names);
			name = (const char *) lsecond(names);
		}
		else if (list_length(names) == 1)
			name = (const char *) linitial(names);
	}

	Json		j;

	json_begin(&j);
	json_str(&j, "object_type", type);
	json_str(&j, "provider", stmt->provider);
	json_str(&j, "label", stmt->label);
	sa_record_setup_values("SECURITY LABEL", schema, name, column, nullptr, nullptr, json_end(&j));
}

/* DROP OWNED BY also revokes every privilege granted to the roles. */
void
record_drop_owned(const DropOwnedStmt *stmt)
{
	Json		j;

	json_begin(&j);
	json_str(&j, "object_type", "all");
	json_strs(&j, "privileges", list_make1((void *) "ALL"));
	json_strs(&j, "grantees", role_names(stmt->roles));
	json_bool(&j, "drop_owned", true);
	json_bool(&j, "cascade", stmt->behavior == DROP_CASCADE);
	sa_record_setup_values("REVOKE", nullptr, nullptr, nullptr, nullptr, nullptr, json_end(&j));
}

/* ------------------------------------------------------------------------
 * Changes of ownership.
 *
 * PostgreSQL runs the post-alter hook just after it has written an altered
 * catalog row and before the command counter moves on, so that the catalog
 * snapshot still shows the row as it was and SnapshotSelf shows it as it
 * now is (catalog/objectaccess.h; contrib/sepgsql reads relations both ways
 * too).  Reading the owner both ways tells whether this alteration changed
 * it, whatever command did it, so nothing depends on knowing which
 * commands change owners or what each carries along.
 */

/* The catalog that holds objects of classId: a large object's owner is in its metadata. */
Oid
owner_catalog(Oid classId)
{
	return classId == LargeObjectRelationId ? LargeObjectMetadataRelationId : classId;
}

/*
 * The owner of objectId in catalog, as the catalog snapshot shows it
 * (before this command's change) or, with self, as this command left it.
 * False if that row is not there (an object made by this very command).
 */
bool
read_owner(Relation catalog, Oid objectId, bool self, Oid *owner)
{
	Oid			catalogId = RelationGetRelid(catalog);
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tuple;
	bool		found = false;

	ScanKeyInit(&key, get_object_attnum_oid(catalogId), BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(objectId));
	scan = systable_beginscan(catalog, get_object_oid_index(catalogId), true,
							  self ? SnapshotSelf : nullptr, 1, &key);
	tuple = systable_getnext(scan);
	if (HeapTupleIsValid(tuple))
	{
		bool		isnull;
		Datum		d = heap_getattr(tuple, get_object_attnum_owner(catalogId),
									 RelationGetDescr(catalog), &isnull);

		if (!isnull)
		{
			*owner = DatumGetObjectId(d);
			found = true;
		}
	}
	systable_endscan(scan);
	return found;
}

/*
 * Does the object carry privileges of its own?  An index, a TOAST table, a
 * table's row type, an array or multirange type and the pg_class row of a
 * composite type change owner with the object they belong to, which has its
 * own entry; they hold no privilege anyone could use.
 */
bool
owner_of_its_own(Oid classId, Oid objectId)
{
	if (classId == RelationRelationId)
	{
		switch (get_rel_relkind(objectId))
		{
			case RELKIND_RELATION:
			case RELKIND_PARTITIONED_TABLE:
			case RELKIND_VIEW:
			case RELKIND_MATVIEW:
			case RELKIND_FOREIGN_TABLE:
			case RELKIND_SEQUENCE:
				return true;
			default:
				return false;
		}
	}
	if (classId == TypeRelationId)
	{
		HeapTuple	tuple = SearchSysCache1(TYPEOID, ObjectIdGetDatum(objectId));
		bool		own = false;

		if (HeapTupleIsValid(tuple))
		{
			Form_pg_type t = (Form_pg_type) GETSTRUCT(tuple);

			own = !IsTrueArrayType(t) && t->typtype != TYPTYPE_MULTIRANGE
				&& (!OidIsValid(t->typrelid) || get_rel_relkind(t->typrelid) == RELKIND_COMPOSITE_TYPE);
			ReleaseSysCache(tuple);
		}
		return own;
	}
	return true;
}

/*
 * Where an owned object is named: as GRANT names it (a relation or a type
 * by schema and name, a routine with its argument types, a schema in
 * table_schema alone, a database, a large object and other objects outside
 * schemas in table_name), an operator with its operand types.
 */
ObjectName
owned_object_name(const ObjectAddress *addr)
{
	ObjectName	out = {nullptr, nullptr};

	switch (addr->classId)
	{
		case RelationRelationId:
			out.schema = get_namespace_name(get_rel_namespace(addr->objectId));
			out.name = get_rel_name(addr->objectId);
			return out;
		case ProcedureRelationId:
			return routine_name(addr->objectId);
		case NamespaceRelationId:
			out.schema = get_namespace_name(addr->objectId);
			return out;
		case TypeRelationId:
			{
				HeapTuple	tuple = SearchSysCache1(TYPEOID, ObjectIdGetDatum(addr->objectId));

				if (HeapTupleIsValid(tuple))
				{
					Form_pg_type t = (Form_pg_type) GETSTRUCT(tuple);

					out.schema = get_namespace_name(t->typnamespace);
					out.name = pstrdup(NameStr(t->typname));
					ReleaseSysCache(tuple);
					return out;
				}
				break;
			}
		default:
			break;
	}

	List	   *names = NIL;
	List	   *args = NIL;
	char	   *identity = getObjectIdentityParts(addr, &names, &args, true);
	/* a large object is known by pg_largeobject, its properties by its metadata's catalog */
	Oid			nsp = is_objectclass_supported(addr->classId) ? get_object_namespace(addr) : InvalidOid;

	if (OidIsValid(nsp))
		out.schema = get_namespace_name(nsp);
	if (names == NIL)
	{
		out.name = identity;
		return out;
	}

	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	appendStringInfoString(&buf, (const char *) llast(names));
	if (args != NIL)
	{
		appendStringInfoChar(&buf, '(');
		foreach(lc, args)
			appendStringInfo(&buf, "%s%s", foreach_current_index(lc) ? ", " : "",
							 (const char *) lfirst(lc));
		appendStringInfoChar(&buf, ')');
	}
	out.name = buf.data;
	return out;
}

/* What kind of object it is, in the words of PostgreSQL's object descriptions. */
const char *
owned_object_kind(const ObjectAddress *addr)
{
	if (addr->classId == TypeRelationId && get_typtype(addr->objectId) == TYPTYPE_DOMAIN)
		return "domain";
	return getObjectTypeDescription(addr, true);
}

/*
 * Has the log begun: does it hold an entry, or will this transaction add one?
 * A dump's script gives each object it creates its owner (ALTER ... OWNER
 * TO) before it loads the log, and the log loads only while it is empty, so
 * owner changes are recorded from the log's first entry on: ownership as it
 * stood then is where the history starts, as rows that predate tagging are.
 */
bool
log_has_begun(void)
{
	if (sa_pending_any())
		return true;

	Relation	entries = table_open(sa_audit_relid(SA_ENTRIES), AccessShareLock);
	bool		any = sa_has_rows(entries);

	table_close(entries, AccessShareLock);
	return any;
}

/*
 * After an object was altered: if its owner changed, an ALTER OWNER entry,
 * the owner it had in old_value, the one it has now in new_value.  The entry
 * is queued with the transaction's others, so it goes with it, or with the
 * savepoint, if that rolls back.
 */
void
record_owner_change(Oid classId, Oid objectId)
{
	Oid			catalogId = owner_catalog(classId);
	Oid			before;
	Oid			after;

	if (!IsTransactionState() || !is_objectclass_supported(catalogId)
		|| get_object_attnum_owner(catalogId) == InvalidAttrNumber)
		return;

	Relation	catalog = table_open(catalogId, AccessShareLock);
	bool		changed = read_owner(catalog, objectId, false, &before)
		&& read_owner(catalog, objectId, true, &after)
		&& before != after;

	table_close(catalog, AccessShareLock);
	if (!changed || !owner_of_its_own(classId, objectId) || !recording() || !log_has_begun())
		return;

	ObjectAddress addr = {classId, objectId, 0};
	ObjectName	obj = owned_object_name(&addr);
	Json		was;
	Json		now;

	json_begin(&was);
	json_str(&was, "owner", GetUserNameFromId(before, false));
	json_begin(&now);
	json_str(&now, "object_type", owned_object_kind(&addr));
	json_str(&now, "owner", GetUserNameFromId(after, false));
	if (reassigning > 0)
		json_bool(&now, "reassign_owned", true);
	sa_record_setup_values("ALTER OWNER", obj.schema, obj.name, nullptr, nullptr,
						   json_end(&was), json_end(&now));
}

void
authz_object_access(ObjectAccessType access, Oid classId, Oid objectId, int subId, void *arg)
{
	if (prev_object_access_hook)
		prev_object_access_hook(access, classId, objectId, subId, arg);

	/* an owner belongs to the whole object: subId (a column) is 0 */
	if (access == OAT_POST_ALTER && subId == 0)
		record_owner_change(classId, objectId);
}

/* Is this a command whose effect is recorded? */
bool
is_authorization(Node *n)
{
	switch (nodeTag(n))
	{
		case T_GrantStmt:
		case T_GrantRoleStmt:
		case T_AlterDefaultPrivilegesStmt:
		case T_CreateRoleStmt:
		case T_AlterRoleStmt:
		case T_AlterRoleSetStmt:
		case T_DropRoleStmt:
		case T_SecLabelStmt:
		case T_DropOwnedStmt:
			return true;
		case T_RenameStmt:
			return ((RenameStmt *) n)->renameType == OBJECT_ROLE;
		default:
			return false;
	}
}

void
run_utility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
			ProcessUtilityContext context, ParamListInfo params, QueryEnvironment *queryEnv,
			DestReceiver *dest, QueryCompletion *qc)
{
	if (prev_utility_hook)
		prev_utility_hook(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
}

/*
 * REASSIGN OWNED: its ALTER OWNER entries, one per object it gives away,
 * come from the object access hook and say that REASSIGN OWNED made them.
 */
void
run_reassign_owned(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
				   ProcessUtilityContext context, ParamListInfo params, QueryEnvironment *queryEnv,
				   DestReceiver *dest, QueryCompletion *qc)
{
	reassigning++;
	PG_TRY();
	{
		run_utility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
	}
	PG_FINALLY();
	{
		reassigning--;
	}
	PG_END_TRY();
}

void
authz_utility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
			  ProcessUtilityContext context, ParamListInfo params, QueryEnvironment *queryEnv,
			  DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *n = pstmt->utilityStmt;
	bool		watch = is_authorization(n);
	List	   *dropped = NIL;

	/* DROP ROLE IF EXISTS: which of them exist, before they are gone */
	if (watch && IsA(n, DropRoleStmt))
	{
		ListCell   *lc;

		foreach(lc, ((DropRoleStmt *) n)->roles)
		{
			RoleSpec   *r = lfirst_node(RoleSpec, lc);

			if (r->roletype == ROLESPEC_CSTRING && OidIsValid(get_role_oid(r->rolename, true)))
				dropped = lappend(dropped, pstrdup(r->rolename));
		}
	}

	if (IsA(n, ReassignOwnedStmt))
		run_reassign_owned(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
	else
		run_utility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);

	if (!watch || !recording())
		return;

	switch (nodeTag(n))
	{
		case T_GrantStmt:
			record_grant((GrantStmt *) n);
			break;
		case T_AlterDefaultPrivilegesStmt:
			record_default_privileges((AlterDefaultPrivilegesStmt *) n);
			break;
		case T_CreateRoleStmt:
			record_create_role((CreateRoleStmt *) n);
			break;
		case T_AlterRoleStmt:
			record_alter_role((AlterRoleStmt *) n);
			break;
		case T_AlterRoleSetStmt:
			record_alter_role_set((AlterRoleSetStmt *) n);
			break;
		case T_RenameStmt:
			record_rename_role((RenameStmt *) n);
			break;
		case T_DropRoleStmt:
			record_drop_roles(dropped);
			break;
		case T_GrantRoleStmt:
			record_grant_role((GrantRoleStmt *) n);
			break;
		case T_SecLabelStmt:
			record_security_label((SecLabelStmt *) n);
			break;
		case T_DropOwnedStmt:
			record_drop_owned((DropOwnedStmt *) n);
			break;
		default:
			break;
	}
}

}							/* namespace */

void
sa_authz_init(void)
{
	prev_utility_hook = ProcessUtility_hook;
	ProcessUtility_hook = authz_utility;
	prev_object_access_hook = object_access_hook;
	object_access_hook = authz_object_access;
}
