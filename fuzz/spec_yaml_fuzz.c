/* spec_yaml_fuzz.c — fuzz target for spec loading: any bytes as a spec file.
 * Loading either succeeds (and the spec is freed) or fails with a message
 * that starts with the file name; it never crashes, leaks or hangs. */
#include <stdint.h>
#include <string.h>

#include "base/error.h"
#include "spec/spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    spec_t *s = NULL;
    char err[1024];
    err[0] = '\0';
    int rc = spec_load_string((const char *)data, size, "fuzz.yaml", &s, err, sizeof err);
    if (rc == 0) {
        weir_assert(s != NULL);
        spec_free(s);
    } else {
        weir_assert(s == NULL && strncmp(err, "fuzz.yaml:", 10) == 0);
    }
    return 0;
}
