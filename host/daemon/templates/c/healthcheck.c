// {{name}}: a wasmbgp health check (world `healthcheck`), in C.
//
// Healthy while a TCP connection to `address` succeeds. Settings: `address`
// ("IP:PORT", required; the config must grant it in `grants.tcp`), `timeout`
// (milliseconds, or e.g. "500ms" / "2s"; default 1s).
//
// healthcheck.h (written by `wit-bindgen c` at each build) declares the functions
// this file implements (exports_...) and the host's it may call. Memory: the
// arguments of an export belong to this code (freed here); what it returns
// through `ret` / `err` is malloc'd and freed by the bindings after the call; an
// import's error belongs to this code.

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "healthcheck.h"

typedef healthcheck_string_t string_t;

// The configuration (one per component instance).
static char address[64];
static uint32_t timeout_ms = 1000;

static bool equals(const string_t *s, const char *text) {
    return s->len == strlen(text) && memcmp(s->ptr, text, s->len) == 0;
}

// Sets `out` to a malloc'd string formatted as printf does.
static void set_string(string_t *out, const char *format, ...) {
    va_list args;
    va_start(args, format);
    int len = vsnprintf(NULL, 0, format, args);
    va_end(args);
    char *text = malloc((size_t)len + 1);
    if (len < 0 || !text) abort();
    va_start(args, format);
    vsnprintf(text, (size_t)len + 1, format, args);
    va_end(args);
    out->ptr = (uint8_t *)text;
    out->len = (size_t)len;
}

// Reads the settings into the configuration; false with `err` set when they are wrong.
static bool configure(const wasmbgp_plugin_types_settings_t *settings, string_t *err) {
    bool have_address = false;
    for (size_t i = 0; i < settings->len; i++) {
        const string_t *key = &settings->ptr[i].f0, *value = &settings->ptr[i].f1;
        if (equals(key, "address")) {
            if (value->len >= sizeof address) {
                set_string(err, "setting `address` is too long: expected IP:PORT");
                return false;
            }
            memcpy(address, value->ptr, value->len);
            address[value->len] = '\0';
            have_address = true;
        } else if (equals(key, "timeout")) {
            // "500ms", "2s" or a number of milliseconds.
            char text[32] = "";
            char unit[4] = "";
            unsigned long number;
            if (value->len < sizeof text) memcpy(text, value->ptr, value->len);
            if (sscanf(text, "%lu%3s", &number, unit) < 1 || number > 60000 ||
                (unit[0] && strcmp(unit, "ms") != 0 && strcmp(unit, "s") != 0)) {
                set_string(err, "setting `timeout` = \"%.*s\" is invalid: expected e.g. 500ms or 2s",
                           (int)value->len, (const char *)value->ptr);
                return false;
            }
            timeout_ms = (uint32_t)(strcmp(unit, "s") == 0 ? number * 1000 : number);
        } else {
            set_string(err, "unknown setting `%.*s`", (int)key->len, (const char *)key->ptr);
            return false;
        }
    }
    if (!have_address) {
        set_string(err, "setting `address` is required");
        return false;
    }
    return true;
}

// Called once per instance with `[plugin.settings]`; returning false (with the
// reason in `err`) is a configuration error: the plugin does not start.
bool exports_wasmbgp_plugin_health_check_init(exports_wasmbgp_plugin_health_check_settings_t *settings,
                                              string_t *err) {
    bool ok = configure(settings, err);
    wasmbgp_plugin_types_settings_free(settings);
    return ok;
}

// Called on the host's schedule: true (with a detail in `ret`) is healthy, false
// (with the reason in `err`) is not.
bool exports_wasmbgp_plugin_health_check_check(string_t *ret, string_t *err) {
    string_t target;
    healthcheck_string_set(&target, address);  // borrowed: not freed
    uint64_t micros;
    wasmbgp_plugin_probe_probe_error_t error;
    if (wasmbgp_plugin_probe_tcp_connect(&target, timeout_ms, &micros, &error)) {
        set_string(ret, "connected to %s in %llu \xc2\xb5s", address, (unsigned long long)micros);
        return true;
    }
    const string_t *why = NULL;
    const char *kind = "failed";
    switch (error.tag) {
        case WASMBGP_PLUGIN_PROBE_PROBE_ERROR_TIMEOUT: kind = "timed out"; break;
        case WASMBGP_PLUGIN_PROBE_PROBE_ERROR_DENIED: kind = "denied", why = &error.val.denied; break;
        case WASMBGP_PLUGIN_PROBE_PROBE_ERROR_REFUSED: kind = "refused", why = &error.val.refused; break;
        case WASMBGP_PLUGIN_PROBE_PROBE_ERROR_INVALID: kind = "invalid", why = &error.val.invalid; break;
        default: why = &error.val.failed; break;
    }
    if (why) {
        set_string(err, "%s: %.*s", kind, (int)why->len, (const char *)why->ptr);
    } else {
        set_string(err, "%s", kind);
    }
    wasmbgp_plugin_probe_probe_error_free(&error);
    return false;
}
