/* model_ledger.c — DATA/models, the versions of a data directory's models
 * (see model_ledger.h): the ledger of ledger.h, of model files. */
#include "decide/model_ledger.h"

#include "decide/ledger.h"

static const ledger_kind_t MODELS = {
    MODEL_LEDGER_FILE, "model",
    "# weir model versions: version, XXH3-128 of the file, first loaded (UTC), path\n",
    "# versions up to %llu are in decisions made before this ledger (numbered by each process): "
    "they name no file here\n"};

int model_ledger_version(const char *datadir, const char *digest, const char *path, int add,
                         uint64_t floor, uint64_t *version, char *err, size_t errlen)
{
    return ledger_version(&MODELS, datadir, digest, path, add, floor, version, err, errlen);
}

int model_ledger_exists(const char *datadir)
{
    return ledger_exists(&MODELS, datadir);
}

int model_ledger_path(const char *datadir, uint64_t version, char *path, size_t cap)
{
    return ledger_path(&MODELS, datadir, version, path, cap);
}
