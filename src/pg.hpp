/*
 * pg.hpp — every PostgreSQL header the backend-side files need, in one
 * extern "C" block.
 *
 * Files that include this live in PostgreSQL's regime: palloc, ereport and
 * longjmp are fine there, so they must not hold objects with destructors in
 * any frame an error can unwind through.  The pure C++ core (src/core) is
 * reached only through the plain C interface in core/sa_core.h.
 */
#pragma once

extern "C" {
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/dependency.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_trigger.h"
#include "catalog/pg_type.h"
#include "commands/event_trigger.h"
#include "commands/extension.h"
#include "commands/seclabel.h"
#include "commands/trigger.h"
#include "common/hashfn.h"
#include "datatype/timestamp.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/parsenodes.h"
#include "pgtime.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/bytea.h"
#include "utils/datum.h"
#include "utils/float.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/inet.h"
#include "utils/inval.h"
#include "utils/json.h"
#include "catalog/catalog.h"
#include "catalog/objectaddress.h"
#include "catalog/partition.h"
#include "catalog/pg_class.h"
#include "catalog/pg_proc.h"
#include "parser/parse_func.h"
#include "parser/parse_type.h"
#include "rewrite/prs2lock.h"
#include "tcop/utility.h"
#include "utils/regproc.h"
#include "utils/tuplestore.h"
#include "catalog/pg_inherits.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"
#include "utils/xid8.h"
}

#include "core/sa_core.h"
