/* decode.c — JSON values to typed event fields (see decode.h). */
#include "spec/decode.h"

#include <math.h>
#include <string.h>

#include "base/error.h"

#define MAX_EXACT_INT 9007199254740992.0 /* 2^53 */

static const char *json_kind(const cJSON *j)
{
    if (cJSON_IsString(j)) return "a string";
    if (cJSON_IsNumber(j)) return "a number";
    if (cJSON_IsBool(j)) return "a bool";
    if (cJSON_IsArray(j)) return "an array";
    if (cJSON_IsObject(j)) return "an object";
    return "an invalid value";
}

static int exact_int(double d, int64_t *out)
{
    if (!(fabs(d) <= MAX_EXACT_INT) || d != floor(d)) return -1;
    *out = (int64_t)d;
    return 0;
}

int spec_decode_value(const spec_field_t *f, const cJSON *j, expr_value_t *out, char *err,
                      size_t errlen)
{
    if (!j || cJSON_IsNull(j)) {
        *out = expr_null();
        return 0;
    }
    int64_t i;
    switch (f->type) {
    case EXPR_STRING:
        if (!cJSON_IsString(j)) break;
        *out = expr_string(j->valuestring, strlen(j->valuestring));
        return 0;
    case EXPR_INT:
        if (!cJSON_IsNumber(j)) break;
        if (exact_int(j->valuedouble, &i))
            return weir_errf(err, errlen, WEIR_EINVAL,
                             "field '%s': expected an int (a whole number up to 2^53), got %.17g",
                             f->name, j->valuedouble);
        *out = expr_int(i);
        return 0;
    case EXPR_FLOAT:
        if (!cJSON_IsNumber(j)) break;
        if (!isfinite(j->valuedouble))
            return weir_errf(err, errlen, WEIR_EINVAL, "field '%s': number out of range", f->name);
        *out = expr_float(j->valuedouble);
        return 0;
    case EXPR_BOOL:
        if (!cJSON_IsBool(j)) break;
        *out = expr_bool(cJSON_IsTrue(j));
        return 0;
    case EXPR_TIME:
        if (cJSON_IsNumber(j)) {
            if (exact_int(j->valuedouble, &i))
                return weir_errf(err, errlen, WEIR_EINVAL,
                                 "field '%s': a time must be whole epoch milliseconds, got %.17g",
                                 f->name, j->valuedouble);
            *out = expr_time(i);
            return 0;
        }
        if (cJSON_IsString(j)) {
            size_t n = strlen(j->valuestring);
            if (expr_parse_rfc3339(j->valuestring, n, &i))
                return weir_errf(err, errlen, WEIR_EINVAL,
                                 "field '%s': '%.40s' is not an RFC 3339 time (such as "
                                 "2024-05-01T12:00:00Z) nor epoch milliseconds",
                                 f->name, j->valuestring);
            *out = expr_time(i);
            return 0;
        }
        return weir_errf(err, errlen, WEIR_EINVAL,
                         "field '%s': expected a time (epoch milliseconds or an RFC 3339 string), "
                         "got %s",
                         f->name, json_kind(j));
    default:
        break;
    }
    return weir_errf(err, errlen, WEIR_EINVAL, "field '%s': expected %s %s, got %s", f->name,
                     f->type == EXPR_INT ? "an" : "a", expr_type_name(f->type), json_kind(j));
}

int spec_decode_event(const spec_source_t *src, const cJSON *obj, expr_value_t *fields, char *err,
                      size_t errlen)
{
    if (!cJSON_IsObject(obj))
        return weir_errf(err, errlen, WEIR_EINVAL, "an event must be a JSON object, got %s",
                         json_kind(obj));
    for (uint32_t i = 0; i < src->nfields; i++) {
        const spec_field_t *f = &src->fields[i];
        /* Case-sensitive: field names are identifiers in expressions. */
        const cJSON *j = cJSON_GetObjectItemCaseSensitive(obj, f->name);
        int rc = spec_decode_value(f, j, &fields[i], err, errlen);
        if (rc) return rc;
    }
    const spec_field_t *key = &src->fields[src->key_slot];
    if (fields[src->key_slot].type == EXPR_NULL)
        return weir_errf(err, errlen, WEIR_EINVAL, "missing key field '%s'", key->name);
    /* The log keeps a record's key with it and refuses keys over 64 KiB:
     * refuse them here, at the edge, before anything is appended. */
    if (fields[src->key_slot].type == EXPR_STRING && fields[src->key_slot].as.s.len > SPEC_MAX_KEY)
        return weir_errf(err, errlen, WEIR_EINVAL, "key field '%s' is longer than %d bytes", key->name,
                         SPEC_MAX_KEY);
    const spec_field_t *time = &src->fields[src->time_slot];
    if (fields[src->time_slot].type == EXPR_NULL)
        return weir_errf(err, errlen, WEIR_EINVAL, "missing time field '%s'", time->name);
    return 0;
}
