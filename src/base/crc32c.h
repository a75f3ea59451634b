/* crc32c.h — CRC-32C (Castagnoli), the checksum of log batches and
 * checkpoint files. Uses the SSE4.2 crc32 instruction when the CPU has it
 * (several GB/s), else a slicing-by-8 table. Both give identical results;
 * the unit test checks them against each other and against RFC 3720 vectors. */
#ifndef WEIR_BASE_CRC32C_H
#define WEIR_BASE_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* CRC-32C of buf, continuing from crc (pass 0 to start). */
uint32_t crc32c(uint32_t crc, const void *buf, size_t len);

/* The portable table implementation, exposed for the differential test. */
uint32_t crc32c_sw(uint32_t crc, const void *buf, size_t len);

#endif
