// bogon-filter in C: rejects bogon routes on import, accepts the rest.
//
// The twin of plugins/bogon-filter (Rust) and bogon-filter-py, built with Debian's
// clang and wasi-libc, `wit-bindgen c` and `wasm-tools component new`
// (scripts/lang/c.sh) for the WIT world `policy` of `wasmbgp:plugin@0.2.0` (named in
// the file `world`). The rules live in bogons.c, plain C tested natively
// (tests/test_bogons.c). No settings.
//
// Memory, as the bindings (policy.h) hand it over: the arguments of `init` and
// `evaluate` (settings, data files, the batch's columns) belong to this code and are
// freed here before returning; the verdict list returned is malloc'd and freed by
// the bindings after the call (post-return). So nothing stays behind per call.

#include <stdlib.h>
#include <string.h>

#include "bogons.h"
#include "policy.h"

typedef exports_wasmbgp_plugin_route_policy_route_batch_t batch_t;
typedef exports_wasmbgp_plugin_route_policy_verdicts_t verdicts_t;

enum { ACCEPT = 0 };

bool exports_wasmbgp_plugin_route_policy_init(exports_wasmbgp_plugin_route_policy_settings_t *settings,
                                              exports_wasmbgp_plugin_route_policy_list_data_file_t *files,
                                              policy_string_t *err) {
    // Every setting is unknown: "unknown setting(s): a, b", in the config's order.
    bool ok = settings->len == 0;
    if (!ok) {
        static const char prefix[] = "unknown setting(s): ";
        size_t size = sizeof prefix;
        for (size_t i = 0; i < settings->len; i++) size += settings->ptr[i].f0.len + 2;
        char *text = malloc(size);
        if (!text) abort();
        size_t n = strlen(prefix);
        memcpy(text, prefix, n);
        for (size_t i = 0; i < settings->len; i++) {
            if (i > 0) text[n++] = ',', text[n++] = ' ';
            memcpy(text + n, settings->ptr[i].f0.ptr, settings->ptr[i].f0.len);
            n += settings->ptr[i].f0.len;
        }
        err->ptr = (uint8_t *)text;  // freed by the bindings after the call
        err->len = n;
    } else {
        bogons_init();
    }
    // Granted data files are ignored.
    exports_wasmbgp_plugin_route_policy_settings_free(settings);
    exports_wasmbgp_plugin_route_policy_list_data_file_free(files);
    return ok;
}

void exports_wasmbgp_plugin_route_policy_evaluate(batch_t *batch, verdicts_t *ret) {
    // Verdicts: IPv4 routes first, then IPv6, then the FlowSpec rules (accepted:
    // bogons are about prefixes); 0 = accept, 1 = reject. Never a new attribute set.
    size_t v4 = batch->v4_lengths.len, v6 = batch->v6_lengths.len, flows = batch->flows.len;
    size_t count = v4 + v6 + flows;
    uint32_t *verdicts = NULL;
    if (count > 0) {
        verdicts = malloc(count * sizeof *verdicts);
        if (!verdicts) abort();
        if (batch->direction == EXPORTS_WASMBGP_PLUGIN_ROUTE_POLICY_DIRECTION_IMPORT) {
            bogons_v4_verdicts(batch->v4_addresses.ptr, batch->v4_lengths.ptr, v4, verdicts);
            bogons_v6_verdicts(batch->v6_addresses.ptr, batch->v6_lengths.ptr, v6, verdicts + v4);
            memset(verdicts + v4 + v6, ACCEPT, flows * sizeof *verdicts);
        } else {
            memset(verdicts, ACCEPT, count * sizeof *verdicts);
        }
    }
    ret->routes.ptr = verdicts;
    ret->routes.len = count;
    ret->attributes.ptr = NULL;
    ret->attributes.len = 0;
    exports_wasmbgp_plugin_route_policy_route_batch_free(batch);
}
