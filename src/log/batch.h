/* batch.h — the record batch: the unit the log writes, checksums and reads.
 * The byte layout is stated in log.h's design comment; this module encodes a
 * batch from records and validates/decodes one from untrusted bytes. */
#ifndef WEIR_LOG_BATCH_H
#define WEIR_LOG_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

#define BATCH_HEADER_SIZE 40
#define BATCH_MAGIC 1
/* A batch holding SOURCE records (LOG_REC_SOURCE), which came after magic
 * 1: a weir from before reads it as another format's batch and refuses it
 * (ANOTHER FORMAT'S BATCH) rather than take it for a tear and cut it. A
 * batch without them is written with magic 1, readable by every weir. */
#define BATCH_MAGIC_SOURCE 2
#define BATCH_MAX_SIZE (64u << 20)   /* a batch, header included */
#define BATCH_MAX_KEY (64u << 10)    /* a record's key */
#define BATCH_MAX_VALUE (16u << 20)  /* a record's value */
#define BATCH_MIN_LENGTH (BATCH_HEADER_SIZE - 12 + 6) /* header after length + 1 tiny record */

/* Header field offsets (little-endian). */
#define BATCH_OFF_BASE 0      /* u64 base offset */
#define BATCH_OFF_LENGTH 8    /* u32 bytes after this field */
#define BATCH_OFF_CRC 12      /* u32 CRC32C of bytes [16, 12 + length) */
#define BATCH_OFF_MAGIC 16    /* u8 */
#define BATCH_OFF_ATTR 17     /* u8 */
#define BATCH_OFF_RESERVED 18 /* u16, zero */
#define BATCH_OFF_COUNT 20    /* u32 record count, >= 1 */
#define BATCH_OFF_FIRST_TS 24 /* i64 timestamp of the first record */
#define BATCH_OFF_MAX_TS 32   /* i64 largest record timestamp */

#define BATCH_ATTR_HAS_TICK 0x01
#define BATCH_ATTR_HAS_SOURCE 0x02

typedef enum log_rec_type {
    LOG_REC_EVENT = 0,
    LOG_REC_TICK = 1, /* advances time on an idle partition; no key, value = tick payload */
    /* where the batch's events came from in a source outside weir (a Kafka
     * topic: serve/kafka_source.h); no key; not an event, and nothing the
     * engine reads: a replay passes it to its reader */
    LOG_REC_SOURCE = 2,
} log_rec_type_t;

/* One record, as given to an append or returned by a reader. Slices point
 * into the caller's memory (append) or the reader's buffer (read; valid
 * until the next read call). */
typedef struct log_rec {
    uint64_t offset; /* set by readers; ignored by append */
    int64_t ts;      /* append timestamp, ms since the epoch */
    log_rec_type_t type;
    weir_slice_t key;
    weir_slice_t value;
} log_rec_t;

typedef struct batch_info {
    uint64_t base;
    uint32_t count;
    uint32_t size; /* whole batch in bytes */
    uint8_t attr;
    int64_t first_ts;
    int64_t max_ts;
} batch_info_t;

/* Encodes recs[0..n) as one batch into out (reset first). The base offset is
 * left 0: it is patched under the partition lock by batch_set_base, which is
 * why the CRC does not cover it. Returns 0 or WEIR_ETOOBIG / WEIR_EINVAL
 * with a reason in err. */
int batch_encode(weir_buf_t *out, const log_rec_t *recs, size_t n, char *err, size_t errlen);
void batch_set_base(void *batch, uint64_t base);

/* Outcome of looking at bytes that should start a batch. */
typedef enum batch_status {
    BATCH_OK = 0,
    BATCH_SHORT,       /* fewer bytes than the header or the stated length: torn or EOF */
    BATCH_BAD_HEADER,  /* an impossible header (length, magic, count, timestamps) */
    BATCH_BAD_CRC,     /* checksum mismatch */
    BATCH_BAD_RECORDS, /* CRC matched but records do not decode as stated */
    BATCH_FOREIGN      /* another magic, and the CRC over its stated length holds */
} batch_status_t;

/* Reads the fixed header of p[0..avail) into info without checking the CRC.
 * Returns BATCH_OK, BATCH_SHORT (avail < header) or BATCH_BAD_HEADER. */
batch_status_t batch_peek(const unsigned char *p, size_t avail, batch_info_t *info);

/* Fully validates the batch at p[0..avail): header, length within avail, CRC,
 * and the records (offset deltas 0..count-1, timestamps matching the header,
 * lengths within bounds). On BATCH_OK fills info. Does not look at the base
 * offset's value (the caller checks continuity). */
batch_status_t batch_check(const unsigned char *p, size_t avail, batch_info_t *info);
const char *batch_status_str(batch_status_t s);

/* ANOTHER FORMAT'S BATCH. A batch header with a magic other than ours is
 * impossible to this weir, which would take it for a torn tail and cut the
 * file there, losing a whole segment that a newer weir wrote (a rollback).
 * A header with another magic, a plausible length and a CRC that holds over
 * that length is no tear: batch_check says BATCH_FOREIGN, and opening or
 * checking the log refuses it. batch_foreign_size: the stated size of such
 * a header (avail >= the header), so a scanner can read that much before
 * batch_check decides; 0 for our magic or an impossible length. */
size_t batch_foreign_size(const unsigned char *p, size_t avail);

/* Iterates the records of a batch already validated by batch_check. */
typedef struct batch_iter {
    const unsigned char *p, *end;
    uint64_t base;
    int64_t first_ts;
    uint32_t i, count;
} batch_iter_t;

void batch_iter_init(batch_iter_t *it, const unsigned char *batch, const batch_info_t *info);
/* Returns 1 and fills rec, or 0 when the batch is exhausted. */
int batch_iter_next(batch_iter_t *it, log_rec_t *rec);

#endif
