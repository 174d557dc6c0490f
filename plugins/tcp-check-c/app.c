// tcp-check in C: healthy while a TCP connection to `address` succeeds.
//
// The twin of plugins/tcp-check (Rust), built with Debian's clang and wasi-libc,
// `wit-bindgen c` and `wasm-tools component new` (scripts/lang/c.sh) for the WIT
// world `healthcheck` of `wasmbgp:plugin@0.2.0` (named in the file `world`).
// Settings: `address` ("IP:PORT", required), `timeout` (a duration as the Rust SDK
// reads it: "500ms", "2s", "1m30s", a bare number of seconds; default 1s).
//
// Memory, as the bindings (healthcheck.h) hand it over: the settings given to
// `init` belong to this code (freed here), strings returned by `init` and `check`
// are malloc'd and freed by the bindings after the call (post-return), and a
// probe error's strings belong to this code (freed here).

#include <stdlib.h>
#include <string.h>

#include "healthcheck.h"

typedef healthcheck_string_t string_t;

// The configuration of this instance (one per component instance).
static char *address;
static uint32_t timeout_ms = 1000;

// A malloc'd, NUL-terminated copy of a component-model string.
static char *cstring(const string_t *s) {
    char *copy = malloc(s->len + 1);
    if (!copy) abort();
    memcpy(copy, s->ptr, s->len);
    copy[s->len] = '\0';
    return copy;
}

static bool equals(const string_t *s, const char *text) {
    return s->len == strlen(text) && memcmp(s->ptr, text, s->len) == 0;
}

// A growing malloc'd string; `take` hands it over as a component-model string
// (freed by the bindings after the call). Not printf: it would triple the size.
typedef struct {
    char *ptr;
    size_t len, cap;
} text_t;

static void append(text_t *t, const void *bytes, size_t len) {
    if (t->len + len > t->cap) {
        t->cap = (t->len + len) * 2 + 16;
        t->ptr = realloc(t->ptr, t->cap);
        if (!t->ptr) abort();
    }
    memcpy(t->ptr + t->len, bytes, len);
    t->len += len;
}

static void append_str(text_t *t, const char *s) { append(t, s, strlen(s)); }

static void append_u64(text_t *t, uint64_t n) {
    char digits[20];
    size_t i = sizeof digits;
    do digits[--i] = (char)('0' + n % 10); while (n /= 10);
    append(t, digits + i, sizeof digits - i);
}

static void take(text_t *t, string_t *out) {
    out->ptr = (uint8_t *)t->ptr;
    out->len = t->len;
}

// The value of `key` (a later duplicate wins, as in the Rust SDK), or NULL.
static const string_t *setting(const wasmbgp_plugin_types_settings_t *settings, const char *key) {
    for (size_t i = settings->len; i-- > 0;) {
        if (equals(&settings->ptr[i].f0, key)) return &settings->ptr[i].f1;
    }
    return NULL;
}

static bool is_digit(uint8_t c) { return c >= '0' && c <= '9'; }

// Parses a duration as the Rust SDK does (settings::parse_duration): a bare number
// of seconds, or terms of digits and a unit (us, µs, ms, s, m, min, h; spaces
// around a unit allowed) added up. Returns false on a bad or overflowing duration.
static bool parse_duration_ms(const uint8_t *text, size_t len, uint64_t *ms) {
    while (len > 0 && (*text == ' ' || (*text >= '\t' && *text <= '\r'))) text++, len--;
    while (len > 0 && (text[len - 1] == ' ' || (text[len - 1] >= '\t' && text[len - 1] <= '\r'))) len--;
    if (len == 0) return false;
    uint64_t total_us = 0;
    size_t i = 0;
    bool bare = true;
    for (size_t j = 0; j < len; j++) bare = bare && is_digit(text[j]);
    while (i < len) {
        if (!is_digit(text[i])) return false;
        uint64_t number = 0;
        while (i < len && is_digit(text[i])) {
            if (number > (UINT64_MAX - 9) / 10) return false;
            number = number * 10 + (text[i++] - '0');
        }
        size_t unit = i;
        while (i < len && !is_digit(text[i])) i++;
        size_t unit_end = i;
        while (unit < unit_end && text[unit] == ' ') unit++;
        while (unit_end > unit && text[unit_end - 1] == ' ') unit_end--;
        string_t u = {(uint8_t *)text + unit, unit_end - unit};
        uint64_t scale;
        if (bare) scale = 1000000;  // "3" is three seconds
        else if (equals(&u, "us") || equals(&u, "\xc2\xb5s")) scale = 1;
        else if (equals(&u, "ms")) scale = 1000;
        else if (equals(&u, "s")) scale = 1000000;
        else if (equals(&u, "m") || equals(&u, "min")) scale = 60000000;
        else if (equals(&u, "h")) scale = 3600000000;
        else return false;
        if (number > UINT64_MAX / scale) return false;
        uint64_t term = number * scale;
        if (total_us > UINT64_MAX - term) return false;
        total_us += term;
    }
    *ms = total_us / 1000;
    return true;
}

// Appends `value` as Rust's {:?} writes a string: in double quotes, with \" and \\
// escaped.
static void append_quoted(text_t *t, const string_t *value) {
    append(t, "\"", 1);
    for (size_t i = 0; i < value->len; i++) {
        if (value->ptr[i] == '"' || value->ptr[i] == '\\') append(t, "\\", 1);
        append(t, value->ptr + i, 1);
    }
    append(t, "\"", 1);
}

// The configuration from `settings`, or false with `err` set.
static bool configure(const wasmbgp_plugin_types_settings_t *settings, string_t *err) {
    // Unknown keys, in the config's order: "unknown setting(s): a, b".
    text_t unknown = {0};
    for (size_t i = 0; i < settings->len; i++) {
        const string_t *key = &settings->ptr[i].f0;
        if (equals(key, "address") || equals(key, "timeout")) continue;
        append_str(&unknown, unknown.len == 0 ? "unknown setting(s): " : ", ");
        append(&unknown, key->ptr, key->len);
    }
    if (unknown.len > 0) {
        take(&unknown, err);
        return false;
    }
    const string_t *addr = setting(settings, "address");
    if (!addr) {
        healthcheck_string_dup(err, "setting `address` is required");
        return false;
    }
    uint64_t ms = 1000;
    const string_t *timeout = setting(settings, "timeout");
    if (timeout && !parse_duration_ms(timeout->ptr, timeout->len, &ms)) {
        text_t why = {0};
        append_str(&why, "setting `timeout` = ");
        append_quoted(&why, timeout);
        append_str(&why, " is invalid: expected a duration such as 500ms, 2s or 1m");
        take(&why, err);
        return false;
    }
    free(address);
    address = cstring(addr);
    timeout_ms = ms > UINT32_MAX ? UINT32_MAX : (uint32_t)ms;
    return true;
}

bool exports_wasmbgp_plugin_health_check_init(exports_wasmbgp_plugin_health_check_settings_t *settings,
                                              string_t *err) {
    bool ok = configure(settings, err);
    wasmbgp_plugin_types_settings_free(settings);
    return ok;
}

// One line for a probe error, as the Rust SDK's probe::describe says it.
static void describe(const wasmbgp_plugin_probe_probe_error_t *error, string_t *out) {
    const char *kind;
    const string_t *why;
    switch (error->tag) {
        case WASMBGP_PLUGIN_PROBE_PROBE_ERROR_TIMEOUT:
            healthcheck_string_dup(out, "timed out");
            return;
        case WASMBGP_PLUGIN_PROBE_PROBE_ERROR_DENIED: kind = "denied", why = &error->val.denied; break;
        case WASMBGP_PLUGIN_PROBE_PROBE_ERROR_REFUSED: kind = "refused", why = &error->val.refused; break;
        case WASMBGP_PLUGIN_PROBE_PROBE_ERROR_INVALID: kind = "invalid", why = &error->val.invalid; break;
        default: kind = "failed", why = &error->val.failed; break;
    }
    text_t line = {0};
    append_str(&line, kind);
    append_str(&line, ": ");
    append(&line, why->ptr, why->len);
    take(&line, out);
}

bool exports_wasmbgp_plugin_health_check_check(string_t *ret, string_t *err) {
    string_t target;
    healthcheck_string_set(&target, address ? address : "");
    uint64_t micros;
    wasmbgp_plugin_probe_probe_error_t error;
    if (!wasmbgp_plugin_probe_tcp_connect(&target, timeout_ms, &micros, &error)) {
        describe(&error, err);
        wasmbgp_plugin_probe_probe_error_free(&error);
        return false;
    }
    text_t detail = {0};
    append_str(&detail, "connected to ");
    append_str(&detail, address);
    append_str(&detail, " in ");
    append_u64(&detail, micros);
    append_str(&detail, " \xc2\xb5s");
    take(&detail, ret);
    return true;
}
