// {{name}}: a wasmbgp routing policy (world `policy`), in C.
//
// Rejects prefixes longer than `max-length` (IPv4) or `max-length-v6`, and tags the
// routes it accepts with `community`. Settings: `max-length` (default 24),
// `max-length-v6` (default 48), `community` ("65001:100" or no-export,
// no-advertise, no-export-subconfed; none: accepted routes pass unchanged).
//
// policy.h (written by `wit-bindgen c` at each build) declares the functions this
// file implements (exports_...) and the host's it may call. Memory: the arguments
// of an export (settings, files, the batch) belong to this code (freed here); what
// it returns through `ret` / `err` is malloc'd and freed by the bindings after the
// call.

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"

typedef policy_string_t string_t;
typedef wasmbgp_plugin_types_attributes_t attributes_t;
typedef exports_wasmbgp_plugin_route_policy_route_batch_t batch_t;
typedef exports_wasmbgp_plugin_route_policy_verdicts_t verdicts_t;

// A verdict: accept unchanged, reject, or MODIFIED + i: with the new attribute set i.
enum { ACCEPT = 0, REJECT = 1, MODIFIED = 2 };

// The configuration (one per component instance).
static unsigned max_v4 = 24, max_v6 = 48;
static bool tag = false;
static uint32_t community;  // 65001:100 is 65001 << 16 | 100

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

// `value` as a C string in `text` of `size` bytes; false when it does not fit.
static bool c_string(const string_t *value, char *text, size_t size) {
    if (value->len >= size) return false;
    memcpy(text, value->ptr, value->len);
    text[value->len] = '\0';
    return true;
}

static bool parse_length(const string_t *value, unsigned limit, unsigned *out) {
    char text[8], *end;
    if (!c_string(value, text, sizeof text) || text[0] < '0' || text[0] > '9') return false;
    unsigned long length = strtoul(text, &end, 10);
    if (*end != '\0' || length > limit) return false;
    *out = (unsigned)length;
    return true;
}

static bool parse_community(const string_t *value, uint32_t *out) {
    static const struct {
        const char *name;
        uint32_t value;
    } well_known[] = {
        {"no-export", 0xFFFFFF01}, {"no-advertise", 0xFFFFFF02}, {"no-export-subconfed", 0xFFFFFF03}};
    char text[32], rest;
    unsigned high, low;
    if (!c_string(value, text, sizeof text)) return false;
    for (size_t i = 0; i < sizeof well_known / sizeof well_known[0]; i++) {
        if (strcmp(text, well_known[i].name) == 0) {
            *out = well_known[i].value;
            return true;
        }
    }
    if (sscanf(text, "%u:%u%c", &high, &low, &rest) != 2 || high > 0xFFFF || low > 0xFFFF) return false;
    *out = high << 16 | low;
    return true;
}

// Reads the settings into the configuration; false with `err` set when they are wrong.
static bool configure(const wasmbgp_plugin_types_settings_t *settings, string_t *err) {
    unsigned v4 = 24, v6 = 48;
    bool has_tag = false;
    uint32_t tag_value = 0;
    for (size_t i = 0; i < settings->len; i++) {
        const string_t *key = &settings->ptr[i].f0, *value = &settings->ptr[i].f1;
        const char *expected = NULL;
        if (equals(key, "max-length")) {
            if (!parse_length(value, 32, &v4)) expected = "a prefix length from 0 to 32";
        } else if (equals(key, "max-length-v6")) {
            if (!parse_length(value, 128, &v6)) expected = "a prefix length from 0 to 128";
        } else if (equals(key, "community")) {
            has_tag = parse_community(value, &tag_value);
            if (!has_tag) expected = "e.g. 65001:100 or no-export";
        } else {
            set_string(err, "unknown setting `%.*s`", (int)key->len, (const char *)key->ptr);
            return false;
        }
        if (expected) {
            set_string(err, "setting `%.*s` = \"%.*s\" is invalid: expected %s", (int)key->len,
                       (const char *)key->ptr, (int)value->len, (const char *)value->ptr, expected);
            return false;
        }
    }
    max_v4 = v4, max_v6 = v6, tag = has_tag, community = tag_value;
    return true;
}

// Called once per instance with `[plugin.settings]` and the data files of
// `grants.files`; returning false (with the reason in `err`) is a configuration
// error: the plugin does not start.
bool exports_wasmbgp_plugin_route_policy_init(exports_wasmbgp_plugin_route_policy_settings_t *settings,
                                              exports_wasmbgp_plugin_route_policy_list_data_file_t *files,
                                              string_t *err) {
    bool ok = configure(settings, err);
    exports_wasmbgp_plugin_route_policy_settings_free(settings);
    exports_wasmbgp_plugin_route_policy_list_data_file_free(files);
    return ok;
}

// The verdict of the routes whose attribute set is `set`: ACCEPT when it has the
// community already, else MODIFIED + i where new_sets[i] is `set` with the
// community added. The new set takes over the memory of `set` (the batch's, which
// this code owns) and `set` is left empty, so freeing the batch frees it once.
static uint32_t tag_set(attributes_t *set, attributes_t *new_sets, size_t *count) {
    policy_list_u32_t *communities = &set->communities;
    for (size_t i = 0; i < communities->len; i++) {
        if (communities->ptr[i] == community) return ACCEPT;
    }
    // An empty list's pointer may not come from malloc: allocate afresh.
    uint32_t *grown = communities->len == 0
                          ? malloc(sizeof *grown)
                          : realloc(communities->ptr, (communities->len + 1) * sizeof *grown);
    if (!grown) abort();
    grown[communities->len] = community;
    communities->ptr = grown;
    communities->len++;
    new_sets[*count] = *set;
    memset(set, 0, sizeof *set);
    return MODIFIED + (uint32_t)(*count)++;
}

// Judges a batch of routes (received from a neighbor or about to be sent to one),
// given in columns: one verdict per route, the IPv4 routes first, then the IPv6
// routes, then the FlowSpec rules.
void exports_wasmbgp_plugin_route_policy_evaluate(batch_t *batch, verdicts_t *ret) {
    size_t v4 = batch->v4_lengths.len, routes = v4 + batch->v6_lengths.len;
    size_t count = routes + batch->flows.len, sets = batch->attributes.len;
    uint32_t *verdicts = malloc((count + 1) * sizeof *verdicts);
    // The verdict of each attribute set of the batch, once known.
    uint32_t *of_set = malloc((sets + 1) * sizeof *of_set);
    attributes_t *new_sets = malloc((sets + 1) * sizeof *new_sets);
    size_t new_count = 0;
    if (!verdicts || !of_set || !new_sets) abort();
    for (size_t i = 0; i < sets; i++) of_set[i] = UINT32_MAX;
    for (size_t i = 0; i < routes; i++) {
        bool is_v4 = i < v4;
        uint8_t length = is_v4 ? batch->v4_lengths.ptr[i] : batch->v6_lengths.ptr[i - v4];
        uint32_t set = is_v4 ? batch->v4_attributes.ptr[i] : batch->v6_attributes.ptr[i - v4];
        if (length > (is_v4 ? max_v4 : max_v6)) {
            verdicts[i] = REJECT;
        } else if (!tag) {
            verdicts[i] = ACCEPT;
        } else {
            if (of_set[set] == UINT32_MAX) of_set[set] = tag_set(&batch->attributes.ptr[set], new_sets, &new_count);
            verdicts[i] = of_set[set];
        }
    }
    for (size_t i = routes; i < count; i++) verdicts[i] = ACCEPT;  // FlowSpec rules pass unchanged
    free(of_set);
    // Empty lists are not freed by the bindings: free them here.
    if (count == 0) free(verdicts), verdicts = NULL;
    if (new_count == 0) free(new_sets), new_sets = NULL;
    ret->routes.ptr = verdicts;
    ret->routes.len = count;
    ret->attributes.ptr = new_sets;
    ret->attributes.len = new_count;
    exports_wasmbgp_plugin_route_policy_route_batch_free(batch);
}
