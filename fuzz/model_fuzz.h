/* model_fuzz.h — the body shared by the model loader fuzz targets
 * (model_xgb, model_lgbm, model_linear): model_load_mem sniffs the format,
 * so one body serves all three; each target exists for its own corpus
 * (fuzz/corpus/model_<loader>/). Any input must load or fail with an error,
 * never crash or read out of bounds; a model that loads must score and
 * explain rows (all-missing, zeros, large) without fault. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "base/alloc.h"
#include "model/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size copy so that a read past the end is caught. */
    char *text = weir_malloc(size ? size : 1);
    if (size) memcpy(text, data, size);
    weir_model_t *m = NULL;
    char err[512];
    if (model_load_mem(text, size, "fuzz", &m, err, sizeof err) == 0) {
        uint32_t F = model_num_features(m);
        double *x = weir_malloc((F ? F : 1) * sizeof *x * 3);
        double *out = weir_malloc((model_num_contribs(m) + model_num_outputs(m, 1)) * sizeof *out * 3);
        for (uint32_t f = 0; f < F; f++) {
            x[f] = NAN;
            x[F + f] = 0;
            x[2 * F + f] = f % 2 ? 1e30 : -3.5;
        }
        for (int r = 0; r < 3; r++) {
            model_predict_row(m, x + r * F, out, 0);
            model_predict_row(m, x + r * F, out, 1);
            model_contrib_row(m, x + r * F, out);
        }
        model_predict_batch(m, x, 3, F, out, 0);
        weir_free(x);
        weir_free(out);
        model_release(m);
    }
    weir_free(text);
    return 0;
}
