/*
 * config - relgate's configuration: one knob table (conf/knobs.def) drives
 * parsing, environment overrides, validation, --help-config, redaction and
 * docs/config.md.
 *
 * Precedence: built-in default < JSON file < environment.  A key "a.b" is
 * member "b" of object "a" in the file; its environment form is
 * "RELGATE_A_B".  Knobs flagged KF_SEED (the runtime knobs) are
 * top-level members of the file and read from the environment under their
 * own name.  An invalid value is never replaced by its default: loading
 * fails with one line naming the key, the value and what is allowed.
 *
 * Owns: struct config and its memory.  Never logs a secret.
 */
#ifndef RG_CONFIG_H
#define RG_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

enum knob_type {
	KT_INT,      /* int64 in [min, max] */
	KT_BOOL,     /* true/false (env: true|false|1|0) */
	KT_STR,      /* string, length in [min, max] */
	KT_ENUM,     /* string, one of allowed ("a|b|c") */
	KT_ADDR,     /* "host:port" or "[v6]:port", port 1..65535 */
	KT_URL,      /* http:// or https:// URL */
	KT_STRLIST,  /* array of strings (env: JSON array or comma list) */
	KT_CIDRLIST, /* array of IPv4/IPv6 CIDRs */
	KT_JSON,     /* JSON value; allowed names the JSON type ("array") */
};

enum knob_flags {
	KF_SECRET = 1u << 0,   /* redacted as "***" everywhere */
	KF_RESTART = 1u << 1,  /* a reload keeps the running value */
	KF_SEED = 1u << 2,     /* runtime knob: env name = key, top-level */
	KF_OPTIONAL = 1u << 3, /* may be unset (NULL); default NULL */
	KF_PATH = 1u << 4,     /* a file or directory: config_resolve_paths */
};

/* Field type in struct config for each knob type. */
struct config_strlist {
	size_t n;
	char **v;
};
#define CONFIG_FIELD_KT_INT(id) int64_t id;
#define CONFIG_FIELD_KT_BOOL(id) int64_t id;
#define CONFIG_FIELD_KT_STR(id) char *id;
#define CONFIG_FIELD_KT_ENUM(id) char *id;
#define CONFIG_FIELD_KT_ADDR(id) char *id;
#define CONFIG_FIELD_KT_URL(id) char *id;
#define CONFIG_FIELD_KT_STRLIST(id) struct config_strlist id;
#define CONFIG_FIELD_KT_CIDRLIST(id) struct config_strlist id;
#define CONFIG_FIELD_KT_JSON(id) json_t *id;

/*
 * The table: KNOB(id, key, type, def, min, max, allowed, envdef, flags, doc)
 *   id      C member name in struct config
 *   key     file key ("http.listen") or runtime knob ("RATE_LIMIT_...")
 *   def     default as text, parsed like an environment value; NULL = unset
 *   min/max range for KT_INT, length bounds for KT_STR
 *   allowed "a|b" for KT_ENUM, JSON type name for KT_JSON, else NULL
 *   envdef  environment variable that supplies the default, or NULL
 */
#include "conf/knobs.def"

enum config_knob_id {
#define KNOB_ENUM(id, key, type, def, min, max, allowed, envdef, flags, doc) \
	KNOB_##id,
	CONFIG_KNOBS(KNOB_ENUM)
#undef KNOB_ENUM
	KNOB_COUNT
};

struct config {
#define KNOB_FIELD(id, key, type, def, min, max, allowed, envdef, flags, doc) \
	CONFIG_FIELD_##type(id)
	CONFIG_KNOBS(KNOB_FIELD)
#undef KNOB_FIELD
	/* where each value came from */
	unsigned char source[KNOB_COUNT];
	char *path; /* file it was loaded from, or NULL */
};

enum config_source { CONFIG_SRC_DEFAULT, CONFIG_SRC_FILE, CONFIG_SRC_ENV };

struct knob {
	const char *key;
	enum knob_type type;
	const char *def;
	int64_t min, max;
	const char *allowed;
	const char *envdef;
	unsigned flags;
	const char *doc;
	size_t offset; /* offsetof(struct config, id) */
};

extern const struct knob config_knobs[KNOB_COUNT];

enum config_load_flags {
	CONFIG_NO_ENV = 1u << 0,        /* ignore the environment (children) */
	CONFIG_FILE_OPTIONAL = 1u << 1, /* a missing file means defaults */
};

/*
 * config_load - defaults, then the file at path (NULL = none), then the
 * environment.  On failure returns NULL and writes one line (no newline)
 * to err naming the key, the offending value (redacted when secret) and
 * the allowed range or type.
 */
struct config *config_load(const char *path, unsigned flags, char *err,
    size_t errlen);
void config_free(struct config *cfg);

/*
 * config_resolve_paths - make every set KF_PATH knob absolute, a relative
 * one taken from dir (relgated's working directory at start).  Returns 0,
 * or -1 with one line in err when the absolute path is longer than the
 * knob allows.
 */
int config_resolve_paths(struct config *cfg, const char *dir, char *err,
    size_t errlen);

/* config_env_name - environment name of a knob (static buffer per call). */
const char *config_env_name(const struct knob *k, char *buf, size_t len);

/*
 * config_to_json - the effective config in file form (nested objects for
 * dotted keys, runtime knobs top-level).  redact: secrets that are set
 * become "***".  Unset optional knobs are null.
 */
json_t *config_to_json(const struct config *cfg, int redact);

/*
 * config_write_effective - write the unredacted effective config to path
 * (mode 0600, atomic rename) so children load exactly what was validated.
 * Returns 0 or -1 with errno.
 */
int config_write_effective(const struct config *cfg, const char *path);

/*
 * config_reload_merge - copy into next the running values of KF_RESTART
 * knobs that changed; each one is named in a warning line via warn().
 */
void config_keep_restart_knobs(struct config *next, const struct config *cur,
    void (*warn)(const char *key));

/* config_help - --help-config: every knob with env name, type, default,
 * range, flags and doc.  markdown!=0 prints docs/config.md's table. */
void config_help(FILE *out, int markdown);

#endif
