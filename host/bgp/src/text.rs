//! Quoting outside input in error messages.
//!
//! Errors travel back to whoever sent the input (a ctl client, a plugin, the operator
//! reading `wasmbgp check`), so they quote a short prefix of it, never the whole thing: a
//! 10 MB command line must not come back as a 10 MB error.

/// Characters of outside input an error quotes before cutting it.
pub const QUOTE_MAX_CHARS: usize = 48;

/// `text` quoted as Rust debug-formats a string, cut after [`QUOTE_MAX_CHARS`] characters
/// with `…` after the closing quote.
pub fn quote(text: &str) -> String {
    match text.char_indices().nth(QUOTE_MAX_CHARS) {
        None => format!("{text:?}"),
        Some((end, _)) => format!("{:?}…", &text[..end]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_quoted_whole() {
        assert_eq!(quote("10.0.0.1/8"), "\"10.0.0.1/8\"");
        assert_eq!(quote("a\"b"), "\"a\\\"b\"");
    }

    #[test]
    fn long_text_is_cut_at_a_character() {
        let long = "é".repeat(10_000);
        let q = quote(&long);
        assert!(q.ends_with("\"…"), "{q}");
        assert_eq!(q.chars().filter(|c| *c == 'é').count(), QUOTE_MAX_CHARS);
    }
}
