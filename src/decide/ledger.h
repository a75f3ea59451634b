/* ledger.h — a data directory's version ledgers: a number, for good, for
 * each content a pipeline decided with. The model ledger (model_ledger.h)
 * numbers model files, the spec ledger (spec_ledger.h) spec texts; a
 * decision record names both numbers, so an audit can say which model and
 * which rules decided it, across restarts and reloads.
 *
 * Format: text, one line per version, oldest first, after comment lines:
 *     VERSION DIGEST FIRST-LOADED PATH
 *     3 xxh128:9f0c...(32 hex) 2026-11-27T15:02:11Z /srv/models/fraud-v3.json
 * DIGEST is XXH3-128 of the content (what identifies it); FIRST-LOADED is
 * UTC; PATH is where the file was when first loaded (for people) and runs
 * to the end of line. The file is rewritten whole (a temporary file,
 * fsynced, renamed over it, the directory fsynced) before any decision
 * names the new version, so a crash leaves the old ledger or the new one,
 * and no decision names a version the ledger lacks. Its one writer is the
 * process holding the data directory (weir run); readers (weir verify)
 * take it as it is. A ledger that is not weir's format is an error naming
 * its line, so that a damaged one is never rewritten; a symlink to nothing
 * is refused, not replaced. */
#ifndef WEIR_DECIDE_LEDGER_H
#define WEIR_DECIDE_LEDGER_H

#include <stddef.h>
#include <stdint.h>

#define LEDGER_DIGEST_LEN 39 /* "xxh128:" and 32 hex digits */

typedef struct ledger_kind {
    const char *file;   /* DATADIR/file */
    const char *what;   /* "model", "spec": what the messages call a version's content */
    const char *header; /* the first line of a new ledger (a comment, with its newline) */
    /* a new ledger's second comment line when numbering starts above a
     * floor: a printf format of the floor (%llu) */
    const char *floor_note;
} ledger_kind_t;

/* The version of the content whose digest is given. When the ledger has
 * none: with add, it is added as the next version (1 for the first, or
 * floor + 1 if that is more) with path and the time now; without,
 * *version is 0. 0, or WEIR_EINVAL (the line), WEIR_EIO (errno's words). */
int ledger_version(const ledger_kind_t *k, const char *datadir, const char *digest,
                   const char *path, int add, uint64_t floor, uint64_t *version, char *err,
                   size_t errlen);
/* The newest version in the ledger (0: none, or no ledger). */
int ledger_last(const ledger_kind_t *k, const char *datadir, uint64_t *last, char *err,
                size_t errlen);
/* Whether DATADIR/file exists (as anything: a link to nothing too). */
int ledger_exists(const ledger_kind_t *k, const char *datadir);
/* Where version `version` was when first loaded (its PATH), into path:
 * 1, or 0 when the ledger has no such version or cannot be read. */
int ledger_path(const ledger_kind_t *k, const char *datadir, uint64_t version, char *path,
                size_t cap);
/* "xxh128:" and the XXH3-128 of data, hex, into out (LEDGER_DIGEST_LEN + 1 bytes). */
void ledger_digest(const void *data, size_t len, char *out);

#endif
