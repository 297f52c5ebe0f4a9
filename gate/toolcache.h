/*
 * toolcache - the rows of the tool cache in the LMDB table "cache"
 * (SPEC section 7): naming, the key of a tool call, per-namespace
 * statistics and clearing a namespace.
 *
 * A namespace is "<namespace>_v<version>" of the tool's cache settings
 * (raising the version starts an empty namespace; the old one's rows
 * expire on their TTL).  A row's key is "<namespace>|<64 hex digits>",
 * the digits the SHA-256 of the tool's name, a NUL, and the canonical
 * JSON of the arguments (object keys sorted, no spaces): the same call
 * has the same key whatever the order of its arguments.
 *
 * Owns nothing; pure but for the store reads and deletes.
 */
#ifndef RG_TOOLCACHE_H
#define RG_TOOLCACHE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "store/store.h"

#define TC_NS_MAX 96                   /* a namespace, with its NUL */
#define TC_KEY_MAX (TC_NS_MAX + 1 + 64) /* a row's key, with its NUL */
#define TC_CLEAR_BATCH 1000            /* rows per transaction of a clear */

/* tc_ns_valid - a namespace is 1..TC_NS_MAX-1 of [A-Za-z0-9_.-]. */
int tc_ns_valid(const char *ns);

/* tc_namespace - "<name>_v<version>" into out; -1 if it is not valid. */
int tc_namespace(const char *name, unsigned version, char *out, size_t len);

/* tc_key - the row key of tool(args) in namespace ns; -1 if ns is not
 * valid or args cannot be encoded. */
int tc_key(const char *ns, const char *tool, const json_t *args, char *out,
    size_t len);

/* tc_get - the cached result of tool(args) in namespace ns at now: 0 and
 * the body (*body malloc'd, *len bytes), or -1 when there is none
 * (absent, expired, or ns not valid). */
int tc_get(struct store *st, const char *ns, const char *tool,
    const json_t *args, uint64_t now, void **body, size_t *len);

/* tc_put - inside txn, the result of tool(args) in ns until expires (ms);
 * STORE_EINVAL when ns is not valid. */
int tc_put(struct store_txn *txn, const char *ns, const char *tool,
    const json_t *args, const void *body, size_t len, uint64_t expires);

/*
 * tc_stats - live rows per namespace into by_ns (an object):
 * {"<ns>": {"entries", "bytes" (keys and values), "nextExpiresAt",
 * "lastExpiresAt"}}.  A key without a '|' counts under "".
 */
int tc_stats(struct store *st, json_t *by_ns);
/* tc_stats_upto - the same from at most max_rows rows (0: all); *cut
 * says whether rows were left unread. */
int tc_stats_upto(struct store *st, json_t *by_ns, size_t max_rows,
    int *cut);

/* tc_clear - remove every row of namespace ns, expired or not; *removed
 * gets the count.  STORE_EINVAL if ns is not valid. */
int tc_clear(struct store *st, const char *ns, size_t *removed);

/* tc_snapshot - the snapshot's toolCache section from st (NULL: the store
 * could not be opened; the section then carries "error"), from at most
 * max_rows rows (0: all; "truncated": true when rows were left). */
void tc_snapshot(json_t *snap, struct store *st, size_t max_rows);

#endif
