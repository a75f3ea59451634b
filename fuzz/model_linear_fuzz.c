/* model_linear_fuzz.c — fuzz target of the linear model loader; the body is
 * fuzz/model_fuzz.h, the corpus fuzz/corpus/model_linear/. */
#include "model_fuzz.h"
