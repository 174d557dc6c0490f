// {{name}}: a wasmbgp exporter (world `exporter`), in C.
//
// Counts the routes each neighbor announces and withdraws (after import policy)
// into two metrics, served on wasmbgp's `/metrics` as
// `wasmbgp_plugin_routes_announced_total` and `wasmbgp_plugin_routes_withdrawn_total`
// with labels `plugin` and `neighbor`. No settings.
//
// exporter.h (written by `wit-bindgen c` at each build) declares the functions this
// file implements (exports_...) and the host's it may call. Memory: the arguments
// of an export (settings, events) belong to this code (freed here); what it returns
// through `err` is malloc'd and freed by the bindings after the call.

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exporter.h"

typedef exporter_string_t string_t;

#define ANNOUNCED "routes_announced_total"
#define WITHDRAWN "routes_withdrawn_total"

// Every instance first receives a snapshot of the routes as they are, closed by
// end-of-snapshot; metric values outlive restarts, so only the changes after it
// are counted.
static bool in_snapshot = true;

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

// Registers a counter with the label `neighbor`; false with `err` set on failure.
static bool register_counter(const char *name, const char *help, string_t *err) {
    string_t metric, text, label;
    exporter_string_set(&metric, name);  // borrowed strings: not freed
    exporter_string_set(&text, help);
    exporter_string_set(&label, "neighbor");
    exporter_list_string_t labels = {&label, 1};
    exporter_list_f64_t buckets = {NULL, 0};
    wasmbgp_plugin_metrics_metric_error_t error;
    if (wasmbgp_plugin_metrics_register(&metric, &text, WASMBGP_PLUGIN_METRICS_METRIC_KIND_COUNTER,
                                        &labels, &buckets, &error)) {
        return true;
    }
    // Both cases of metric-error carry a message.
    string_t *why = &error.val.invalid;
    set_string(err, "cannot register %s: %.*s", name, (int)why->len, (const char *)why->ptr);
    wasmbgp_plugin_metrics_metric_error_free(&error);
    return false;
}

// Called once per instance with `[plugin.settings]`; returning false (with the
// reason in `err`) is a configuration error: the plugin does not start.
bool exports_wasmbgp_plugin_event_sink_init(exports_wasmbgp_plugin_event_sink_settings_t *settings,
                                            string_t *err) {
    bool ok;
    if (settings->len > 0) {
        string_t *key = &settings->ptr[0].f0;
        set_string(err, "unknown setting `%.*s`", (int)key->len, (const char *)key->ptr);
        ok = false;
    } else {
        ok = register_counter(ANNOUNCED, "Routes announced by the neighbor.", err) &&
             register_counter(WITHDRAWN, "Routes withdrawn by the neighbor.", err);
    }
    wasmbgp_plugin_types_settings_free(settings);
    return ok;
}

// Adds `value` to the series of `name` for `neighbor` (a failure, past
// `grants.max-series`, is counted by the host).
static void add(const char *name, string_t *neighbor, double value) {
    string_t metric;
    exporter_string_set(&metric, name);
    exporter_list_string_t labels = {neighbor, 1};
    wasmbgp_plugin_metrics_metric_error_t error;
    if (!wasmbgp_plugin_metrics_add(&metric, &labels, value, &error)) {
        wasmbgp_plugin_metrics_metric_error_free(&error);
    }
}

static void count(const wasmbgp_plugin_events_route_update_t *update) {
    if (update->direction != WASMBGP_PLUGIN_EVENTS_ROUTE_DIRECTION_RECEIVED) return;
    const wasmbgp_plugin_types_ip_address_t *ip = &update->session.neighbor;
    char text[INET6_ADDRSTRLEN];
    uint8_t bytes[16];
    if (ip->tag == WASMBGP_PLUGIN_TYPES_IP_ADDRESS_V4) {
        for (int i = 0; i < 4; i++) bytes[i] = (uint8_t)(ip->val.v4 >> (24 - 8 * i));
        inet_ntop(AF_INET, bytes, text, sizeof text);
    } else {
        for (int i = 0; i < 8; i++) {
            bytes[i] = (uint8_t)(ip->val.v6.f0 >> (56 - 8 * i));
            bytes[8 + i] = (uint8_t)(ip->val.v6.f1 >> (56 - 8 * i));
        }
        inet_ntop(AF_INET6, bytes, text, sizeof text);
    }
    string_t neighbor;
    exporter_string_set(&neighbor, text);
    add(ANNOUNCED, &neighbor, (double)(update->v4_lengths.len + update->v6_lengths.len));
    add(WITHDRAWN, &neighbor, (double)(update->withdrawn_v4_lengths.len + update->withdrawn_v6_lengths.len));
}

// Handles a batch of events, in the order the speaker saw them.
void exports_wasmbgp_plugin_event_sink_on_events(exports_wasmbgp_plugin_event_sink_list_event_t *events) {
    for (size_t i = 0; i < events->len; i++) {
        const wasmbgp_plugin_events_event_t *event = &events->ptr[i];
        if (event->tag == WASMBGP_PLUGIN_EVENTS_EVENT_END_OF_SNAPSHOT) {
            in_snapshot = false;
        } else if (event->tag == WASMBGP_PLUGIN_EVENTS_EVENT_ROUTES && !in_snapshot) {
            count(&event->val.routes);
        }
    }
    exports_wasmbgp_plugin_event_sink_list_event_free(events);
}
