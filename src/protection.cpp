/*
 * protection.cpp — sensitive values protected in the log (DESIGN.md,
 * "Sensitive values protected in the log"; docs/FORMAT.md, section 11).
 *
 * Per tagged column, sensitive_audit.protect_info says what an entry keeps
 * of a value; a column it does not list is plain (the canonical text,
 * format 1).  The other modes make format 2 entries, whose old_value and
 * new_value hold a protected form that the chain's hash commits to:
 *
 *   fingerprint  "hmac-sha256:<hex>" under the database's fingerprint key,
 *                made by the first protect(..., 'fingerprint') and readable
 *                by the extension's owner only; fingerprint() lets a
 *                granted role test a candidate value;
 *   encrypt      "x25519-aes256gcm:<base64>", sealed to the public key that
 *                set_encryption_key() set last; the private key never
 *                enters the database (`sensitive-audit decrypt` opens them);
 *   erasable     "sha256-salted:<hex>", a commitment to a random salt and
 *                the value, both kept in erasable_values (written in the
 *                same transaction as the change) until erase() empties
 *                them for one row key.
 *
 * The row key stays in clear text in every entry, so a column that is part
 * of its table's row key (or of a table without one, whose rows are known
 * by their tagged values) cannot be protected.
 *
 * Capture asks sa_protect_load() for a column's protection when it builds
 * a relation's info (capture.cpp), so a plain column costs one pointer
 * test.  protect() and set_encryption_key() invalidate the infos that carry
 * the old protection or key.
 */
#include "sensitive_audit.hpp"

extern "C" {
#include "catalog/pg_inherits.h"
#include "optimizer/optimizer.h"
#include "rewrite/rewriteHandler.h"
#include "utils/inval.h"
}

namespace {

enum ProtectMode
{
	MODE_PLAIN,
	MODE_FINGERPRINT,
	MODE_ENCRYPT,
	MODE_ERASABLE
};

const char *const mode_names[] = {"plain", "fingerprint", "encrypt", "erasable"};

/* Columns of protect_info, fingerprint_key and encryption_keys (attnum - 1). */
enum { PI_TBL, PI_COLUMN, PI_MODE, PI_SET_AT, PI_SET_BY, PI_FINGERPRINT_SALT };
enum { FK_SINGLETON, FK_KEY };
enum { EK_KEY_ID, EK_PUBLIC_KEY, EK_SET_AT, EK_SET_BY, EK_POSITION };
enum
{
	EV_COMMITMENT, EV_TABLE_SCHEMA, EV_TABLE_NAME, EV_ROW_KEY, EV_SALT, EV_VALUE, EV_ERASED_AT, EV_ERASED_BY,
	EV_TBL, EV_NATTS
};

/*
 * Sealers by recipient key id.  Each holds an ephemeral X25519 key and the
 * AEAD key derived from it (OpenSSL memory, not palloc'd), so the cache
 * lives as long as the backend; a few keys are ever in use at once.
 */
#define MAX_SEALERS 4
struct SealerSlot
{
	char		key_id[2 * SA_KEY_ID_LEN + 1];
	sa_sealer  *sealer;
};
SealerSlot	sealers[MAX_SEALERS];
int			next_sealer_victim = 0;

ProtectMode
parse_mode(const char *mode)
{
	for (int m = MODE_PLAIN; m <= MODE_ERASABLE; m++)
		if (strcmp(mode, mode_names[m]) == 0)
			return (ProtectMode) m;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unknown protection mode \"%s\"", mode),
			 errhint("The mode is 'plain', 'fingerprint', 'encrypt' or 'erasable'.")));
}

/*
 * Scan one of the audit schema's small tables below SQL with the latest
 * snapshot, calling fn for each tuple until it returns false.
 */
template <typename Fn>
void
scan_table(const char *name, Fn fn)
{
	Oid			relid = sa_audit_relid(name);

	if (!OidIsValid(relid))
		return;

	/* the extension may have been dropped since the name was looked up */
	Relation	rel = try_table_open(relid, AccessShareLock);

	if (rel == nullptr)
		return;

	Snapshot	snapshot = RegisterSnapshot(GetLatestSnapshot());
	TableScanDesc scan = table_beginscan(rel, snapshot, 0, nullptr);
	TupleDesc	desc = RelationGetDescr(rel);
	HeapTuple	tuple;

	while ((tuple = heap_getnext(scan, ForwardScanDirection)) != nullptr)
		if (!fn(tuple, desc))
			break;
	table_endscan(scan);
	UnregisterSnapshot(snapshot);
	table_close(rel, AccessShareLock);
}

/*
 * The stored protection of tbl.column (MODE_PLAIN when none), and into salt
 * (when given) the column's fingerprint salt; *has_salt says if it has one.
 */
ProtectMode
stored_mode(Oid tbl, const char *column, uint8_t *salt = nullptr, bool *has_salt = nullptr)
{
	ProtectMode mode = MODE_PLAIN;

	if (has_salt != nullptr)
		*has_salt = false;
	scan_table(SA_PROTECT_INFO, [&](HeapTuple tuple, TupleDesc desc) {
		bool		isnull;
		Datum		d = heap_getattr(tuple, PI_TBL + 1, desc, &isnull);

		if (isnull || DatumGetObjectId(d) != tbl)
			return true;
		d = heap_getattr(tuple, PI_COLUMN + 1, desc, &isnull);
		if (isnull || strcmp(NameStr(*DatumGetName(d)), column) != 0)
			return true;
		d = heap_getattr(tuple, PI_MODE + 1, desc, &isnull);
		if (!isnull)
		{
			char	   *m = TextDatumGetCString(d);

			for (int i = MODE_FINGERPRINT; i <= MODE_ERASABLE; i++)
				if (strcmp(m, mode_names[i]) == 0)
					mode = (ProtectMode) i;
		}
		d = heap_getattr(tuple, PI_FINGERPRINT_SALT + 1, desc, &isnull);
		if (!isnull && salt != nullptr && has_salt != nullptr)
		{
			bytea	   *b = DatumGetByteaPP(d);

			if (VARSIZE_ANY_EXHDR(b) == SA_COLUMN_SALT_LEN)
			{
				memcpy(salt, VARDATA_ANY(b), SA_COLUMN_SALT_LEN);
				*has_salt = true;
			}
		}
		return false;
	});
	return mode;
}


/* The database's fingerprint key into key; false if it has none yet. */
bool
read_fingerprint_key(uint8_t key[SA_PROTECT_KEY_LEN])
{
	bool		found = false;

	scan_table(SA_FINGERPRINT_KEY, [&](HeapTuple tuple, TupleDesc desc) {
		bool		isnull;
		Datum		d = heap_getattr(tuple, FK_KEY + 1, desc, &isnull);

		if (isnull)
			return true;

		bytea	   *b = DatumGetByteaPP(d);

		if (VARSIZE_ANY_EXHDR(b) != SA_PROTECT_KEY_LEN)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("sensitive_audit.fingerprint_key does not hold a %d-byte key", SA_PROTECT_KEY_LEN)));
		memcpy(key, VARDATA_ANY(b), SA_PROTECT_KEY_LEN);
		found = true;
		return false;
	});
	return found;
}

/*
 * The public key in use (the one set last: the highest position, which
 * set_encryption_key() counts up, whatever the clock says) into pub and
 * key_id; false if none was ever set.
 */
bool
read_encryption_key(uint8_t pub[SA_PROTECT_KEY_LEN], char key_id[2 * SA_KEY_ID_LEN + 1])
{
	bool		found = false;
	int64		latest = 0;
	char	   *pem = nullptr;
	char	   *stored_id = nullptr;

	scan_table(SA_ENCRYPTION_KEYS, [&](HeapTuple tuple, TupleDesc desc) {
		bool		isnull,
					pnull,
					inull;
		Datum		pos = heap_getattr(tuple, EK_POSITION + 1, desc, &isnull);
		Datum		p = heap_getattr(tuple, EK_PUBLIC_KEY + 1, desc, &pnull);
		Datum		id = heap_getattr(tuple, EK_KEY_ID + 1, desc, &inull);

		if (isnull || pnull || inull)
			return true;
		if (!found || DatumGetInt64(pos) > latest)
		{
			found = true;
			latest = DatumGetInt64(pos);
			pem = TextDatumGetCString(p);
			stored_id = TextDatumGetCString(id);
		}
		return true;
	});
	if (!found)
		return false;

	int			rc = sa_x25519_public_from_pem(pem, strlen(pem), pub, key_id);

	if (rc != SA_OK)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("the encryption key in sensitive_audit.encryption_keys cannot be used: %s",
						sa_strerror(rc))));
	if (strcmp(stored_id, key_id) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("the encryption key in sensitive_audit.encryption_keys is stored under key id %s, but its id is %s",
						stored_id, key_id)));
	return true;
}

sa_sealer  *
sealer_for(const uint8_t pub[SA_PROTECT_KEY_LEN], const char *key_id)
{
	for (int i = 0; i < MAX_SEALERS; i++)
		if (sealers[i].sealer != nullptr && strcmp(sealers[i].key_id, key_id) == 0)
			return sealers[i].sealer;

	sa_sealer  *s = sa_sealer_create(pub);

	if (s == nullptr)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not set up sealing to encryption key %s", key_id)));

	SealerSlot *slot = &sealers[next_sealer_victim];

	next_sealer_victim = (next_sealer_victim + 1) % MAX_SEALERS;
	if (slot->sealer != nullptr)
		sa_sealer_destroy(slot->sealer);
	slot->sealer = s;
	strlcpy(slot->key_id, key_id, sizeof(slot->key_id));
	return s;
}

char	   *
user_name(void)
{
	return GetUserNameFromId(GetUserId(), false);
}

void
record_protect(Oid tbl, const char *col, ProtectMode from, ProtectMode to)
{
	sa_record_setup_values("PROTECT", get_namespace_name(get_rel_namespace(tbl)), get_rel_name(tbl), col,
						   nullptr, mode_names[from], mode_names[to]);
}

/*
 * Does rel's row key show column attnum: is it one of the key's columns,
 * or is one of them generated from it?
 */
bool
key_shows(Relation rel, Bitmapset *keys, AttrNumber attnum)
{
	if (bms_is_member(attnum, keys))
		return true;

	int			k = -1;

	while ((k = bms_next_member(keys, k)) >= 0)
	{
		if (!TupleDescAttr(RelationGetDescr(rel), k - 1)->attgenerated)
			continue;

		Node	   *expr = build_column_default(rel, k);
		Bitmapset  *used = nullptr;

		if (expr == nullptr)
			continue;
		pull_varattnos(expr, 1, &used);
		if (bms_is_member(attnum - FirstLowInvalidHeapAttributeNumber, used))
			return true;
	}
	return false;
}

/*
 * A protected column must not show in clear in the row key: neither be one
 * of the key's columns (nor a key column be generated from it), nor belong
 * to a table (or partition) without a key, whose rows are known by their
 * tagged values.
 */
void
check_not_key(Oid tbl, const char *col)
{
	ListCell   *lc;

	foreach(lc, find_all_inheritors(tbl, AccessShareLock, nullptr))
	{
		Oid			member = lfirst_oid(lc);
		Relation	rel = table_open(member, NoLock);
		const char *source;
		Bitmapset  *keys = sa_key_attnums(rel, &source);
		AttrNumber	attnum = get_attnum(member, col);
		bool		shown = keys != nullptr && key_shows(rel, keys, attnum);

		table_close(rel, NoLock);
		if (keys == nullptr)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("cannot protect column \"%s\": \"%s\" has no primary key or replica identity",
							col, get_rel_name(member)),
					 errdetail("Its entries name each row by its tagged values, in clear text."),
					 errhint("Give the table a primary key first.")));
		if (shown)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot protect column \"%s\" of \"%s\": it is part of the row's %s, or a column of it is generated from it",
							col, get_rel_name(member), source),
					 errdetail("Every entry names its row by the row key, in clear text.")));
	}
}

}								/* namespace */

/*
 * tbl.column's fingerprint key, derived from the database's key and the
 * column's salt, into key; false if either is missing (a column never
 * fingerprinted has no salt).
 */
bool
sa_protect_column_key(Oid tbl, const char *column, uint8_t key[SA_PROTECT_KEY_LEN])
{
	uint8_t		salt[SA_COLUMN_SALT_LEN];
	uint8_t		dbkey[SA_PROTECT_KEY_LEN];
	bool		has_salt;

	(void) stored_mode(tbl, column, salt, &has_salt);
	if (!has_salt || !read_fingerprint_key(dbkey))
		return false;

	int			rc = sa_fingerprint_column_key(dbkey, salt, key);

	explicit_bzero(dbkey, sizeof(dbkey));
	if (rc != SA_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not derive a fingerprint key: %s", sa_strerror(rc))));
	return true;
}

/* A value's fingerprint under a column's key, palloc'd. */
char	   *
sa_protect_fingerprint(const uint8_t key[SA_PROTECT_KEY_LEN], const char *value, int len)
{
	char	   *out = (char *) palloc(SA_FINGERPRINT_TEXT_LEN + 1);

	if (sa_fingerprint_text(key, value, (size_t) len, out) != SA_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not compute a fingerprint")));
	return out;
}

/*
 * After a DDL command (enforce.cpp): no protected column of tagged table
 * root may have become part of member's row key.
 */
void
sa_protect_check_member(Oid root, Relation member)
{
	if (!OidIsValid(sa_audit_relid(SA_PROTECT_INFO)))
		return;

	const char *source;
	Bitmapset  *keys = sa_key_attnums(member, &source);
	ListCell   *lc;

	if (keys == nullptr)
		return;
	foreach(lc, sa_catalog_columns(root))
	{
		const char *col = (const char *) lfirst(lc);
		AttrNumber	attnum = get_attnum(RelationGetRelid(member), col);

		if (attnum != InvalidAttrNumber && key_shows(member, keys, attnum) && stored_mode(root, col) != MODE_PLAIN)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("protected column \"%s\" of \"%s\" cannot become part of the row's %s",
							col, RelationGetRelationName(member), source),
					 errdetail("Every entry names its row by the row key, in clear text."),
					 errhint("Make it plain first with sensitive_audit.protect('%s', '%s', 'plain'); that is recorded.",
							 get_rel_name(root), col)));
	}
}

namespace {

/* Make the database's fingerprint key if it has none (as the extension's owner). */
void
ensure_fingerprint_key(void)
{
	uint8_t		key[SA_PROTECT_KEY_LEN];

	if (read_fingerprint_key(key))
		return;
	if (sa_random_bytes(key, sizeof(key)) != SA_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not make a random fingerprint key")));

	bytea	   *b = (bytea *) palloc(VARHDRSZ + sizeof(key));

	SET_VARSIZE(b, VARHDRSZ + sizeof(key));
	memcpy(VARDATA(b), key, sizeof(key));

	Oid			argtypes[1] = {BYTEAOID};
	Datum		args[1] = {PointerGetDatum(b)};

	sa_run_sql_as_owner("INSERT INTO sensitive_audit.fingerprint_key (singleton, key, created_at) "
						"VALUES (true, $1, pg_catalog.statement_timestamp()) "
						"ON CONFLICT (singleton) DO NOTHING",
						1, argtypes, args);
	if (SPI_processed == 1)
	{
		/* a FINGERPRINT KEY entry names it: a key replaced later shows as another id */
		char		id[SA_FINGERPRINT_TEXT_LEN + 1];
		static const char label[] = "sensitive_audit key id";

		if (sa_fingerprint_text(key, label, sizeof(label) - 1, id) != SA_OK)
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("could not compute a key id")));
		sa_record_setup_values("FINGERPRINT KEY", nullptr, nullptr, nullptr, nullptr, nullptr,
							   psprintf("{\"key_id\": \"%.16s\"}", id + strlen(SA_FINGERPRINT_PREFIX)));
	}
	explicit_bzero(key, sizeof(key));
}

bytea	   *
to_bytea(const uint8_t *data, size_t len)
{
	bytea	   *b = (bytea *) palloc(VARHDRSZ + len);

	SET_VARSIZE(b, VARHDRSZ + len);
	memcpy(VARDATA(b), data, len);
	return b;
}

/*
 * One row of erasable_values, written below SQL as the log's entries are:
 * writers need no privilege on it, and a value costs one heap and two
 * index insertions rather than a statement.  Every column is given, so no
 * default or constraint of the table's is needed.
 */
void
keep_erasable(Oid relid, Oid captured, const uint8_t commitment[SA_DIGEST_LEN], const char *schema,
			  const char *table, const char *key, const uint8_t salt[SA_PROTECT_KEY_LEN], const char *value,
			  int len)
{
	Relation	rel = table_open(relid, RowExclusiveLock);
	Datum		values[EV_NATTS];
	bool		nulls[EV_NATTS];

	if (RelationGetDescr(rel)->natts != EV_NATTS)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("sensitive_audit.erasable_values does not have the columns of this version")));
	memset(nulls, 0, sizeof(nulls));
	values[EV_COMMITMENT] = PointerGetDatum(to_bytea(commitment, SA_DIGEST_LEN));
	values[EV_TABLE_SCHEMA] = CStringGetTextDatum(schema);
	values[EV_TABLE_NAME] = CStringGetTextDatum(table);
	if (key != nullptr)
		values[EV_ROW_KEY] = DirectFunctionCall1(jsonb_in, CStringGetDatum(key));
	else
		nulls[EV_ROW_KEY] = true;
	values[EV_SALT] = PointerGetDatum(to_bytea(salt, SA_PROTECT_KEY_LEN));
	values[EV_VALUE] = PointerGetDatum(cstring_to_text_with_len(value, len));
	nulls[EV_ERASED_AT] = true;
	nulls[EV_ERASED_BY] = true;
	values[EV_TBL] = ObjectIdGetDatum(captured);

	HeapTuple	tuple = heap_form_tuple(RelationGetDescr(rel), values, nulls);

	CatalogTupleInsert(rel, tuple);
	/* the salt is a secret until the value is erased: leave no copy behind */
	explicit_bzero(VARDATA(DatumGetPointer(values[EV_SALT])), SA_PROTECT_KEY_LEN);
	heap_freetuple(tuple);
	table_close(rel, RowExclusiveLock);
}

int
hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

}								/* namespace */

/*
 * The 32 bytes of a commitment's text form (len bytes at data, not
 * necessarily NUL-terminated) into out; false for any other text.
 */
bool
sa_protect_commitment_bytes(const char *data, size_t len, uint8_t out[SA_DIGEST_LEN])
{
	const size_t plen = strlen(SA_COMMITMENT_PREFIX);

	if (len != SA_COMMITMENT_TEXT_LEN || memcmp(data, SA_COMMITMENT_PREFIX, plen) != 0)
		return false;
	for (int i = 0; i < SA_DIGEST_LEN; i++)
	{
		int			hi = hex_digit(data[plen + 2 * i]);
		int			lo = hex_digit(data[plen + 2 * i + 1]);

		if (hi < 0 || lo < 0)
			return false;
		out[i] = (uint8_t) (hi << 4 | lo);
	}
	return true;
}

/* What capture keeps of one tagged column's values. */
struct SaProtect
{
	ProtectMode mode;
	uint8_t		key[SA_PROTECT_KEY_LEN];	/* fingerprint: the key; encrypt: the recipient */
	char		key_id[2 * SA_KEY_ID_LEN + 1];
	Oid			kept;			/* erasable: sensitive_audit.erasable_values */
};

/*
 * The protection of tbl's column, or nullptr for plain; palloc'd in the
 * current context (a relation info's).  A column to encrypt with no key
 * set, or to fingerprint with no key made, cannot be captured: refusing
 * the change is better than logging its value in clear.
 */
SaProtect *
sa_protect_load(Oid tbl, const char *column)
{
	ProtectMode mode = stored_mode(tbl, column);

	if (mode == MODE_PLAIN)
		return nullptr;

	SaProtect  *p = (SaProtect *) palloc0(sizeof(SaProtect));

	p->mode = mode;
	if (mode == MODE_FINGERPRINT && !sa_protect_column_key(tbl, column, p->key))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("column \"%s\" of \"%s\" is to be fingerprinted, but the database has no fingerprint key",
						column, get_rel_name(tbl)),
				 errhint("Run SELECT sensitive_audit.protect('%s', '%s', 'fingerprint') again to make one.",
						 get_rel_name(tbl), column)));
	if (mode == MODE_ENCRYPT && !read_encryption_key(p->key, p->key_id))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("column \"%s\" of \"%s\" is to be encrypted, but no encryption key is set",
						column, get_rel_name(tbl)),
				 errhint("Set one with sensitive_audit.set_encryption_key().")));
	if (mode == MODE_ERASABLE)
	{
		p->kept = sa_audit_relid(SA_ERASABLE_VALUES);
		if (!OidIsValid(p->kept))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_TABLE),
					 errmsg("sensitive_audit.erasable_values is missing")));
	}
	return p;
}

/*
 * The stored form of one value of a protected column, palloc'd.  For an
 * erasable column the salt and value go into erasable_values, under the
 * entry's table and row key, in the same (sub)transaction as the change.
 */
char *
sa_protect_value(const SaProtect *p, Oid relid, const char *schema, const char *table, const char *key,
				 const char *value, int len, int *outlen)
{
	char	   *out = nullptr;

	switch (p->mode)
	{
		case MODE_PLAIN:
			out = pnstrdup(value, len);
			break;
		case MODE_FINGERPRINT:
			out = sa_protect_fingerprint(p->key, value, len);
			break;
		case MODE_ENCRYPT:
			{
				sa_sealer  *s = sealer_for(p->key, p->key_id);
				size_t		cap = sa_sealed_text_len((size_t) len) + 1;
				size_t		n;

				out = (char *) palloc(cap);
				if (sa_seal_text(s, value, (size_t) len, out, cap, &n) != SA_OK)
					ereport(ERROR,
							(errcode(ERRCODE_INTERNAL_ERROR),
							 errmsg("could not seal a value of \"%s.%s\"", schema, table)));
				break;
			}
		case MODE_ERASABLE:
			{
				uint8_t		salt[SA_PROTECT_KEY_LEN];
				uint8_t		commitment[SA_DIGEST_LEN];

				if (sa_random_bytes(salt, sizeof(salt)) != SA_OK)
					ereport(ERROR,
							(errcode(ERRCODE_INTERNAL_ERROR),
							 errmsg("could not make a random salt")));
				out = (char *) palloc(SA_COMMITMENT_TEXT_LEN + 1);
				if (sa_commitment_text(salt, value, (size_t) len, out) != SA_OK)
					ereport(ERROR,
							(errcode(ERRCODE_INTERNAL_ERROR),
							 errmsg("could not compute a commitment")));
				if (!sa_protect_commitment_bytes(out, SA_COMMITMENT_TEXT_LEN, commitment))
					elog(ERROR, "malformed commitment");
				keep_erasable(p->kept, relid, commitment, schema, table, key, salt, value, len);
				explicit_bzero(salt, sizeof(salt));
				break;
			}
	}
	*outlen = (int) strlen(out);
	return out;
}

bool
sa_protect_is_erasable(const SaProtect *p)
{
	return p != nullptr && p->mode == MODE_ERASABLE;
}

/*
 * A row's key changed (a REKEY entry): the values it keeps apart move to
 * the new key, so that erase() of the row's key finds every one of them.
 */
void
sa_protect_rekey(Oid relid, const char *oldkey, const char *newkey)
{
	Oid			argtypes[3] = {OIDOID, TEXTOID, TEXTOID};
	Datum		args[3] = {ObjectIdGetDatum(relid), CStringGetTextDatum(oldkey), CStringGetTextDatum(newkey)};

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	sa_run_sql_as_owner("UPDATE sensitive_audit.erasable_values SET row_key = $3::pg_catalog.jsonb "
						"WHERE tbl::pg_catalog.oid OPERATOR(pg_catalog.=) $1 "
						"AND row_key OPERATOR(pg_catalog.=) $2::pg_catalog.jsonb",
						3, argtypes, args);
	SPI_finish();
}

/*
 * A relation with capture triggers is dropped: its kept values stay, found
 * by erase() through the names their entries gave it; their oid may name
 * another relation one day.  SPI connected.
 */
void
sa_protect_forget_relation(Oid relid)
{
	if (!OidIsValid(sa_audit_relid(SA_ERASABLE_VALUES)))
		return;

	Oid			argtypes[1] = {OIDOID};
	Datum		args[1] = {ObjectIdGetDatum(relid)};

	sa_run_sql_as_owner("UPDATE sensitive_audit.erasable_values SET tbl = NULL "
						"WHERE tbl::pg_catalog.oid OPERATOR(pg_catalog.=) $1",
						1, argtypes, args);
}

/* untag(): a column no longer tagged is no longer protected (a PROTECT entry says so). */
void
sa_protect_forget(Oid tbl, const char *col)
{
	uint8_t		salt[SA_COLUMN_SALT_LEN];
	bool		has_salt;
	ProtectMode old = stored_mode(tbl, col, salt, &has_salt);

	if (old == MODE_PLAIN && !has_salt)
		return;

	sa_run_column_sql_as_owner("DELETE FROM sensitive_audit.protect_info "
							   "WHERE tbl OPERATOR(pg_catalog.=) $1 AND column_name OPERATOR(pg_catalog.=) $2",
							   tbl, col, InvalidOid);
	if (old != MODE_PLAIN)
		record_protect(tbl, col, old, MODE_PLAIN);
	sa_invalidate_tree(tbl);
}

/* DETACH PARTITION: the detached table keeps the protection of its columns. */
void
sa_protect_copy(Oid from, Oid to)
{
	if (!OidIsValid(sa_audit_relid(SA_PROTECT_INFO)))
		return;

	ListCell   *lc;

	foreach(lc, sa_catalog_columns(from))
	{
		const char *col = (const char *) lfirst(lc);
		uint8_t		salt[SA_COLUMN_SALT_LEN];
		bool		has_salt;
		ProtectMode mode = stored_mode(from, col, salt, &has_salt);

		if (mode == MODE_PLAIN && !has_salt)
			continue;

		sa_run_column_sql_as_owner("INSERT INTO sensitive_audit.protect_info "
								   "(tbl, column_name, mode, set_at, set_by, fingerprint_salt) "
								   "SELECT $3, p.column_name, p.mode, pg_catalog.statement_timestamp(), p.set_by, "
								   "p.fingerprint_salt "
								   "FROM sensitive_audit.protect_info p WHERE p.tbl OPERATOR(pg_catalog.=) $1 "
								   "AND p.column_name OPERATOR(pg_catalog.=) $2 "
								   "ON CONFLICT (tbl, column_name) DO NOTHING",
								   from, col, to);
		if (mode != MODE_PLAIN)
			record_protect(to, col, MODE_PLAIN, mode);
	}
	sa_invalidate_tree(to);
}

extern "C" {
PG_FUNCTION_INFO_V1(sensitive_audit_protect);
PG_FUNCTION_INFO_V1(sensitive_audit_set_encryption_key);
PG_FUNCTION_INFO_V1(sensitive_audit_fingerprint);
PG_FUNCTION_INFO_V1(sensitive_audit_erase);
PG_FUNCTION_INFO_V1(sensitive_audit_erase_by_name);
}

/* protect(tbl, col, mode): what the log keeps of the column's values from now on. */
extern "C" Datum
sensitive_audit_protect(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("protect() needs a table, a column and a mode")));

	Oid			tbl = PG_GETARG_OID(0);
	const char *col = NameStr(*PG_GETARG_NAME(1));
	ProtectMode mode = parse_mode(text_to_cstring(PG_GETARG_TEXT_PP(2)));

	sa_check_tagged_column(tbl, col, "protect() applies to", true);

	uint8_t		salt[SA_COLUMN_SALT_LEN];
	bool		has_salt;
	ProtectMode old = stored_mode(tbl, col, salt, &has_salt);

	uint8_t		dbkey[SA_PROTECT_KEY_LEN];

	/* the same mode again does nothing, unless a fingerprint key is missing */
	if (mode == old && (mode != MODE_FINGERPRINT || (has_salt && read_fingerprint_key(dbkey))))
		PG_RETURN_VOID();
	explicit_bzero(dbkey, sizeof(dbkey));
	if (mode != MODE_PLAIN)
		check_not_key(tbl, col);
	if (mode == MODE_ENCRYPT)
	{
		uint8_t		pub[SA_PROTECT_KEY_LEN];
		char		key_id[2 * SA_KEY_ID_LEN + 1];

		if (!read_encryption_key(pub, key_id))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("no encryption key is set"),
					 errhint("Set the X25519 public key values are sealed to with sensitive_audit.set_encryption_key() first.")));
	}

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (mode == MODE_FINGERPRINT)
		ensure_fingerprint_key();

	/*
	 * A column's fingerprint salt is made the first time it is fingerprinted
	 * and kept while it stays tagged (also through plain and back), so that
	 * fingerprint() tests candidates against all of its fingerprints.
	 */
	if (mode == MODE_FINGERPRINT && !has_salt && sa_random_bytes(salt, sizeof(salt)) != SA_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not make a random fingerprint salt")));

	Oid			argtypes[5] = {REGCLASSOID, NAMEOID, TEXTOID, TEXTOID, BYTEAOID};
	NameData	name;
	Datum		values[5];
	char		nulls[6] = {' ', ' ', ' ', ' ', ' ', '\0'};

	namestrcpy(&name, col);
	values[0] = ObjectIdGetDatum(tbl);
	values[1] = NameGetDatum(&name);
	values[2] = CStringGetTextDatum(mode_names[mode]);
	values[3] = CStringGetTextDatum(user_name());
	if (mode == MODE_FINGERPRINT || has_salt)
		values[4] = PointerGetDatum(to_bytea(salt, sizeof(salt)));
	else
		nulls[4] = 'n';
	sa_run_sql_as_owner_nulls("INSERT INTO sensitive_audit.protect_info "
							  "(tbl, column_name, mode, set_at, set_by, fingerprint_salt) "
							  "VALUES ($1, $2, $3, pg_catalog.statement_timestamp(), $4, $5) "
							  "ON CONFLICT (tbl, column_name) DO UPDATE "
							  "SET mode = EXCLUDED.mode, set_at = EXCLUDED.set_at, set_by = EXCLUDED.set_by, "
							  "fingerprint_salt = EXCLUDED.fingerprint_salt",
							  5, argtypes, values, nulls);
	if (mode != old)
		record_protect(tbl, col, old, mode);
	SPI_finish();
	sa_invalidate_tree(tbl);
	PG_RETURN_VOID();
}

/*
 * set_encryption_key(public_key text): values of encrypt columns are sealed
 * to this key from now on (an ENCRYPTION KEY entry); returns its key id.
 * Entries sealed to earlier keys stay as they are.
 */
extern "C" Datum
sensitive_audit_set_encryption_key(PG_FUNCTION_ARGS)
{
	text	   *arg = PG_GETARG_TEXT_PP(0);
	uint8_t		pub[SA_PROTECT_KEY_LEN];
	char		key_id[2 * SA_KEY_ID_LEN + 1];

	/* the argument is a public key: never echo it, in case it is the private one */
	int			rc = sa_x25519_public_from_pem(VARDATA_ANY(arg), VARSIZE_ANY_EXHDR(arg), pub, key_id);

	if (rc != SA_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("set_encryption_key() needs an X25519 public key in PEM"),
				 errdetail("%s.", sa_strerror(rc)),
				 errhint("Make a key pair with: openssl genpkey -algorithm X25519 -out private.pem; "
						 "then pass what openssl pkey -in private.pem -pubout prints. "
						 "The private key stays outside the database.")));

	char	   *pem = text_to_cstring(arg);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	Oid			argtypes[3] = {TEXTOID, TEXTOID, TEXTOID};
	Datum		values[3] = {CStringGetTextDatum(key_id), CStringGetTextDatum(pem), CStringGetTextDatum(user_name())};

	/* one setter at a time: positions count up without a gap or a tie */
	sa_run_sql_as_owner("LOCK TABLE sensitive_audit.encryption_keys IN SHARE ROW EXCLUSIVE MODE", 0, nullptr, nullptr);
	sa_run_sql_as_owner("INSERT INTO sensitive_audit.encryption_keys (key_id, public_key, set_at, set_by, position) "
						"VALUES ($1, $2, pg_catalog.statement_timestamp(), $3, "
						"(SELECT COALESCE(pg_catalog.max(k.position), 0) OPERATOR(pg_catalog.+) 1 "
						"FROM sensitive_audit.encryption_keys k)) "
						"ON CONFLICT (key_id) DO UPDATE SET set_at = EXCLUDED.set_at, set_by = EXCLUDED.set_by, "
						"position = EXCLUDED.position",
						3, argtypes, values);
	SPI_finish();

	StringInfoData json;

	initStringInfo(&json);
	appendStringInfoString(&json, "{\"key_id\": ");
	escape_json(&json, key_id);
	appendStringInfoString(&json, ", \"public_key\": ");
	escape_json(&json, pem);
	appendStringInfoChar(&json, '}');
	sa_record_setup_values("ENCRYPTION KEY", nullptr, nullptr, nullptr, nullptr, nullptr, json.data);
	/* every relation info that carries the old key */
	CacheInvalidateRelcacheAll();
	PG_RETURN_TEXT_P(cstring_to_text(key_id));
}

/* fingerprint(tbl, col, value): what a candidate value would be in the log. */
extern "C" Datum
sensitive_audit_fingerprint(PG_FUNCTION_ARGS)
{
	Oid			tbl = PG_GETARG_OID(0);
	const char *col = NameStr(*PG_GETARG_NAME(1));
	char	   *value = text_to_cstring(PG_GETARG_TEXT_PP(2));
	uint8_t		key[SA_PROTECT_KEY_LEN];

	sa_check_tagged_column(tbl, col, "fingerprint() applies to", false);
	if (!sa_protect_column_key(tbl, col, key))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("column \"%s\" of \"%s\" has never been fingerprinted", col, get_rel_name(tbl)),
				 errdetail("Its fingerprint key is made by sensitive_audit.protect(..., 'fingerprint').")));

	/* the canonical text capture would have fingerprinted */
	char	   *canonical = sa_canonical_from_text(tbl, col, value);
	char	   *out = sa_protect_fingerprint(key, canonical, (int) strlen(canonical));

	explicit_bzero(key, sizeof(key));
	PG_RETURN_TEXT_P(cstring_to_text(out));
}

namespace {

/*
 * Erase the kept values that `where` selects (over erasable_values v, with
 * $3 the row key and $4 the caller), recording an ERASE entry under schema
 * and table; how many.
 */
int64
erase_where(const char *where, Oid *argtypes, Datum *args, const char *schema, const char *table, Jsonb *key)
{
	char	   *key_text = JsonbToCString(nullptr, &key->root, VARSIZE(key));

	if (JB_ROOT_COUNT(key) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the row key %s names no row", key_text),
				 errdetail("A table without a key of its own, whose tagged columns are all protected, names every row so.")));
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	sa_run_sql_as_owner(psprintf("UPDATE sensitive_audit.erasable_values v "
								 "SET salt = NULL, value = NULL, erased_at = pg_catalog.statement_timestamp(), "
								 "erased_by = $4 %s AND v.salt IS NOT NULL", where),
						4, argtypes, args);

	uint64		erased = SPI_processed;

	if (erased == 0)
	{
		sa_run_sql_as_owner(psprintf("SELECT 1 FROM sensitive_audit.erasable_values v %s LIMIT 1", where),
							3, argtypes, args);
		bool		known = SPI_processed > 0;

		SPI_finish();
		if (!known)
			ereport(ERROR,
					(errcode(ERRCODE_NO_DATA_FOUND),
					 errmsg("\"%s\" has no erasable values under row key %s", table, key_text),
					 errdetail("Only values of columns protected as 'erasable' are kept apart from the log, and can be erased."),
					 errhint("The row key is the JSON the log shows in its row_key column, e.g. {\"id\": \"7\"}; "
							 "a row whose key changed is erased by its latest key.")));
		ereport(NOTICE,
				(errmsg("the erasable values of \"%s\" under row key %s were already erased", table, key_text)));
		return 0;
	}
	SPI_finish();
	sa_record_setup_row("ERASE", schema, table, nullptr, nullptr, key_text, nullptr, psprintf(UINT64_FORMAT, erased));
	return (int64) erased;
}

}								/* namespace */

/*
 * erase(tbl, row_key): the kept salts and values of every erasable entry of
 * that row key of tbl and its partitions are emptied; the commitments stay,
 * so every chain still verifies.  An ERASE entry records who, when, which
 * row key and how many values.  tbl need not be tagged any more.
 */
extern "C" Datum
sensitive_audit_erase(PG_FUNCTION_ARGS)
{
	Oid			tbl = PG_GETARG_OID(0);
	Jsonb	   *key = PG_GETARG_JSONB_P(1);

	if (get_rel_relkind(tbl) == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", tbl),
				 errhint("The values of a table that was dropped are erased with erase(table_schema, table_name, row_key).")));

	List	   *members = find_all_inheritors(tbl, AccessShareLock, nullptr);
	int			n = list_length(members);
	Datum	   *oids = (Datum *) palloc(sizeof(Datum) * n);
	int			i = 0;
	ListCell   *lc;

	foreach(lc, members)
		oids[i++] = ObjectIdGetDatum(lfirst_oid(lc));

	Oid			argtypes[4] = {OIDARRAYOID, TEXTOID, JSONBOID, TEXTOID};
	Datum		args[4] = {
		PointerGetDatum(construct_array(oids, n, OIDOID, sizeof(Oid), true, TYPALIGN_INT)),
		(Datum) 0,
		JsonbPGetDatum(key),
		CStringGetTextDatum(user_name()),
	};

	args[1] = CStringGetTextDatum("");
	PG_RETURN_INT64(erase_where("WHERE v.tbl::pg_catalog.oid OPERATOR(pg_catalog.=) ANY ($1) "
								"AND v.row_key OPERATOR(pg_catalog.=) $3",
								argtypes, args, get_namespace_name(get_rel_namespace(tbl)), get_rel_name(tbl), key));
}

/*
 * erase(table_schema, table_name, row_key): the same by the names the
 * entries gave the table, for a table that was dropped (or renamed since).
 */
extern "C" Datum
sensitive_audit_erase_by_name(PG_FUNCTION_ARGS)
{
	char	   *schema = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *table = text_to_cstring(PG_GETARG_TEXT_PP(1));
	Jsonb	   *key = PG_GETARG_JSONB_P(2);
	Oid			argtypes[4] = {TEXTOID, TEXTOID, JSONBOID, TEXTOID};
	Datum		args[4] = {CStringGetTextDatum(schema), CStringGetTextDatum(table), JsonbPGetDatum(key),
						   CStringGetTextDatum(user_name())};

	PG_RETURN_INT64(erase_where("WHERE v.table_schema OPERATOR(pg_catalog.=) $1 "
								"AND v.table_name OPERATOR(pg_catalog.=) $2 AND v.row_key OPERATOR(pg_catalog.=) $3",
								argtypes, args, schema, table, key));
}
