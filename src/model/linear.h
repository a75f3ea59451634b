/* linear.h — linear and logistic models: XGBoost's gblinear and weir's own
 * small JSON format (documented in linear.c).
 *
 * margin[g] = bias[g] + sum over present features f of w[f][g] * z(x[f]),
 * where z(x) = (x - mean[f]) / scale[f] when the model standardizes and x
 * otherwise. A missing input (NaN) adds nothing, as in XGBoost's gblinear
 * (for a standardized model this is imputing the mean). GBDT_F32 models
 * (gblinear) compute in float in feature order, as XGBoost does. */
#ifndef WEIR_MODEL_LINEAR_H
#define WEIR_MODEL_LINEAR_H

#include <stddef.h>
#include <stdint.h>

#include "model/gbdt.h"

typedef struct linear linear_t;

/* A model of nfeat features and ngroups outputs: w[f * ngroups + g] (copied),
 * bias[g] (copied; XGBoost's base margin already added by the caller).
 * mean and scale are NULL or [nfeat] (copied; scale must not be 0). */
linear_t *linear_new(gbdt_prec_t prec, uint32_t nfeat, uint32_t ngroups, const double *w,
                     const double *bias, const double *mean, const double *scale);
void linear_free(linear_t *l);

uint32_t linear_num_features(const linear_t *l);
uint32_t linear_num_groups(const linear_t *l);

void linear_predict_row(const linear_t *l, const double *x, double *out);
/* out[ngroups * (nfeat + 1)]: per group the term of each feature, then bias. */
void linear_contrib_row(const linear_t *l, const double *x, double *out);

/* Parses weir's linear JSON (see linear.c). On success *names gets an array
 * of nfeat weir_malloc'ed names (the caller owns both), *logistic is 1 for
 * the logistic link. Errors name the field. */
int linear_parse_json(const char *text, size_t len, linear_t **out, char ***names, int *logistic,
                      char *err, size_t errlen);

#endif
