/* model_lgbm_fuzz.c — fuzz target of the lgbm model loader; the body is
 * fuzz/model_fuzz.h, the corpus fuzz/corpus/model_lgbm/. */
#include "model_fuzz.h"
