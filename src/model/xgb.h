/* xgb.h — loader of XGBoost JSON models (Booster.save_model("m.json")),
 * schema 1.x and 2.x: gbtree, dart and gblinear boosters. */
#ifndef WEIR_MODEL_XGB_H
#define WEIR_MODEL_XGB_H

#include <stddef.h>

#include "model/model.h"

/* Parses text[len] into *d (which must be zeroed). On error fills err with a
 * sentence naming the field, tree and node; *d may hold partial results the
 * caller frees with model_desc_clear. */
int xgb_load(const char *text, size_t len, model_desc_t *d, char *err, size_t errlen);

#endif
