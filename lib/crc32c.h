/*
 * crc32c.h — CRC32C (Castagnoli), used by every on-disk record and every
 * wire frame.  Internal to the library (hidden symbol).
 */
#ifndef SR_CRC32C_H
#define SR_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/*
 * Extend crc over len bytes.  Start with crc = 0; the result of one call
 * may be passed as crc to the next to checksum data in pieces.
 */
uint32_t sr_crc32c(uint32_t crc, const void *data, size_t len);
/* The table-driven path alone (for tests). */
uint32_t sr_crc32c_portable(uint32_t crc, const void *data, size_t len);

#endif
