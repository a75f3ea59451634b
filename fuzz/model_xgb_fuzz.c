/* model_xgb_fuzz.c — fuzz target of the xgb model loader; the body is
 * fuzz/model_fuzz.h, the corpus fuzz/corpus/model_xgb/. */
#include "model_fuzz.h"
