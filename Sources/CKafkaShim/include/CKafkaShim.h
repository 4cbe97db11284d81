#ifndef CKAFKASHIM_H
#define CKAFKASHIM_H
#include <stddef.h>
#include <stdint.h>

/// Continues a CRC32C (Castagnoli) over `length` bytes. Pass 0 to start; the result is final
/// (Kafka's record batch CRC is the plain CRC32C with the usual pre/post inversion).
uint32_t kafka_crc32c(uint32_t crc, const void *data, size_t length);

/// The table-driven version, used where SSE4.2 is missing; exported so tests can compare the two.
uint32_t kafka_crc32c_portable(uint32_t crc, const void *data, size_t length);

/// 1 when the SSE4.2 CRC32 instruction is used.
int kafka_crc32c_hardware_available(void);

#endif
