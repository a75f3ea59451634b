/* model_ledger.h — DATA/models: which version number each model a data
 * directory's pipeline has scored with was given.
 *
 * Why. A decision record names the model that decided it ("model": N). A
 * number handed out by the process (1 at start, +1 per reload) names
 * different models after a restart: an audit of a decision, `weir verify`,
 * or a comparison of two models' decisions could not tell which file
 * decided. The ledger gives a model one number for good, by its content (a
 * digest of the file's bytes, model_digest): the same file is the same
 * version at every start and reload; a new one is the next number. As a
 * model registry's versions (MLflow's, Triton's directories) do, but kept
 * beside the decisions it explains, in the data directory.
 *
 * Its format is ledger.h's, the digest the model file's (model_digest).
 *
 * THE FIRST LEDGER of a directory whose decision log has records already
 * (decisions of a weir before the ledger, numbered 1, 2, ... by each
 * process; or a ledger deleted) numbers from above the largest version
 * those records name (`floor`, decision_log_max_model), and says so in a
 * comment line: a number is never given to two models. */
#ifndef WEIR_DECIDE_MODEL_LEDGER_H
#define WEIR_DECIDE_MODEL_LEDGER_H

#include <stddef.h>
#include <stdint.h>

#define MODEL_LEDGER_FILE "models"

/* The version of the model whose digest is given, in DATADIR/models. When
 * the ledger has no such model: with add, it is added as the next version
 * (1 for the first) with path and the time now; without, *version is 0.
 * A ledger that is not weir's format is an error naming its line, so that a
 * damaged one is never rewritten without it. 0, or WEIR_EINVAL (the line),
 * WEIR_EIO (reading or writing it, errno's words). */
int model_ledger_version(const char *datadir, const char *digest, const char *path, int add,
                         uint64_t floor, uint64_t *version, char *err, size_t errlen);
/* Whether DATADIR/models exists (as anything: a link to nothing too). */
int model_ledger_exists(const char *datadir);

/* Where version `version` was when first loaded (its PATH), into path:
 * 1, or 0 when the ledger has no such version or cannot be read. (The file
 * there may have changed since: its digest says.) */
int model_ledger_path(const char *datadir, uint64_t version, char *path, size_t cap);

#endif
