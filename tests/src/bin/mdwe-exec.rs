//! `mdwe-exec COMMAND [ARGS...]`: runs COMMAND with MemoryDenyWriteExecute set
//! (`prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN)`, Linux 6.3+), which its children
//! inherit: no memory of theirs may become executable. What systemd's
//! `MemoryDenyWriteExecute=yes` asks for, without systemd, e.g.
//!
//! ```sh
//! target/release/mdwe-exec target/release/wasmbgp run wasmbgp.toml
//! target/release/mdwe-exec cargo nextest run --release -p wasmbgp-runtime
//! ```

use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let Some(program) = args.next() else {
        eprintln!("usage: mdwe-exec COMMAND [ARGS...]");
        return ExitCode::from(2);
    };
    let on = libc::PR_MDWE_REFUSE_EXEC_GAIN as libc::c_ulong;
    // SAFETY: PR_SET_MDWE takes flags, no pointers; the unused arguments must be 0.
    let set = unsafe {
        libc::prctl(
            libc::PR_SET_MDWE,
            on,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    if set != 0 {
        eprintln!(
            "mdwe-exec: prctl(PR_SET_MDWE): {}",
            std::io::Error::last_os_error()
        );
        return ExitCode::from(2);
    }
    let error = Command::new(&program).args(args).exec();
    eprintln!("mdwe-exec: {}: {error}", program.to_string_lossy());
    ExitCode::from(127)
}
