// Tests of bogons.c, built natively (no WIT bindings, no wasm):
//
//     cc -O2 -I plugins/bogon-filter-c plugins/bogon-filter-c/bogons.c \
//         plugins/bogon-filter-c/tests/test_bogons.c -o /tmp/test_bogons && /tmp/test_bogons
//
// The named routes of bogon-filter-py's test_bogons.py, every bogon probed at its
// edges, and the table-driven column functions checked against the one-route rules
// on every /16 key and on pseudo-random routes. Prints "N passed, N failed".

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bogons.h"

static unsigned passed, failed;

static void check(bool ok, const char *what, const char *route) {
    if (ok) {
        passed++;
    } else if (failed++ < 20) {
        fprintf(stderr, "FAIL %s: %s\n", what, route);
    }
}

// Parses "a.b.c.d/len" or an IPv6 "x:y::/len" (high u64 only; the low half is
// host bits for every route that can be accepted) into the column form.
static bool parse(const char *text, bool *v6, uint64_t *address, uint8_t *length) {
    const char *slash = strchr(text, '/');
    if (!slash) return false;
    *length = (uint8_t)atoi(slash + 1);
    if (!strchr(text, ':')) {
        unsigned a, b, c, d;
        if (sscanf(text, "%u.%u.%u.%u", &a, &b, &c, &d) != 4) return false;
        *v6 = false;
        *address = (uint64_t)a << 24 | b << 16 | c << 8 | d;
        return true;
    }
    // Groups before "::" fill from the left, after it from the right (of 8).
    uint16_t groups[8] = {0};
    char copy[64];
    size_t n = (size_t)(slash - text);
    if (n >= sizeof copy) return false;
    memcpy(copy, text, n);
    copy[n] = '\0';
    char *gap = strstr(copy, "::");
    char *tail = NULL;
    if (gap) *gap = '\0', tail = gap + 2;
    int count = 0;
    for (char *p = copy; *p && count < 8;) {
        groups[count++] = (uint16_t)strtoul(p, &p, 16);
        if (*p == ':') p++;
    }
    if (tail && *tail) {
        uint16_t back[8];
        int m = 0;
        for (char *p = tail; *p && m < 8;) {
            back[m++] = (uint16_t)strtoul(p, &p, 16);
            if (*p == ':') p++;
        }
        for (int i = 0; i < m; i++) groups[8 - m + i] = back[i];
    }
    *v6 = true;
    *address = (uint64_t)groups[0] << 48 | (uint64_t)groups[1] << 32 | (uint64_t)groups[2] << 16 | groups[3];
    return true;
}

static uint32_t judge(const char *text) {
    bool v6;
    uint64_t address;
    uint8_t length;
    if (!parse(text, &v6, &address, &length)) {
        fprintf(stderr, "bad test route %s\n", text);
        exit(2);
    }
    uint32_t verdict;
    if (v6) {
        uint64_t pair[2] = {address, 0xffff};
        bogons_v6_verdicts(pair, &length, 1, &verdict);
        check(verdict == bogons_is_bogon_v6(address, length), "table vs rule", text);
    } else {
        uint32_t a = (uint32_t)address;
        bogons_v4_verdicts(&a, &length, 1, &verdict);
        check(verdict == bogons_is_bogon_v4(a, length), "table vs rule", text);
    }
    return verdict;
}

static void named_routes(void) {
    static const struct { const char *route; uint32_t want; } cases[] = {
        {"0.0.0.0/8", 1}, {"0.255.255.0/24", 1}, {"1.0.0.0/24", 0}, {"0.0.0.0/0", 0}, {"0.0.0.0/7", 0},
        {"10.0.0.0/8", 1}, {"10.255.255.0/24", 1}, {"11.0.0.0/8", 0}, {"9.255.255.0/24", 0}, {"10.0.0.0/7", 0},
        {"100.64.0.0/10", 1}, {"100.127.255.0/24", 1}, {"100.63.255.0/24", 0}, {"100.128.0.0/24", 0},
        {"100.0.0.0/9", 0}, {"100.64.0.0/9", 0},
        {"127.0.0.0/8", 1}, {"127.1.2.0/24", 1}, {"126.255.255.0/24", 0}, {"128.0.0.0/24", 0},
        {"169.254.0.0/16", 1}, {"169.254.255.0/24", 1}, {"169.253.255.0/24", 0}, {"169.255.0.0/24", 0},
        {"172.16.0.0/12", 1}, {"172.31.255.0/24", 1}, {"172.15.255.0/24", 0}, {"172.32.0.0/24", 0},
        {"172.0.0.0/8", 0},
        {"192.0.0.0/24", 1}, {"192.0.1.0/24", 0}, {"192.0.2.0/24", 1}, {"192.0.3.0/24", 0},
        {"192.0.0.0/23", 0}, {"192.0.0.0/16", 0}, {"191.255.255.0/24", 0},
        {"192.168.0.0/16", 1}, {"192.168.255.0/24", 1}, {"192.167.255.0/24", 0}, {"192.169.0.0/24", 0},
        {"198.18.0.0/15", 1}, {"198.19.255.0/24", 1}, {"198.17.255.0/24", 0}, {"198.20.0.0/24", 0},
        {"198.18.0.0/14", 0},
        {"198.51.100.0/24", 1}, {"198.51.99.0/24", 0}, {"198.51.101.0/24", 0}, {"198.51.100.0/23", 0},
        {"203.0.113.0/24", 1}, {"203.0.112.0/24", 0}, {"203.0.114.0/24", 0}, {"203.0.0.0/16", 0},
        {"224.0.0.0/4", 1}, {"239.255.255.0/24", 1}, {"223.255.255.0/24", 0}, {"224.0.0.0/3", 0},
        {"240.0.0.0/4", 1}, {"255.255.255.0/24", 1},
        {"8.8.8.0/24", 0}, {"1.1.1.0/24", 0}, {"193.0.0.0/8", 0},
        {"8.8.8.0/25", 1}, {"8.8.8.8/32", 1}, {"1.0.0.0/8", 0},
        {"192.0.1.0/25", 1}, {"192.0.1.0/24", 0}, {"192.0.2.128/25", 1}, {"8.8.8.8/255", 1},
        {"2a00:1450::/32", 0}, {"2001::/16", 0}, {"2001:db7::/32", 0}, {"2001:db9::/32", 0},
        {"2001:db8::/32", 1}, {"2001:db8:ffff::/48", 1}, {"2001:db8::/31", 0}, {"2001:db8::/33", 1},
        {"2000::/3", 0}, {"2000::/48", 0}, {"3fff:ffff:ffff::/48", 0}, {"2000::/2", 1}, {"::/0", 1},
        {"::/1", 1}, {"::/3", 1}, {"1fff:ffff:ffff::/48", 1}, {"4000::/48", 1}, {"4000::/3", 1},
        {"8000::/1", 1},
        {"::/8", 1}, {"::ffff:0:0/96", 1}, {"100::/64", 1}, {"100::/48", 1},
        {"fc00::/7", 1}, {"fd00::/8", 1}, {"fe80::/10", 1}, {"fec0::/10", 1}, {"ff00::/8", 1},
        {"ff02::/16", 1},
        {"2a00:1450::/48", 0}, {"2a00:1450::/49", 1}, {"2a00:1450::1/128", 1}, {"2a00::/12", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        check(judge(cases[i].route) == cases[i].want, "named route", cases[i].route);
    }
}

// Routes around each bogon: the prefix and its first and last subprefixes up to the
// limit (inside), its neighbours (outside unless another bogon), shorter covers.
static void edges(bool v6) {
    const struct bogon *list = v6 ? BOGONS_V6 : BOGONS_V4;
    size_t count = v6 ? BOGONS_V6_COUNT : BOGONS_V4_COUNT;
    unsigned bits = v6 ? 64 : 32;
    uint8_t limit = v6 ? BOGONS_V6_MAX_LENGTH : BOGONS_V4_MAX_LENGTH;
    uint64_t top = v6 ? UINT64_MAX : UINT32_MAX;
    for (size_t b = 0; b < count; b++) {
        uint64_t prefix = list[b].address;
        uint8_t length = list[b].length;
        uint64_t last = length == 0 ? top : prefix | (top >> length);
        uint8_t max = length > limit ? length : limit;
        for (uint8_t sub = length; sub <= max; sub++) {
            uint64_t addrs[2] = {prefix, sub == 0 ? 0 : last >> (bits - sub) << (bits - sub)};
            for (int k = 0; k < 2; k++) {
                uint32_t verdict;
                uint64_t pair[2] = {addrs[k], 0};
                uint32_t a4 = (uint32_t)addrs[k];
                if (v6) bogons_v6_verdicts(pair, &sub, 1, &verdict);
                else bogons_v4_verdicts(&a4, &sub, 1, &verdict);
                check(verdict == 1, "inside a bogon", list[b].text);
            }
        }
        for (uint8_t sub = length; sub != 0; sub = sub == length && length != limit ? limit : 0) {
            uint64_t around[2] = {prefix - 1, last + 1};
            for (int k = 0; k < 2; k++) {
                if ((k == 0 && prefix == 0) || (k == 1 && last == top)) continue;
                uint64_t a = sub >= bits ? around[k] : around[k] >> (bits - sub) << (bits - sub);
                uint32_t verdict;
                uint64_t pair[2] = {a, 0};
                uint32_t a4 = (uint32_t)a;
                bool rule = v6 ? bogons_is_bogon_v6(a, sub) : bogons_is_bogon_v4(a4, sub);
                if (v6) bogons_v6_verdicts(pair, &sub, 1, &verdict);
                else bogons_v4_verdicts(&a4, &sub, 1, &verdict);
                check(verdict == rule, "just outside a bogon", list[b].text);
            }
        }
    }
}

static uint64_t state = 7;
static uint64_t next(void) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
}

// The tables against the rules: every key at /16 and a /24 or /32 in it, and
// pseudo-random routes of every length, as columns.
static void tables_agree_with_rules(void) {
    enum { RANDOM = 200000, N = RANDOM + 2 * 65536 };
    uint32_t *a4 = malloc(N * sizeof *a4), *got = malloc(N * sizeof *got);
    uint64_t *a6 = malloc(2 * N * sizeof *a6);
    uint8_t *l4 = malloc(N), *l6 = malloc(N);
    if (!a4 || !got || !a6 || !l4 || !l6) abort();
    size_t n = 0;
    for (uint32_t key = 0; key < 65536; key++) {
        a4[n] = key << 16, l4[n] = 16;
        a6[2 * n] = (uint64_t)key << 48, a6[2 * n + 1] = 0, l6[n] = 16, n++;
        a4[n] = key << 16 | (uint32_t)(next() & 0xff00), l4[n] = 24;
        a6[2 * n] = (uint64_t)key << 48 | (next() & 0xffff) << 32, a6[2 * n + 1] = 0, l6[n] = 32, n++;
    }
    for (; n < N; n++) {
        uint64_t r = next();
        l4[n] = (uint8_t)(next() % 34);
        a4[n] = l4[n] == 0 ? 0 : l4[n] >= 32 ? (uint32_t)r : (uint32_t)r >> (32 - l4[n]) << (32 - l4[n]);
        l6[n] = (uint8_t)(next() % 130);
        a6[2 * n] = l6[n] == 0 ? 0 : l6[n] >= 64 ? r : r >> (64 - l6[n]) << (64 - l6[n]);
        a6[2 * n + 1] = next();
    }
    char route[64];
    bogons_v4_verdicts(a4, l4, N, got);
    for (size_t i = 0; i < N; i++) {
        snprintf(route, sizeof route, "v4 %08x/%u", a4[i], l4[i]);
        check(got[i] == bogons_is_bogon_v4(a4[i], l4[i]), "v4 table vs rule", route);
    }
    bogons_v6_verdicts(a6, l6, N, got);
    for (size_t i = 0; i < N; i++) {
        snprintf(route, sizeof route, "v6 %016llx::/%u", (unsigned long long)a6[2 * i], l6[i]);
        check(got[i] == bogons_is_bogon_v6(a6[2 * i], l6[i]), "v6 table vs rule", route);
    }
    free(a4), free(got), free(a6), free(l4), free(l6);
}

int main(void) {
    named_routes();
    edges(false);
    edges(true);
    tables_agree_with_rules();
    bogons_v4_verdicts(NULL, NULL, 0, NULL);  // empty columns
    bogons_v6_verdicts(NULL, NULL, 0, NULL);
    printf("%u passed, %u failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
