// CRC32C (Castagnoli, reflected polynomial 0x82F63B78) as used by Kafka record batch v2.
// The hardware path runs three independent CRC32 instruction streams over three lanes of a block
// (the instruction has a latency of three cycles but a throughput of one), then folds the lanes
// together with precomputed "shift by N zero bytes" tables. Tables are computed at first use.
#include "CKafkaShim.h"
#include <string.h>
#include <pthread.h>

#define POLY 0x82F63B78u
#define LANE 4096  // bytes per lane in the three-way interleave

static uint32_t table8[8][256];      // slicing-by-8 tables for the portable path
static uint32_t shift_lane[4][256];  // multiplies a CRC by x^(8*LANE) mod P, one table per byte
static int have_sse42;
static pthread_once_t once = PTHREAD_ONCE_INIT;

// Multiply two polynomials modulo P (bit-reflected representation).
static uint32_t gf2_multiply(uint32_t a, uint32_t b) {
    uint32_t product = 0;
    for (int i = 0; i < 32; i++) {
        if (a & 0x80000000u) product ^= b;
        a <<= 1;
        b = (b & 1) ? (b >> 1) ^ POLY : b >> 1;
    }
    return product;
}

// x^(8*n) mod P in reflected form: the operator that appends n zero bytes to a CRC register.
static uint32_t zero_bytes_operator(size_t n) {
    uint32_t result = 0x80000000u;   // x^0
    uint32_t square = 0x00800000u;   // x^8 (one byte)
    while (n) {
        if (n & 1) result = gf2_multiply(result, square);
        square = gf2_multiply(square, square);
        n >>= 1;
    }
    return result;
}

static void init_tables(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ POLY : c >> 1;
        table8[0][i] = c;
    }
    for (int t = 1; t < 8; t++)
        for (int i = 0; i < 256; i++)
            table8[t][i] = (table8[t - 1][i] >> 8) ^ table8[0][table8[t - 1][i] & 0xff];
    uint32_t op = zero_bytes_operator(LANE);
    for (int byte = 0; byte < 4; byte++)
        for (uint32_t i = 0; i < 256; i++)
            shift_lane[byte][i] = gf2_multiply(i << (8 * byte), op);
#if defined(__x86_64__)
    __builtin_cpu_init();
    have_sse42 = __builtin_cpu_supports("sse4.2");
#endif
}

static uint32_t crc_portable_raw(uint32_t crc, const unsigned char *p, size_t n) {
    while (n && ((uintptr_t)p & 7)) { crc = (crc >> 8) ^ table8[0][(crc ^ *p++) & 0xff]; n--; }
    while (n >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        word ^= crc;
        crc = table8[7][word & 0xff] ^ table8[6][(word >> 8) & 0xff] ^ table8[5][(word >> 16) & 0xff] ^
              table8[4][(word >> 24) & 0xff] ^ table8[3][(word >> 32) & 0xff] ^ table8[2][(word >> 40) & 0xff] ^
              table8[1][(word >> 48) & 0xff] ^ table8[0][word >> 56];
        p += 8; n -= 8;
    }
    while (n--) crc = (crc >> 8) ^ table8[0][(crc ^ *p++) & 0xff];
    return crc;
}

static inline uint32_t shift_by_lane(uint32_t crc) {
    return shift_lane[0][crc & 0xff] ^ shift_lane[1][(crc >> 8) & 0xff] ^
           shift_lane[2][(crc >> 16) & 0xff] ^ shift_lane[3][crc >> 24];
}

#if defined(__x86_64__)
__attribute__((target("sse4.2")))
static uint32_t crc_hardware_raw(uint32_t crc, const unsigned char *p, size_t n) {
    uint64_t c0 = crc;
    while (n && ((uintptr_t)p & 7)) { c0 = __builtin_ia32_crc32qi((uint32_t)c0, *p++); n--; }
    while (n >= 3 * LANE) {
        uint64_t c1 = 0, c2 = 0;
        const unsigned char *end = p + LANE;
        do {
            uint64_t a, b, c;
            memcpy(&a, p, 8); memcpy(&b, p + LANE, 8); memcpy(&c, p + 2 * LANE, 8);
            c0 = __builtin_ia32_crc32di(c0, a);
            c1 = __builtin_ia32_crc32di(c1, b);
            c2 = __builtin_ia32_crc32di(c2, c);
            p += 8;
        } while (p < end);
        c0 = shift_by_lane((uint32_t)c0) ^ c1;
        c0 = shift_by_lane((uint32_t)c0) ^ c2;
        p += 2 * LANE;
        n -= 3 * LANE;
    }
    while (n >= 8) { uint64_t w; memcpy(&w, p, 8); c0 = __builtin_ia32_crc32di(c0, w); p += 8; n -= 8; }
    while (n--) c0 = __builtin_ia32_crc32qi((uint32_t)c0, *p++);
    return (uint32_t)c0;
}
#endif

uint32_t kafka_crc32c_portable(uint32_t crc, const void *data, size_t length) {
    pthread_once(&once, init_tables);
    return ~crc_portable_raw(~crc, (const unsigned char *)data, length);
}

uint32_t kafka_crc32c(uint32_t crc, const void *data, size_t length) {
    pthread_once(&once, init_tables);
#if defined(__x86_64__)
    if (have_sse42) return ~crc_hardware_raw(~crc, (const unsigned char *)data, length);
#endif
    return ~crc_portable_raw(~crc, (const unsigned char *)data, length);
}

int kafka_crc32c_hardware_available(void) {
    pthread_once(&once, init_tables);
    return have_sse42;
}
