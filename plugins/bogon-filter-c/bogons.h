// The bogon rules of bogon-filter-c, in plain C (no WIT bindings: bogons.c builds
// and is tested natively too, see tests/test_bogons.c).
//
// Routes are integers, as in `wasmbgp:plugin/types`: an IPv4 address is a u32
// (192.0.2.0 = 0xc0000200), an IPv6 address two u64 halves, high first.
//
// A route (address, length) lies inside a prefix P/L when length >= L and the first
// L bits of the address are those of P. A route is a bogon, and is rejected, when
// - IPv4: it is longer than /24, or lies inside one of the IPv4 bogons;
// - IPv6: it is longer than /48, or does not lie inside 2000::/3 (global unicast;
//   so ::/0 is rejected too), or lies inside one of the IPv6 bogons.
// A route shorter than a bogon prefix (0.0.0.0/0, 8.0.0.0/5) merely covers it.

#ifndef BOGONS_H
#define BOGONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BOGONS_V4_MAX_LENGTH 24
#define BOGONS_V6_MAX_LENGTH 48

// A bogon prefix: for IPv4 the address is in the low 32 bits, for IPv6 it is the
// high u64 (every IPv6 bogon is /64 or shorter).
struct bogon {
    uint64_t address;
    uint8_t length;
    const char *text;
};

extern const struct bogon BOGONS_V4[];
extern const size_t BOGONS_V4_COUNT;
extern const struct bogon BOGONS_V6[];
extern const size_t BOGONS_V6_COUNT;

// The rules for one route, stated directly. For IPv6 only the high u64 matters: a
// route longer than /48 is rejected anyway, one of /48 or shorter is decided by its
// first 48 bits.
bool bogons_is_bogon_v4(uint32_t address, uint8_t length);
bool bogons_is_bogon_v6(uint64_t high, uint8_t length);

// Builds the lookup tables the column functions use (idempotent; they are also
// built by the first column call).
void bogons_init(void);

// Column decisions: verdicts[i] = 0 (accept) or 1 (reject) for route i. `addresses`
// of IPv6 holds two u64 per route, high then low.
void bogons_v4_verdicts(const uint32_t *addresses, const uint8_t *lengths, size_t count,
                        uint32_t *verdicts);
void bogons_v6_verdicts(const uint64_t *addresses, const uint8_t *lengths, size_t count,
                        uint32_t *verdicts);

#endif
