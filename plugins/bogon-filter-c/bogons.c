// The bogon rules of bogon-filter-c (see bogons.h): the lists, the rule for one
// route, and the column functions that decide whole batches with lookup tables.

#include "bogons.h"

const struct bogon BOGONS_V4[] = {
    {0x00000000, 8, "0.0.0.0/8"},         // "this" network
    {0x0a000000, 8, "10.0.0.0/8"},        // private (RFC 1918)
    {0x64400000, 10, "100.64.0.0/10"},    // shared address space (carrier-grade NAT)
    {0x7f000000, 8, "127.0.0.0/8"},       // loopback
    {0xa9fe0000, 16, "169.254.0.0/16"},   // link local
    {0xac100000, 12, "172.16.0.0/12"},    // private (RFC 1918)
    {0xc0000000, 24, "192.0.0.0/24"},     // IETF protocol assignments
    {0xc0000200, 24, "192.0.2.0/24"},     // documentation (TEST-NET-1)
    {0xc0a80000, 16, "192.168.0.0/16"},   // private (RFC 1918)
    {0xc6120000, 15, "198.18.0.0/15"},    // benchmarking
    {0xc6336400, 24, "198.51.100.0/24"},  // documentation (TEST-NET-2)
    {0xcb007100, 24, "203.0.113.0/24"},   // documentation (TEST-NET-3)
    {0xe0000000, 4, "224.0.0.0/4"},       // multicast
    {0xf0000000, 4, "240.0.0.0/4"},       // reserved
};
const size_t BOGONS_V4_COUNT = sizeof BOGONS_V4 / sizeof BOGONS_V4[0];

const struct bogon BOGONS_V6[] = {
    {0x0000000000000000, 8, "::/8"},            // loopback, unspecified, IPv4-mapped and -compatible
    {0x0100000000000000, 64, "100::/64"},       // discard only
    {0x20010db800000000, 32, "2001:db8::/32"},  // documentation
    {0xfc00000000000000, 7, "fc00::/7"},        // unique local
    {0xfe80000000000000, 10, "fe80::/10"},      // link local
    {0xfec0000000000000, 10, "fec0::/10"},      // site local (deprecated)
    {0xff00000000000000, 8, "ff00::/8"},        // multicast
};
const size_t BOGONS_V6_COUNT = sizeof BOGONS_V6 / sizeof BOGONS_V6[0];

// Only IPv6 routes inside this prefix (global unicast) are accepted at all.
static const uint64_t V6_ALLOWED = 0x2000000000000000;
static const uint8_t V6_ALLOWED_LENGTH = 3;

// Whether the route address/length lies inside prefix/prefix_length, all of them
// within a `bits`-bit number (32, or 64 for the high half of IPv6).
static bool inside(uint64_t address, uint8_t length, unsigned bits, uint64_t prefix,
                   uint8_t prefix_length) {
    if (length < prefix_length) return false;
    unsigned shift = bits - prefix_length;
    return shift >= 64 || address >> shift == prefix >> shift;
}

bool bogons_is_bogon_v4(uint32_t address, uint8_t length) {
    if (length > BOGONS_V4_MAX_LENGTH) return true;
    for (size_t i = 0; i < BOGONS_V4_COUNT; i++) {
        if (inside(address, length, 32, BOGONS_V4[i].address, BOGONS_V4[i].length)) return true;
    }
    return false;
}

bool bogons_is_bogon_v6(uint64_t high, uint8_t length) {
    if (length > BOGONS_V6_MAX_LENGTH) return true;
    if (!inside(high, length, 64, V6_ALLOWED, V6_ALLOWED_LENGTH)) return true;
    for (size_t i = 0; i < BOGONS_V6_COUNT; i++) {
        if (inside(high, length, 64, BOGONS_V6[i].address, BOGONS_V6[i].length)) return true;
    }
    return false;
}

// --- Column decisions ---------------------------------------------------------
//
// As in bogon-filter-py: both families use a table indexed by the first 16 bits of
// the address. Its entry is a threshold t: a route whose first 16 bits are that key
// is a bogon exactly when its length >= t. Exact, because a bogon P/L with L <= 16
// covers whole keys, and a route starting with such a key lies inside P/L exactly
// when its length >= L. So a key's threshold is the smallest such L, or the length
// limit + 1 (25, 49) where no bogon covers the key; as no threshold exceeds limit + 1,
// every route over the limit is rejected too. A key in which a bogon longer than /16
// starts (192.0.2.0/24 in 192.0) gets EXAMINE instead, and its routes are decided
// one by one by the rules above: rare, and still cheap.

#define KEY_BITS 16
#define KEYS (1u << KEY_BITS)
#define EXAMINE 255  // larger than any real length

static uint8_t v4_table[KEYS];
static uint8_t v6_table[KEYS];
static bool ready;

static void threshold_table(uint8_t *table, unsigned bits, const struct bogon *list, size_t count,
                            uint8_t max_length) {
    for (uint32_t key = 0; key < KEYS; key++) table[key] = max_length + 1;
    for (size_t i = 0; i < count; i++) {
        uint32_t first = (uint32_t)(list[i].address >> (bits - KEY_BITS));
        if (list[i].length > KEY_BITS) {
            table[first] = EXAMINE;
            continue;
        }
        uint32_t end = first + (1u << (KEY_BITS - list[i].length));
        for (uint32_t key = first; key < end; key++) {
            if (table[key] != EXAMINE && list[i].length < table[key]) table[key] = list[i].length;
        }
    }
}

void bogons_init(void) {
    if (ready) return;
    threshold_table(v4_table, 32, BOGONS_V4, BOGONS_V4_COUNT, BOGONS_V4_MAX_LENGTH);
    threshold_table(v6_table, 64, BOGONS_V6, BOGONS_V6_COUNT, BOGONS_V6_MAX_LENGTH);
    // Every key outside 2000::/3 is rejected from the allowed prefix's length on
    // (shorter routes are refused by the floor below). That decides such a key
    // whole, so it needs no EXAMINE (100::/64 lies there).
    unsigned shift = KEY_BITS - V6_ALLOWED_LENGTH;
    for (uint32_t key = 0; key < KEYS; key++) {
        if (key >> shift != V6_ALLOWED >> (64 - V6_ALLOWED_LENGTH)) {
            if (v6_table[key] == EXAMINE || v6_table[key] > V6_ALLOWED_LENGTH) {
                v6_table[key] = V6_ALLOWED_LENGTH;
            }
        }
    }
    ready = true;
}

void bogons_v4_verdicts(const uint32_t *addresses, const uint8_t *lengths, size_t count,
                        uint32_t *verdicts) {
    bogons_init();
    for (size_t i = 0; i < count; i++) {
        uint8_t t = v4_table[addresses[i] >> 16], length = lengths[i];
        verdicts[i] = length >= t ? 1 : t != EXAMINE ? 0 : bogons_is_bogon_v4(addresses[i], length);
    }
}

void bogons_v6_verdicts(const uint64_t *addresses, const uint8_t *lengths, size_t count,
                        uint32_t *verdicts) {
    bogons_init();
    for (size_t i = 0; i < count; i++) {
        uint64_t high = addresses[2 * i];
        uint8_t t = v6_table[high >> 48], length = lengths[i];
        // A route shorter than /3 is not inside 2000::/3, whatever its bits.
        verdicts[i] = length < V6_ALLOWED_LENGTH || length >= t ? 1
                      : t != EXAMINE ? 0
                                     : bogons_is_bogon_v6(high, length);
    }
}
