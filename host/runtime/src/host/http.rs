//! `wasi:http` outgoing requests: only to URLs under `grants.http-out`, with bounded
//! timeouts and response bodies. A request outside the grant is denied (the guest gets
//! `HTTP-request-denied`), logged and counted, and never reaches the network.

use std::sync::Arc;
use std::time::Duration;

use http_body_util::BodyExt as _;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpCtx, WasiHttpHooks};

use crate::grants::CheckedGrants;
use crate::supervisor::Shared;

/// The longest a connection may take to open.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest wait for the first byte of the response, and between bytes.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest response body a plugin may read.
pub const MAX_RESPONSE_BODY: usize = 1 << 20;

/// The `wasi:http` context of one instance, with the hooks that apply the grants.
pub(crate) struct HttpCtx {
    ctx: WasiHttpCtx,
    hooks: GrantedHttp,
}

impl HttpCtx {
    pub fn new(plugin: Arc<str>, shared: Arc<Shared>, grants: Arc<CheckedGrants>) -> Self {
        HttpCtx {
            ctx: WasiHttpCtx::new(),
            hooks: GrantedHttp {
                plugin,
                shared,
                grants,
            },
        }
    }

    pub fn parts(&mut self) -> (&mut WasiHttpCtx, &mut dyn WasiHttpHooks) {
        (&mut self.ctx, &mut self.hooks)
    }
}

struct GrantedHttp {
    plugin: Arc<str>,
    shared: Arc<Shared>,
    grants: Arc<CheckedGrants>,
}

type Sent = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), Error>> + Send>,
                ),
                Error,
            >,
        > + Send,
>;

fn capped(options: Option<RequestOptions>) -> RequestOptions {
    let cap = |given: Option<Duration>, most: Duration| Some(given.map_or(most, |d| d.min(most)));
    let given = options.unwrap_or_default();
    RequestOptions {
        connect_timeout: cap(given.connect_timeout, CONNECT_TIMEOUT),
        first_byte_timeout: cap(given.first_byte_timeout, RESPONSE_TIMEOUT),
        between_bytes_timeout: cap(given.between_bytes_timeout, RESPONSE_TIMEOUT),
    }
}

impl WasiHttpHooks for GrantedHttp {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Sent {
        let _ = fut;
        let uri = request.uri();
        let https = uri.scheme_str() == Some("https");
        let authority = uri.authority().map(|a| a.as_str()).unwrap_or("");
        let allowed = self
            .grants
            .http_out
            .iter()
            .any(|g| g.allows(https, authority, uri.path()));
        if !allowed {
            self.shared.denied(&format!(
                "HTTP {} {uri}: not in grants.http-out",
                request.method()
            ));
            return Box::new(async { Err(Error::HttpRequestDenied) });
        }
        tracing::debug!(plugin = %self.plugin, method = %request.method(), %uri, "HTTP request");
        let options = capped(options);
        Box::new(async move {
            let (response, io) =
                wasmtime_wasi_http::default_send_request(request, Some(options)).await?;
            let response = response.map(|body| {
                http_body_util::Limited::new(body, MAX_RESPONSE_BODY)
                    .map_err(|e| match e.downcast::<Error>() {
                        Ok(inner) => *inner,
                        Err(_) => Error::HttpResponseBodySize(Some(MAX_RESPONSE_BODY as u64)),
                    })
                    .boxed_unsync()
            });
            Ok((
                response,
                Box::new(io) as Box<dyn Future<Output = Result<(), Error>> + Send>,
            ))
        })
    }
}
