/* lgbm.h — loader of LightGBM text models (Booster.save_model("m.txt"),
 * format v2 to v4): gbdt, dart and rf boosting. */
#ifndef WEIR_MODEL_LGBM_H
#define WEIR_MODEL_LGBM_H

#include <stddef.h>

#include "model/model.h"

/* Parses text[len] into *d (which must be zeroed). On error fills err with a
 * sentence naming the line, tree and field; *d may hold partial results the
 * caller frees with model_desc_clear. */
int lgbm_load(const char *text, size_t len, model_desc_t *d, char *err, size_t errlen);

#endif
