/*
 * proto - the encoder and decoder of relgate's messages, generated from
 * the PROTO_MESSAGES table in proto/messages.def.
 *
 * Each message type gets a field descriptor table (kind and offset of
 * every field in its struct), built by the X-macro; one generic encoder
 * and one generic decoder walk it.  There is no per-message code here:
 * adding a message to messages.def is all it takes.
 *
 * Owns: nothing.  Never allocates, never asserts on input bytes: every
 * malformed buffer is a classified proto_err.
 */
#include "proto/proto.h"

#include <assert.h>
#include <stddef.h>
#include <string.h>

#include "proto/roles.h"
#include "util/util.h"

enum field_kind { FK_U8, FK_U16, FK_U32, FK_U64, FK_I64, FK_STR, FK_BLOB };

struct field_desc {
	uint8_t kind;  /* enum field_kind */
	uint16_t off;  /* offset in struct proto_<name> (== in m->u) */
};

struct msg_desc {
	const struct field_desc *fields;
	size_t nfields;
};

/*
 * msg_desc_of - the field table of a message type, or NULL when the type
 * is unknown.  Each case declares its own struct type as cur_t so that the
 * generated field list can take offsetof() without naming the message.
 */
static int
msg_desc_of(unsigned type, struct msg_desc *d)
{
	switch (type) {
#define PROTO_FD(kind, fname) { FK_##kind, offsetof(cur_t, fname) },
#define PROTO_DESC_CASE(ID, name, num, FIELDS)                            \
	case num: {                                                       \
		typedef struct proto_##name cur_t;                        \
		static const struct field_desc fd[] = { FIELDS(PROTO_FD) }; \
		d->fields = fd;                                           \
		d->nfields = RG_NELEM(fd);                                \
		return 1;                                                 \
	}
		PROTO_MESSAGES(PROTO_DESC_CASE)
#undef PROTO_DESC_CASE
#undef PROTO_FD
	default:
		return 0;
	}
}

/* Every wire number fits the u8 type byte and none is 0 (PROTO_T_NONE). */
#define PROTO_NUM_CHECK(ID, name, num, FIELDS)                            \
	_Static_assert((num) > 0 && (num) <= 255, #name ": bad number");
PROTO_MESSAGES(PROTO_NUM_CHECK)
#undef PROTO_NUM_CHECK

static const char *const type_names[256] = {
#define PROTO_TYPE_NAME(ID, name, num, FIELDS) [num] = #name,
	PROTO_MESSAGES(PROTO_TYPE_NAME)
#undef PROTO_TYPE_NAME
};

static const char *const err_names[] = {
	[-PROTO_OK] = "ok",
	[-PROTO_E_SHORT] = "short",
	[-PROTO_E_MAGIC] = "magic",
	[-PROTO_E_VERSION] = "version",
	[-PROTO_E_TYPE] = "type",
	[-PROTO_E_LENGTH] = "length",
	[-PROTO_E_FIELD] = "field",
	[-PROTO_E_TRAILING] = "trailing",
	[-PROTO_E_TOOBIG] = "toobig",
	[-PROTO_E_RESERVED] = "reserved",
	[-PROTO_E_SOURCE] = "source",
};

const char *
proto_type_name(unsigned type)
{
	if (type < RG_NELEM(type_names) && type_names[type] != NULL)
		return type_names[type];
	return "unknown";
}

const char *
proto_err_name(int err)
{
	if (err <= 0 && (size_t)-err < RG_NELEM(err_names) &&
	    err_names[-err] != NULL)
		return err_names[-err];
	return "unknown";
}

int
proto_str_eq(struct proto_str s, const char *c)
{
	size_t n = strlen(c);

	return n == s.len && (n == 0 || memcmp(s.p, c, n) == 0);
}

struct proto_str
proto_str_from(const char *c)
{
	struct proto_str s = { c, (uint32_t)strlen(c) };

	return s;
}

/* Big-endian stores and loads. */
static void
put_be(uint8_t *p, uint64_t v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
}

static uint64_t
get_be(const uint8_t *p, size_t n)
{
	uint64_t v = 0;

	for (size_t i = 0; i < n; i++)
		v = (v << 8) | p[i];
	return v;
}

/* Width of a fixed field, or of the length prefix of STR/BLOB. */
static size_t
kind_width(unsigned kind)
{
	switch (kind) {
	case FK_U8:
		return 1;
	case FK_U16:
	case FK_STR:
		return 2;
	case FK_U32:
	case FK_BLOB:
		return 4;
	default:
		return 8;
	}
}

size_t
proto_encoded_size(const struct proto_msg *m)
{
	const unsigned char *body = (const unsigned char *)&m->u;
	struct msg_desc d;
	size_t n = PROTO_HDR_LEN;

	if (!msg_desc_of(m->type, &d))
		return 0;
	for (size_t i = 0; i < d.nfields; i++) {
		const struct field_desc *f = &d.fields[i];

		n += kind_width(f->kind);
		if (f->kind == FK_STR || f->kind == FK_BLOB) {
			const struct proto_str *s =
			    (const struct proto_str *)(body + f->off);
			n += s->len;
		}
	}
	return n;
}

/* read_fixed - load a fixed-width field from the struct into a u64. */
static uint64_t
read_fixed(const unsigned char *src, unsigned kind)
{
	switch (kind) {
	case FK_U8:
		return *(const uint8_t *)src;
	case FK_U16:
		return *(const uint16_t *)(const void *)src;
	case FK_U32:
		return *(const uint32_t *)(const void *)src;
	case FK_U64:
		return *(const uint64_t *)(const void *)src;
	default:
		return (uint64_t) * (const int64_t *)(const void *)src;
	}
}

/* write_fixed - store a u64 from the wire into a fixed-width field. */
static void
write_fixed(unsigned char *dst, unsigned kind, uint64_t v)
{
	switch (kind) {
	case FK_U8:
		*(uint8_t *)dst = (uint8_t)v;
		break;
	case FK_U16:
		*(uint16_t *)(void *)dst = (uint16_t)v;
		break;
	case FK_U32:
		*(uint32_t *)(void *)dst = (uint32_t)v;
		break;
	case FK_U64:
		*(uint64_t *)(void *)dst = v;
		break;
	default:
		*(int64_t *)(void *)dst = (int64_t)v;
		break;
	}
}

int
proto_encode(const struct proto_msg *m, uint8_t *buf, size_t cap,
    size_t *len)
{
	const unsigned char *body = (const unsigned char *)&m->u;
	struct msg_desc d;
	size_t total, pos;

	if (!msg_desc_of(m->type, &d))
		return PROTO_E_TYPE;
	total = proto_encoded_size(m);
	if (total > PROTO_MAX_MSG || total > cap)
		return PROTO_E_TOOBIG;
	/* A length prefix must hold its string. */
	for (size_t i = 0; i < d.nfields; i++) {
		const struct field_desc *f = &d.fields[i];
		const struct proto_str *s =
		    (const struct proto_str *)(body + f->off);

		if (f->kind == FK_STR && s->len > UINT16_MAX)
			return PROTO_E_TOOBIG;
	}

	put_be(buf + 0, PROTO_MAGIC, 2);
	buf[2] = PROTO_VERSION;
	buf[3] = m->type;
	buf[4] = m->src_role;
	buf[5] = m->src_instance;
	put_be(buf + 6, 0, 2);
	put_be(buf + 8, total - PROTO_HDR_LEN, 4);
	pos = PROTO_HDR_LEN;
	for (size_t i = 0; i < d.nfields; i++) {
		const struct field_desc *f = &d.fields[i];
		size_t w = kind_width(f->kind);

		if (f->kind == FK_STR || f->kind == FK_BLOB) {
			const struct proto_str *s =
			    (const struct proto_str *)(body + f->off);

			assert(s->len == 0 || s->p != NULL);
			put_be(buf + pos, s->len, w);
			pos += w;
			if (s->len > 0)
				memcpy(buf + pos, s->p, s->len);
			pos += s->len;
		} else {
			put_be(buf + pos, read_fixed(body + f->off, f->kind),
			    w);
			pos += w;
		}
	}
	assert(pos == total);
	*len = total;
	return PROTO_OK;
}

int
proto_decode(const uint8_t *buf, size_t len, struct proto_msg *out)
{
	unsigned char *body;
	struct msg_desc d;
	size_t pos, blen;

	memset(out, 0, sizeof(*out));
	if (buf == NULL || len < PROTO_HDR_LEN)
		return PROTO_E_SHORT;
	if (get_be(buf, 2) != PROTO_MAGIC)
		return PROTO_E_MAGIC;
	if (buf[2] != PROTO_VERSION)
		return PROTO_E_VERSION;
	if (get_be(buf + 6, 2) != 0)
		return PROTO_E_RESERVED;
	if (!msg_desc_of(buf[3], &d))
		return PROTO_E_TYPE;
	if (buf[4] >= ROLE_COUNT)
		return PROTO_E_SOURCE;
	blen = (size_t)get_be(buf + 8, 4);
	if (blen != len - PROTO_HDR_LEN)
		return PROTO_E_LENGTH;

	body = (unsigned char *)&out->u;
	pos = PROTO_HDR_LEN;
	for (size_t i = 0; i < d.nfields; i++) {
		const struct field_desc *f = &d.fields[i];
		size_t w = kind_width(f->kind);
		uint64_t v;

		if (len - pos < w)
			goto field;
		v = get_be(buf + pos, w);
		pos += w;
		if (f->kind == FK_STR || f->kind == FK_BLOB) {
			struct proto_str *s =
			    (struct proto_str *)(void *)(body + f->off);

			if (len - pos < v)
				goto field;
			s->p = (const char *)(buf + pos);
			s->len = (uint32_t)v;
			pos += (size_t)v;
		} else {
			write_fixed(body + f->off, f->kind, v);
		}
	}
	if (pos != len) {
		memset(out, 0, sizeof(*out));
		return PROTO_E_TRAILING;
	}
	out->type = buf[3];
	out->src_role = buf[4];
	out->src_instance = buf[5];
	return PROTO_OK;
field:
	memset(out, 0, sizeof(*out)); /* no half-decoded message */
	return PROTO_E_FIELD;
}
