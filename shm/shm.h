/*
 * shm - relgate's POSIX shared-memory segment (default "/relgate").
 *
 * Owns the segment: creation (supervisor only, mode 0640), attach
 * (children read-write, relstat read-only), the header, the area
 * directory, the descriptor table and the process table.  The layout is
 * declared once in shm/layout.def.  A role touches another role's area
 * only through these functions.
 *
 * Concurrency: the header's ready flag is published with a release store
 * after everything else is written; readers load it with acquire.  Fields
 * shared by several processes are read and written with relaxed atomics
 * (SHM_LOAD / SHM_STORE / SHM_INC); the config snapshot uses a seqlock.
 */
#ifndef RG_SHM_H
#define RG_SHM_H

#include <stddef.h>
#include <stdint.h>

#include "http/server.h"
#include "proto/link.h"
#include "shm/layout.def"
#include "store/store.h"
#include "util/alog.h"

#define SHM_MAGIC "RELGATE"
#define SHM_MAX_AREAS 16
#define SHM_MAX_PROCS 72
#define SHM_CONFIG_MAX (128u * 1024u)

#define SHM_LOAD(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define SHM_STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define SHM_INC(p) __atomic_fetch_add((p), 1, __ATOMIC_RELAXED)
#define SHM_ADD_N(p, n) __atomic_fetch_add((p), (n), __ATOMIC_RELAXED)

enum shm_type {
	SHM_T_U32 = 1,
	SHM_T_I32,
	SHM_T_U64,
	SHM_T_TIME_MS,
	SHM_T_ROLE,    /* u32, names in desc.values */
	SHM_T_STATE,   /* u32, names in desc.values */
	SHM_T_EXIT,    /* i32 wait status, -1 = none */
	SHM_T_COUNTER, /* u64, only grows */
	SHM_T_GAUGE,   /* u64, a level: goes up and down */
	SHM_T_TABLE,   /* not a field: a table of rows (struct shm_table) */
	SHM_T_FLAG,    /* u64, 0 or 1 */
};

enum shm_area_id {
#define SHM_AREA_ENUM(id, name, doc) SHM_AREA_##id,
	SHM_AREAS(SHM_AREA_ENUM)
#undef SHM_AREA_ENUM
	SHM_NAREAS
};

enum shm_state {
#define SHM_STATE_ENUM(id, name) SHM_STATE_##id,
	SHM_STATES(SHM_STATE_ENUM)
#undef SHM_STATE_ENUM
	SHM_NSTATES
};

struct shm_area {
	char name[16];
	uint64_t offset; /* from the segment start; 0 with size 0 */
	uint64_t size;
	uint32_t stride; /* slot size for arrays, else 0 */
	uint32_t count;  /* slots for arrays, else 0 */
	char doc[64];
};

struct shm_header {
	char magic[8];
	uint32_t layout_version;
	uint32_t header_size;
	uint64_t size;          /* whole segment */
	int32_t supervisor_pid; /* writer pid */
	uint32_t ready;         /* 1 after the barrier */
	uint64_t started_at;    /* ms since epoch */
	uint64_t config_gen;    /* bumped on every applied (re)load */
	uint32_t nareas;
	uint32_t ndesc;
	struct shm_area areas[SHM_MAX_AREAS];
};

struct shm_desc {
	char area[16];
	char name[40];
	uint32_t offset; /* within one slot of the area */
	uint32_t type;   /* enum shm_type */
	char values[96]; /* comma-separated names for enum types */
	char doc[96];
};

/*
 * The areas describe themselves in the same descriptor table.  A table
 * descriptor (type SHM_T_TABLE, the same size and prefix as struct
 * shm_desc) says where the rows of one table of an area lie: count rows
 * of stride bytes from offset, each named in a names table (name_size
 * bytes each, NUL-padded; an empty name is a row not in use); a table
 * without names (name_size 0) is one row.  The fields of a row are the
 * field descriptors whose area column is the table's name, their offset
 * within the row; a dotted name ("counters.opens") puts the field in a
 * group of the row.  A table may have several copies (shards, one block
 * per process) that readers add up, row by row of the same name.  Written
 * by the supervisor in shm_create, before any writer runs; readers find
 * only what this table describes, so an older reader reads the fields of
 * a newer daemon and an area without a table descriptor reads as empty.
 */
#define SHM_TF_NAME_IN_ROW 1u /* names_off is from the row's start */
#define SHM_TF_COPY_LIVE 2u   /* a copy counts when its i32 at live_off
				 (from the copy's start) is not 0 */
#define SHM_TF_SKIP_ZERO 4u   /* rows whose fields are all 0 are left out */

struct shm_table {
	char area[16];        /* the shm area holding the rows */
	char name[40];        /* the table's name, its fields' area column */
	uint32_t offset;      /* row 0 of copy 0, from the area's start */
	uint32_t type;        /* SHM_T_TABLE */
	uint32_t stride;      /* bytes from one row to the next */
	uint32_t count;       /* rows */
	uint32_t names_off;   /* the names table: row i's name at
				 names_off + i * name_size */
	uint32_t name_size;   /* 0: no names, one row */
	uint32_t copies;      /* 0 or 1: one copy */
	uint32_t copy_stride; /* bytes from one copy to the next */
	uint32_t flags;       /* SHM_TF_* */
	uint32_t live_off;
	char pad[64];
	char doc[96];
};

struct shm_counters {
	struct link_stats link;
	struct httpd_stats http;
	struct store_stats store;
	struct alog_stats alog;
#define SHM_COUNTER_FIELD(cname, pub, doc) uint64_t cname;
	SHM_PROC_COUNTERS(SHM_COUNTER_FIELD)
#undef SHM_COUNTER_FIELD
};

struct shm_proc {
#define SHM_PROC_MEMBER(ctype, cname, pub, type, doc) ctype cname;
	SHM_PROC_FIELDS(SHM_PROC_MEMBER)
#undef SHM_PROC_MEMBER
	struct shm_counters counters;
};

struct shm_config {
	uint64_t seq; /* odd while being written */
	uint64_t gen;
	uint32_t len;
	char json[]; /* len bytes, NUL-terminated */
};

/* Area "store": state shared by the LMDB writers of all processes. */
struct shm_store {
	uint32_t writers_waiting; /* see store_writer_share_turns */
	uint32_t pad[15];
};

struct shm_seg {
	void *base;
	size_t size;
	int writable;
	struct shm_header *hdr;
};

/* shm_name_valid - "/name", no other slash, 2..64 bytes. */
int shm_name_valid(const char *name);

/* Sizes of the areas that depend on configuration. */
struct shm_sizes {
	uint32_t ratelimit_slots; /* ratelimit.table_slots */
};

/*
 * shm_create - supervisor: create name (O_EXCL, mode 0640) and lay it out:
 * header, areas, descriptors, empty process table.  An existing segment
 * whose supervisor pid is alive is an error ("in use"); a stale one is
 * replaced.  ready stays 0 until shm_publish_ready.  0 or -1 + err line.
 */
int shm_create(struct shm_seg *seg, const char *name,
    const struct shm_sizes *sizes, char *err, size_t errlen);
/*
 * shm_attach - map an existing segment; writable for children, read-only
 * for tools.  Checks magic, size and layout version (a newer layout than
 * this build knows is refused).  0 or -1 + err line.
 */
int shm_attach(struct shm_seg *seg, const char *name, int writable,
    char *err, size_t errlen);
void shm_detach(struct shm_seg *seg);
/* shm_remove - unlink the segment name (supervisor at exit). */
int shm_remove(const char *name);

/* shm_publish_ready - release barrier, then ready = 1. */
void shm_publish_ready(struct shm_seg *seg);
int shm_is_ready(const struct shm_seg *seg);

const struct shm_area *shm_area(const struct shm_seg *seg,
    enum shm_area_id id);
/* shm_area_by_name - for readers that go by the directory. */
const struct shm_area *shm_area_by_name(const struct shm_seg *seg,
    const char *name);
const struct shm_desc *shm_descs(const struct shm_seg *seg, size_t *n);

/* A writer of descriptors (shm_create hands one to each area). */
struct shm_descw {
	struct shm_desc *d;
	uint32_t n, max;
};

/* shm_desc_table - describe a table of area; t->area, name, type and doc
 * are filled from the arguments. */
void shm_desc_table(struct shm_descw *w, const char *area, const char *name,
    const struct shm_table *t, const char *doc);
/* shm_desc_field - describe a field of the rows of table. */
void shm_desc_field(struct shm_descw *w, const char *table, const char *name,
    size_t offset, enum shm_type type, const char *doc);
/* shm_desc_u64s - fields of a u64 array at off of a row: field i named
 * prefix names[i] (prefix "counters." puts them in that group), its doc
 * docs[i] (or doc when docs is NULL). */
void shm_desc_u64s(struct shm_descw *w, const char *table, const char *prefix,
    size_t off, const char *const *names, const char *const *docs,
    unsigned n, enum shm_type type, const char *doc);
/* shm_table - the table descriptor named name, or NULL. */
const struct shm_table *shm_table(const struct shm_seg *seg,
    const char *name);


struct shm_proc *shm_proc(const struct shm_seg *seg, unsigned slot);
unsigned shm_proc_count(const struct shm_seg *seg);
/* shm_proc_pid - the pid in the process-table slot of (role, instance),
 * 0 when there is none or it is not running. */
int32_t shm_proc_pid(const struct shm_seg *seg, unsigned role,
    unsigned instance);

/* shm_config_publish - seqlock write of the redacted config JSON. */
int shm_config_publish(struct shm_seg *seg, const char *json, uint64_t gen);
/* shm_config_read - consistent copy into buf; -1 if it keeps changing or
 * does not fit. */
int shm_config_read(const struct shm_seg *seg, char *buf, size_t len,
    uint64_t *gen);

const char *shm_state_name(unsigned state);

/* shm_counter_applies - a counter named "<role>.x" (ingress.chatOpen)
 * belongs to that role only; any other (link.sent, http.open) to every
 * role.  role is a role name. */
int shm_counter_applies(const char *name, const char *role);

/*
 * Areas that keep their own names and layout in a header (ratelimit,
 * circuit, bulkhead) write it once, from whichever writer comes first:
 * shm_describe_begin returns 1 to exactly one caller (described 0 -> 1),
 * which then writes the header and calls shm_describe_end (-> 2, release).
 * shm_described tells readers and later writers that it is complete.
 */
int shm_describe_begin(uint32_t *described);
void shm_describe_end(uint32_t *described);
int shm_described(const uint32_t *described);

/* shm_store_turns - the shared write-lock turn counter, or NULL. */
uint32_t *shm_store_turns(const struct shm_seg *seg);

/* shm_exit_str - "exit 1", "signal 9 (KILL)", or NULL for none. */
const char *shm_exit_str(int32_t status, char *buf, size_t len);

#endif
