/*
 * proto - relgate's inter-process messages: one X-macro table
 * (proto/messages.def) generates the type enum, the message structs, the
 * encoder, the decoder and the name table.
 *
 * Wire format (all integers big-endian):
 *   0  u16 magic 0x5247 ("RG")     6  u16 reserved, must be 0
 *   2  u8  version (PROTO_VERSION) 8  u32 body length
 *   3  u8  type                    12 body: the fields in table order
 *   4  u8  source role
 *   5  u8  source instance
 * Field kinds: U8 U16 U32 U64 I64 (fixed width), STR (u16 length + bytes,
 * no NUL), BLOB (u32 length + bytes).
 *
 * The decoder does every length, version and type check; a message that
 * fails any is rejected with a proto_err and never reaches a handler.
 * Decoded STR/BLOB fields point into the caller's buffer (no copies).
 * Owns: nothing beyond the caller's buffers.  Never allocates.
 */
#ifndef RG_PROTO_H
#define RG_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define PROTO_MAGIC 0x5247u
#define PROTO_VERSION 1u
#define PROTO_HDR_LEN 12u
/* PROTO_MAX_MSG - the largest message any sender may send (enforced by the
 * sender: nng drops an oversized message silently at the receiver). */
#define PROTO_MAX_MSG (1024u * 1024u)

struct proto_str {
	const char *p;
	uint32_t len;
};

#define PROTO_CTYPE_U8 uint8_t
#define PROTO_CTYPE_U16 uint16_t
#define PROTO_CTYPE_U32 uint32_t
#define PROTO_CTYPE_U64 uint64_t
#define PROTO_CTYPE_I64 int64_t
#define PROTO_CTYPE_STR struct proto_str
#define PROTO_CTYPE_BLOB struct proto_str

#include "proto/messages.def"

enum proto_type {
	PROTO_T_NONE = 0,
#define PROTO_TYPE_ENUM(ID, name, num, FIELDS) PROTO_T_##ID = num,
	PROTO_MESSAGES(PROTO_TYPE_ENUM)
#undef PROTO_TYPE_ENUM
};

#define PROTO_FIELD_MEMBER(kind, fname) PROTO_CTYPE_##kind fname;
#define PROTO_STRUCT(ID, name, num, FIELDS)                               \
	struct proto_##name {                                             \
		FIELDS(PROTO_FIELD_MEMBER)                                \
	};
PROTO_MESSAGES(PROTO_STRUCT)
#undef PROTO_STRUCT

struct proto_msg {
	uint8_t type; /* enum proto_type */
	uint8_t src_role;
	uint8_t src_instance;
	union {
#define PROTO_UNION(ID, name, num, FIELDS) struct proto_##name name;
		PROTO_MESSAGES(PROTO_UNION)
#undef PROTO_UNION
	} u;
};

enum proto_err {
	PROTO_OK = 0,
	PROTO_E_SHORT = -1,    /* shorter than the header */
	PROTO_E_MAGIC = -2,    /* wrong magic */
	PROTO_E_VERSION = -3,  /* version not understood */
	PROTO_E_TYPE = -4,     /* unknown message type */
	PROTO_E_LENGTH = -5,   /* body length disagrees with the buffer */
	PROTO_E_FIELD = -6,    /* a field runs past the body */
	PROTO_E_TRAILING = -7, /* bytes left after the last field */
	PROTO_E_TOOBIG = -8,   /* encode: over PROTO_MAX_MSG or cap */
	PROTO_E_RESERVED = -9, /* reserved header bits set */
	PROTO_E_SOURCE = -10,  /* source role is not a known role */
};

/* proto_encoded_size - bytes proto_encode will write for m (0 if m->type
 * is unknown). */
size_t proto_encoded_size(const struct proto_msg *m);
/* proto_encode - write m into buf[cap]; *len gets the size.  Returns
 * PROTO_OK, PROTO_E_TYPE or PROTO_E_TOOBIG. */
int proto_encode(const struct proto_msg *m, uint8_t *buf, size_t cap,
    size_t *len);
/* proto_decode - parse buf[len] into out; strings point into buf.
 * Returns PROTO_OK or a negative enum proto_err. */
int proto_decode(const uint8_t *buf, size_t len, struct proto_msg *out);

const char *proto_type_name(unsigned type); /* "ping", or "unknown" */
const char *proto_err_name(int err);         /* "short", "magic", ... */

/* proto_str_eq - compare a decoded string with a C string. */
int proto_str_eq(struct proto_str s, const char *c);
/* proto_str_from - view of a C string (no copy). */
struct proto_str proto_str_from(const char *c);

#endif
