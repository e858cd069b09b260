/*
 * crc32c.h — CRC32C (Castagnoli), used by every on-disk record and every
 * wire frame.  sr_crc32c() is public (seshat/types.h); the portable path
 * alone is internal, for tests.
 */
#ifndef SR_CRC32C_H
#define SR_CRC32C_H

#include <seshat/types.h> /* sr_crc32c() is public */

/* The table-driven path alone (for tests). */
uint32_t crc32c_portable(uint32_t crc, const void *data, size_t len);

#endif
