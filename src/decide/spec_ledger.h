/* spec_ledger.h — DATA/specs: which version number each spec text a data
 * directory's pipeline has decided with was given, and the text itself.
 *
 * Why. A decision record names its rule by index ("rule": 2) and the model
 * that scored it by version; after a reload that changed the rules, rule 2
 * is another rule, and nothing said which rules decided. An audit of a
 * decision months later (why was this card blocked?) needs the rules as
 * they were. So every spec text weir decides with gets a number for good,
 * by its content, as models do (model_ledger.h): the same text is the same
 * version at every start and reload, a new one the next number, and a
 * decision record names it ("spec": N). Spec files are edited in place,
 * unlike model files, so the ledger keeps each version's text too, in
 * DATA/specs.d/VERSION.yaml, written and fsynced before the ledger names
 * it. A comment is a new version: the digest is of the bytes.
 *
 * Its format is ledger.h's, the digest the spec text's. */
#ifndef WEIR_DECIDE_SPEC_LEDGER_H
#define WEIR_DECIDE_SPEC_LEDGER_H

#include <stddef.h>
#include <stdint.h>

#define SPEC_LEDGER_FILE "specs"
#define SPEC_COPIES_DIR  "specs.d"

/* The version of spec `text` (len bytes, loaded from path) in DATADIR/specs.
 * When the ledger has no such text: with add, its copy is written and it
 * becomes the next version; without, *version is 0. 0 or an error (err). */
int spec_ledger_version(const char *datadir, const char *text, size_t len, const char *path,
                        int add, uint64_t *version, char *err, size_t errlen);

/* The copy of version `version`'s text, DATADIR/specs.d/VERSION.yaml, into
 * path: 1 if the ledger names that version, else 0. */
int spec_ledger_copy(const char *datadir, uint64_t version, char *path, size_t cap);

/* Where version `version` was first loaded from (its relative model path is
 * of that folder): 1, or 0 if the ledger does not name it. */
int spec_ledger_origin(const char *datadir, uint64_t version, char *path, size_t cap);

#endif
