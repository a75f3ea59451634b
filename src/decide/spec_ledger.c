/* spec_ledger.c — DATA/specs and DATA/specs.d (see spec_ledger.h). */
#include "decide/spec_ledger.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/error.h"
#include "base/fileio.h"
#include "decide/ledger.h"

static const ledger_kind_t SPECS = {
    SPEC_LEDGER_FILE, "spec",
    "# weir spec versions: version, XXH3-128 of the text, first loaded (UTC), path; the texts are "
    "in " SPEC_COPIES_DIR "/VERSION.yaml\n",
    "# versions up to %llu were given before this ledger: their texts are in " SPEC_COPIES_DIR
    "\n"};

static void copy_path(const char *datadir, uint64_t version, char *path, size_t cap)
{
    snprintf(path, cap, "%s/" SPEC_COPIES_DIR "/%" PRIu64 ".yaml", datadir, version);
}

/* The largest VERSION of DATADIR/specs.d/VERSION.yaml, 0 if none. The
 * copies outlive a ledger deleted by hand: numbering from the ledger alone
 * gave a new text version 1 again and overwrote the first text's copy
 * (an audit's record "spec": 1 then named two texts). */
static uint64_t copies_max(const char *datadir)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/" SPEC_COPIES_DIR, datadir);
    DIR *d = opendir(dir);
    uint64_t max = 0;
    if (!d) return 0;
    for (struct dirent *e; (e = readdir(d));) {
        char *end;
        unsigned long long v = strtoull(e->d_name, &end, 10);
        if (end != e->d_name && !strcmp(end, ".yaml") && v > max) max = v;
    }
    closedir(d);
    return max;
}

int spec_ledger_version(const char *datadir, const char *text, size_t len, const char *path,
                        int add, uint64_t *version, char *err, size_t errlen)
{
    char digest[LEDGER_DIGEST_LEN + 1], why[600];
    ledger_digest(text, len, digest);
    int rc = ledger_version(&SPECS, datadir, digest, path, 0, 0, version, err, errlen);
    if (rc || *version || !add) return rc;
    /* A new text: its copy first, as the version it is about to get (one
     * writer: the process holding the data directory), so that the ledger
     * never names a version without its text. A crash between the two
     * leaves a copy the next new text overwrites. */
    uint64_t last, floor = copies_max(datadir);
    if ((rc = ledger_last(&SPECS, datadir, &last, err, errlen)) != 0) return rc;
    if (last < floor) last = floor;
    char dir[4096], copy[4200];
    snprintf(dir, sizeof dir, "%s/" SPEC_COPIES_DIR, datadir);
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return weir_errf(err, errlen, WEIR_EIO, "cannot create %s: %s", dir, strerror(errno));
    copy_path(datadir, last + 1, copy, sizeof copy);
    weir_outfile_t o;
    if ((rc = weir_outfile_open(&o, copy, why, sizeof why)) == 0) {
        fwrite(text, 1, len, o.f);
        rc = weir_outfile_commit(&o, why, sizeof why);
    }
    if (rc) return weir_errf(err, errlen, rc, "the spec ledger's copy: %s", why);
    rc = ledger_version(&SPECS, datadir, digest, path, 1, floor, version, err, errlen);
    if (rc == 0 && *version != last + 1) /* (another writer: the data directory's lock forbids) */
        rc = weir_errf(err, errlen, WEIR_EIO,
                       "the spec ledger gave version %" PRIu64 " where %" PRIu64
                       " was copied: is another process writing %s?",
                       *version, last + 1, datadir);
    return rc;
}

int spec_ledger_origin(const char *datadir, uint64_t version, char *path, size_t cap)
{
    return ledger_path(&SPECS, datadir, version, path, cap);
}

int spec_ledger_copy(const char *datadir, uint64_t version, char *path, size_t cap)
{
    char first_path[4096]; /* (where it was first loaded from: not needed here) */
    if (!ledger_path(&SPECS, datadir, version, first_path, sizeof first_path)) return 0;
    copy_path(datadir, version, path, cap);
    return 1;
}
