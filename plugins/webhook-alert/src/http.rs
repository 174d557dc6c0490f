//! The `url` setting, and (in the component) POSTs through the standard
//! `wasi:http` outgoing handler, which the host limits to `grants.http-out`.

/// A parsed `http://` or `https://` URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    pub https: bool,
    /// Host and port as written ("127.0.0.1:9000").
    pub authority: String,
    /// Path and query ("/hook?x=1"), "/" when empty.
    pub path: String,
}

impl Url {
    pub fn parse(text: &str) -> Result<Url, String> {
        let (https, rest) = if let Some(rest) = text.strip_prefix("http://") {
            (false, rest)
        } else if let Some(rest) = text.strip_prefix("https://") {
            (true, rest)
        } else {
            return Err(format!("{text:?} is not an http:// or https:// URL"));
        };
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.is_empty()
            || authority.contains('@')
            || authority.contains(char::is_whitespace)
        {
            return Err(format!("{text:?} has no valid host"));
        }
        if path.contains(char::is_whitespace) || path.contains('#') {
            return Err(format!("{text:?} has an invalid path"));
        }
        let path = if path.starts_with('?') {
            format!("/{path}")
        } else {
            path.to_string()
        };
        Ok(Url {
            https,
            authority: authority.to_string(),
            path,
        })
    }
}

#[cfg(target_arch = "wasm32")]
pub use wasi_http::WasiHttp;

/// Outside a component (native builds and tests) there is no `wasi:http`:
/// every request fails.
#[cfg(not(target_arch = "wasm32"))]
pub struct WasiHttp;

#[cfg(not(target_arch = "wasm32"))]
impl WasiHttp {
    pub fn new(_url: Url, _timeout_ms: u64) -> WasiHttp {
        WasiHttp
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl crate::webhook::Transport for WasiHttp {
    fn start(&mut self, _body: &str) -> Result<(), String> {
        Err("no wasi:http outside a component".to_string())
    }
    fn poll(&mut self, _wait_ms: u64) -> Option<Result<u16, String>> {
        None
    }
    fn cancel(&mut self) {}
}

#[cfg(target_arch = "wasm32")]
mod wasi_http {
    use wasip2::clocks::monotonic_clock;
    use wasip2::http::outgoing_handler::{self, FutureIncomingResponse};
    use wasip2::http::types::{
        ErrorCode, Fields, Method, OutgoingBody, OutgoingRequest, RequestOptions, Scheme,
    };

    use super::Url;
    use crate::webhook::Transport;

    /// POSTs through `wasi:http/outgoing-handler`.
    pub struct WasiHttp {
        url: Url,
        timeout_ns: u64,
        in_flight: Option<FutureIncomingResponse>,
    }

    impl WasiHttp {
        pub fn new(url: Url, timeout_ms: u64) -> WasiHttp {
            WasiHttp {
                url,
                timeout_ns: timeout_ms.saturating_mul(1_000_000),
                in_flight: None,
            }
        }

        fn request(&self, body: &str) -> Result<FutureIncomingResponse, String> {
            let headers = Fields::from_list(&[
                ("content-type".to_string(), b"application/json".to_vec()),
                (
                    "content-length".to_string(),
                    body.len().to_string().into_bytes(),
                ),
            ])
            .map_err(|e| format!("headers: {e:?}"))?;
            let request = OutgoingRequest::new(headers);
            let bad = |what: &str| format!("invalid {what} in the url");
            request
                .set_method(&Method::Post)
                .map_err(|_| bad("method"))?;
            let scheme = if self.url.https {
                Scheme::Https
            } else {
                Scheme::Http
            };
            request
                .set_scheme(Some(&scheme))
                .map_err(|_| bad("scheme"))?;
            request
                .set_authority(Some(&self.url.authority))
                .map_err(|_| bad("host"))?;
            request
                .set_path_with_query(Some(&self.url.path))
                .map_err(|_| bad("path"))?;
            let outgoing = request.body().map_err(|_| "no request body".to_string())?;
            let options = RequestOptions::new();
            let _ = options.set_connect_timeout(Some(self.timeout_ns));
            let _ = options.set_first_byte_timeout(Some(self.timeout_ns));
            let _ = options.set_between_bytes_timeout(Some(self.timeout_ns));
            let future =
                outgoing_handler::handle(request, Some(options)).map_err(|e| describe(&e))?;
            {
                let stream = outgoing
                    .write()
                    .map_err(|_| "no request body stream".to_string())?;
                // A small body (one alert): the stream takes it at once.
                for chunk in body.as_bytes().chunks(4096) {
                    stream
                        .blocking_write_and_flush(chunk)
                        .map_err(|e| format!("writing the body: {e:?}"))?;
                }
            }
            OutgoingBody::finish(outgoing, None).map_err(|e| describe(&e))?;
            Ok(future)
        }
    }

    fn describe(error: &ErrorCode) -> String {
        match error {
            ErrorCode::HttpRequestDenied => "denied (not in grants.http-out)".to_string(),
            ErrorCode::ConnectionRefused => "connection refused".to_string(),
            ErrorCode::ConnectionTimeout => "connection timed out".to_string(),
            other => format!("{other:?}"),
        }
    }

    impl Transport for WasiHttp {
        fn start(&mut self, body: &str) -> Result<(), String> {
            self.in_flight = None;
            self.in_flight = Some(self.request(body)?);
            Ok(())
        }

        fn poll(&mut self, wait_ms: u64) -> Option<Result<u16, String>> {
            let future = self.in_flight.as_ref()?;
            if wait_ms > 0 {
                let ready = future.subscribe();
                let timer = monotonic_clock::subscribe_duration(wait_ms.saturating_mul(1_000_000));
                wasip2::io::poll::poll(&[&ready, &timer]);
            }
            let result = match future.get()? {
                Ok(Ok(response)) => Ok(response.status()),
                Ok(Err(error)) => Err(describe(&error)),
                Err(()) => Err("the response was already taken".to_string()),
            };
            self.in_flight = None;
            Some(result)
        }

        fn cancel(&mut self) {
            self.in_flight = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        assert_eq!(
            Url::parse("http://127.0.0.1:9000/hook").unwrap(),
            Url {
                https: false,
                authority: "127.0.0.1:9000".into(),
                path: "/hook".into()
            }
        );
        assert_eq!(
            Url::parse("https://alerts.example.net").unwrap(),
            Url {
                https: true,
                authority: "alerts.example.net".into(),
                path: "/".into()
            }
        );
        assert_eq!(Url::parse("http://[::1]:80?x=1").unwrap().path, "/?x=1");
        assert!(Url::parse("ftp://x/").is_err());
        assert!(Url::parse("http:///x").is_err());
        assert!(Url::parse("http://a b/").is_err());
    }
}
