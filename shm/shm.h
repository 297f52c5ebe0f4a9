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

#define SHM_MAGIC "RELGATE"
#define SHM_MAX_AREAS 16
#define SHM_MAX_PROCS 72
#define SHM_CONFIG_MAX (128u * 1024u)

#define SHM_LOAD(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define SHM_STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define SHM_INC(p) __atomic_fetch_add((p), 1, __ATOMIC_RELAXED)

enum shm_type {
	SHM_T_U32 = 1,
	SHM_T_I32,
	SHM_T_U64,
	SHM_T_TIME_MS,
	SHM_T_ROLE,    /* u32, names in desc.values */
	SHM_T_STATE,   /* u32, names in desc.values */
	SHM_T_EXIT,    /* i32 wait status, -1 = none */
	SHM_T_COUNTER, /* u64, only grows */
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

struct shm_counters {
	struct link_stats link;
	struct httpd_stats http;
	struct store_stats store;
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
