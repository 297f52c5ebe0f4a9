/*
 * admission - the chat admission state in the shm area "admission"
 * (SPEC section 6): the limits in force, the tickets of admitted chats,
 * the tickets each user holds, the rate levels and the counters relstat
 * shows.
 *
 * One writer: the admission process (struct adm_writer).  Readers (relstat,
 * tests) may read at any time: every value is a naturally aligned 64- or
 * 32-bit word written with relaxed atomics; a ticket is published by a
 * release store of its id after its fields (and freed by storing id 0
 * first); a user entry is written under its own sequence word (odd while
 * it changes).  A reader may see a user entry twice or miss it for a
 * moment while the writer closes a gap in the table; it never sees a
 * torn one.
 *
 * The area outlives its writer: an admission process killed with -9 and
 * started again takes the area over as it is (tickets, counters, rate
 * levels), and rebuilds what is derived from the tickets (the in-flight
 * count, the user table, its own free list) before it decides anything.
 *
 * A ticket records its owner ingress (instance and pid) and the provider
 * (instance and pid) that runs the stream: adm_reclaim frees the tickets
 * of a process that is gone -- its pid no longer exists, or its slot in
 * the process table now holds another pid -- and those whose TTL passed,
 * each counted by cause.
 *
 * Owns: the admission area.  Does not read the config (the caller writes
 * the limits with adm_set_*), does not decide (gate/admit does), does not
 * log and sends nothing.
 */
#ifndef RG_ADMISSION_H
#define RG_ADMISSION_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "shm/layout.def"
#include "shm/shm.h"

#define ADM_MAGIC "ADAREA1"
#define ADM_NAME_SIZE 32
#define ADM_TICKETS 32768u /* concurrent chats the table can hold */
#define ADM_USERS 65536u   /* user entries: a power of two, 2 x tickets */
#define ADM_UKEY 46        /* bytes of a user id kept for display */
#define ADM_SLOT_BITS 16   /* a ticket id: generation << 16 | slot */
#define ADM_GEN_MAX ((UINT64_C(1) << (64 - ADM_SLOT_BITS)) - 1)

#define ADM_ID_SLOT(id) ((uint32_t)((id) & ((1u << ADM_SLOT_BITS) - 1)))
#define ADM_ID_GEN(id) ((id) >> ADM_SLOT_BITS)

enum adm_dim {
#define ADM_DIM_ENUM(id, name, enforce, limit) ADM_D_##id,
	ADM_DIMS(ADM_DIM_ENUM)
#undef ADM_DIM_ENUM
	ADM_NDIMS
};

enum adm_dim_field {
#define ADM_DF_ENUM(id, name, doc) ADM_F_##id,
	ADM_DIM_FIELDS(ADM_DF_ENUM)
#undef ADM_DF_ENUM
	ADM_NDIMFIELDS
};

enum adm_counter {
#define ADM_COUNTER_ENUM(id, name, doc) ADM_C_##id,
	ADM_COUNTERS(ADM_COUNTER_ENUM)
#undef ADM_COUNTER_ENUM
	ADM_NCOUNTERS
};

enum adm_setting {
#define ADM_SETTING_ENUM(id, name, doc) ADM_S_##id,
	ADM_SETTINGS(ADM_SETTING_ENUM)
#undef ADM_SETTING_ENUM
	ADM_NSETTINGS
};

enum adm_gauge {
#define ADM_GAUGE_ENUM(id, name, doc) ADM_G_##id,
	ADM_GAUGES(ADM_GAUGE_ENUM)
#undef ADM_GAUGE_ENUM
	ADM_NGAUGES
};

enum adm_mode_name {
#define ADM_MODE_ENUM(id, name) ADM_M_##id,
	ADM_MODES(ADM_MODE_ENUM)
#undef ADM_MODE_ENUM
	ADM_NMODES
};

#define ADM_NNAMES                                                        \
	(ADM_NDIMS + ADM_NDIMFIELDS + ADM_NCOUNTERS + ADM_NSETTINGS +     \
	    ADM_NGAUGES + ADM_NMODES)

/* A user id as the tables keep it: the hash and length of the whole id,
 * and its first ADM_UKEY bytes (NUL-padded) for display. */
struct adm_ukey {
	uint64_t hash; /* FNV-1a of the whole id, never 0 (0 = empty) */
	uint16_t len;  /* length of the whole id, capped at 65535 */
	char key[ADM_UKEY];
};

struct adm_ticket {
	uint64_t id;  /* 0 = free; else gen << ADM_SLOT_BITS | slot */
	uint64_t gen; /* last generation used in this slot */
	uint64_t stream;
	uint64_t issued_at;  /* ms since the epoch */
	uint64_t expires_at; /* ms since the epoch */
	int32_t ingress_pid;
	int32_t provider_pid;
	uint16_t provider; /* instance */
	uint8_t ingress;   /* instance */
	uint8_t pad[5];
	struct adm_ukey user;
};

struct adm_user {
	struct adm_ukey k;
	uint32_t inflight; /* tickets held by this user */
	uint32_t seq;      /* odd while the writer changes the entry */
};

/*
 * The area.  struct adm_head is the stable prefix readers rely on; the
 * rest is found through its offsets.  Names, in this order: dimensions,
 * dimension fields, counters, settings, gauges, gateway modes.
 */
struct adm_head {
	char magic[8]; /* ADM_MAGIC once described */
	uint32_t described;
	uint32_t head_size;
	uint32_t ndims, ndimfields, ncounters, nsettings, ngauges, nmodes;
	uint32_t name_size;
	uint32_t names_off;    /* from the area start */
	uint32_t dims_off;     /* u64 [ndims][ndimfields] */
	uint32_t counters_off; /* u64 [ncounters] */
	uint32_t settings_off; /* u64 [nsettings] */
	uint32_t gauges_off;   /* u64 [ngauges] */
	uint32_t tickets_off;  /* struct adm_ticket [ticket_capacity] */
	uint32_t ticket_size;
	uint32_t ticket_capacity;
	uint32_t slot_bits;
	uint32_t t_id_off;      /* within a ticket: u64 */
	uint32_t t_issued_off;  /* u64 */
	uint32_t t_expires_off; /* u64 */
	uint32_t users_off;     /* struct adm_user [user_capacity] */
	uint32_t user_size;
	uint32_t user_capacity;
	uint32_t u_hash_off;     /* within a user entry: u64, 0 = empty */
	uint32_t u_len_off;      /* u16 */
	uint32_t u_key_off;      /* char [u_key_size] */
	uint32_t u_key_size;
	uint32_t u_inflight_off; /* u32 */
	uint32_t u_seq_off;      /* u32 */
};

struct adm_area {
	struct adm_head head;
	char names[ADM_NNAMES][ADM_NAME_SIZE];
	_Alignas(64) uint64_t dims[ADM_NDIMS][ADM_NDIMFIELDS];
	uint64_t counters[ADM_NCOUNTERS];
	uint64_t settings[ADM_NSETTINGS];
	uint64_t gauges[ADM_NGAUGES];
	_Alignas(64) struct adm_ticket tickets[ADM_TICKETS];
	_Alignas(64) struct adm_user users[ADM_USERS];
};

/* adm_area_size - bytes of the area; sets stride and count for shm. */
size_t adm_area_size(uint32_t *stride, uint32_t *count);

/* adm_area_of - the area of an attached segment, or NULL. */
struct adm_area *adm_area_of(const struct shm_seg *seg);

/* adm_describe - shm_create: the tables of the area's scalar fields
 * (adm.dims, adm.counters, adm.settings, adm.gauges); the tickets and
 * users are read by their own code. */
void adm_describe(struct shm_descw *w);

/* adm_area_init - supervisor, after shm_create: names and layout.
 * Idempotent; the writer does it itself if it finds it not done. */
void adm_area_init(struct shm_seg *seg);

/* The writer's own state (free list, live list); the area is the truth. */
struct adm_writer;

/*
 * adm_writer_open - take the area over at now_ms: describe it if needed,
 * rebuild the derived state from the tickets, record this process as the
 * writer (a previous writer's area counts a resume).  seg must be
 * attached writable.  NULL when the segment has no usable area.
 */
struct adm_writer *adm_writer_open(struct shm_seg *seg, uint64_t now_ms);
/* adm_writer_close - free the writer's memory; the area stays as it is. */
void adm_writer_close(struct adm_writer *w);

/* The values relstat shows, written by the writer. */
void adm_set_dim(struct adm_writer *w, unsigned dim, unsigned field,
    uint64_t v);
void adm_set_setting(struct adm_writer *w, unsigned setting, uint64_t v);
void adm_set_gauge(struct adm_writer *w, unsigned gauge, uint64_t v);
uint64_t adm_gauge(const struct adm_writer *w, unsigned gauge);
void adm_count(struct adm_writer *w, unsigned counter);
void adm_count_dim(struct adm_writer *w, unsigned dim, unsigned field);

/* What a ticket is taken for. */
struct adm_take {
	uint64_t stream;
	const char *user;
	size_t user_len;
	uint8_t ingress;
	int32_t ingress_pid;
	uint16_t provider;
	int32_t provider_pid;
	uint64_t now_ms;
	uint64_t ttl_ms;
};

/*
 * adm_take - a ticket for t: its id (never 0), or 0 when every slot is
 * taken.  The user's and the global in-flight counts include it.
 */
uint64_t adm_take(struct adm_writer *w, const struct adm_take *t);

/*
 * adm_release - the stream ended: free ticket id if it is held for
 * stream.  0 (counted as released), or -1 for an unknown, stale or
 * mismatched ticket, which is counted and otherwise ignored.
 */
int adm_release(struct adm_writer *w, uint64_t id, uint64_t stream);

/* adm_drop - free a ticket just taken whose chat never started (not a
 * release: the caller counts why). */
void adm_drop(struct adm_writer *w, uint64_t id);

/* Tickets freed by one adm_reclaim, by cause. */
struct adm_reclaimed {
	unsigned dead_ingress, dead_provider, expired;
};

/*
 * adm_reclaim - free the tickets whose ingress or provider process is
 * gone (checked against the process table and kill(pid, 0)) and those
 * expired by now_ms; counts each by cause.  Cheap when few are held.
 */
void adm_reclaim(struct adm_writer *w, uint64_t now_ms,
    struct adm_reclaimed *out);

/* adm_user_inflight - tickets held by user now. */
uint32_t adm_user_inflight(const struct adm_writer *w, const char *user,
    size_t len);
/* adm_inflight - tickets held now. */
uint32_t adm_inflight(const struct adm_writer *w);

#endif
