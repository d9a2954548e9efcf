/*
 * cts_names.h - the names of changetrail's MongoDB collections and indexes:
 * one place, so the writer, the readers and the docs agree.
 */
#ifndef CTS_NAMES_H
#define CTS_NAMES_H

#define CTS_COLL_HISTORY "history"
#define CTS_COLL_STATE "state"
#define CTS_COLL_CONTEXTS "contexts"
/* v1 only (FerretDB era): read by migrate, never written any more */
#define CTS_COLL_V1_STATE_JOURNAL "state_journal"
#define CTS_COLL_V1_CONTEXT_PARTS "context_parts"

/* history indexes */
#define CTS_IX_DOC_VERSION "doc_version" /* (collection, document_id, version) unique */
#define CTS_IX_CONTEXT "context"         /* context_id */
#define CTS_IX_ACTOR_TS "actor_ts"       /* (actor, ts) */
#define CTS_IX_TS "ts"                   /* ts */
#define CTS_IX_PARENT "parent"           /* (parent.collection, parent.document_id) */
#define CTS_IX_TS_TTL "ts_ttl"           /* ts, expireAfterSeconds ([mongodb] history_ttl_days) */
/* state indexes */
#define CTS_IX_ID_VERSION "id_version"   /* (_id, version) unique: the state writer's swap filter */
/* contexts indexes */
#define CTS_IX_FIRST_TS "first_ts"

#endif
