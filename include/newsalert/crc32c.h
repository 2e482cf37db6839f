/* CRC-32C (Castagnoli), the checksum of journal and quarantine records. */
#ifndef NEWSALERT_CRC32C_H
#define NEWSALERT_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* The CRC-32C of buf[0..len) continued from crc (0 to start): the iSCSI
 * polynomial 0x1EDC6F41, reflected, initial and final XOR 0xFFFFFFFF, so
 * na_crc32c(0, "123456789", 9) == 0xE3069283. buf may be NULL when len is 0. */
uint32_t na_crc32c(uint32_t crc, const void *buf, size_t len);
/* The same with the byte-wise table, whatever the CPU has (na_crc32c uses
 * the CPU's instruction where there is one); for tests. */
uint32_t na_crc32c_portable(uint32_t crc, const void *buf, size_t len);

#endif
